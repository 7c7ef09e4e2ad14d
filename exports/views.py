"""Thin API views, one per operation: parse, call one selector or service, respond.

Errors travel as exceptions from exceptions.py; api_errors.py turns them into responses.
"""

from django.http import FileResponse, JsonResponse
from rest_framework.authentication import TokenAuthentication
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .exceptions import InvalidParameters, UnsafeMethod
from .filters import parse_export_request
from .selectors import (
    health, parse_task_id, pool_status, task_get_for_user, task_open_download,
    tasks_list_for_user,
)
from .serializers import ExportTaskSerializer, start_body
from .services import export_cancel, export_start
from .writers import get_writer


def _params(request):
    """Query string for GET; the body (form or JSON object) merged over it for POST."""
    if request.method != "POST":
        return request.query_params
    params = request.query_params.copy()
    data = request.data
    if hasattr(data, "getlist"):
        for key in data:
            params.setlist(key, data.getlist(key))
        return params
    if not isinstance(data, dict):
        raise InvalidParameters({"body": ["Send the parameters as a JSON object or a form."]})
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, (dict, list)) for v in values):
            raise InvalidParameters({key: [f"{key} must be a value or a list of values."]})
        params.setlist(key, [v for v in values if v is not None])  # null: as if absent
    return params


def _is_true(value) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _require_token_for_get(request) -> None:
    """GET (and HEAD) may start or cancel only for token clients; a browser session must
    POST, where CSRF protects it."""
    if request.method != "POST" and not isinstance(
            request.successful_authenticator, TokenAuthentication):
        raise UnsafeMethod()


class ExportStartApi(APIView):
    """Start an export; the legacy forms pool_status=true and cancel=true dispatch here."""

    def get(self, request):
        return self._dispatch(request, _params(request))

    def post(self, request):
        return self._dispatch(request, _params(request))

    def _dispatch(self, request, params):
        if _is_true(params.get("pool_status", "")):
            return ExportPoolStatusApi().get(request)
        _require_token_for_get(request)
        if _is_true(params.get("cancel", "")):
            return _cancel(request, params)
        task, deduplicated = export_start(user=request.user, request=parse_export_request(params))
        body = start_body(task, deduplicated=deduplicated)
        if deduplicated:
            return Response(body, status=200)
        return Response(body, status=202, headers={"Location": body["status_url"]})


class ExportStatusApi(APIView):
    def get(self, request):
        task = task_get_for_user(task_id=parse_task_id(request.query_params.get("task_id")),
                                 user=request.user)
        return Response(ExportTaskSerializer(task).data)


class ExportTaskListApi(ListAPIView):
    serializer_class = ExportTaskSerializer

    def get_queryset(self):
        return tasks_list_for_user(user=self.request.user)


class ExportDownloadApi(APIView):
    def get(self, request, task_id):
        task, handle = task_open_download(task_id=task_id, user=request.user)  # 404/409/410
        # Pass content_type explicitly: guessing from the file name drops "charset=utf-8".
        return FileResponse(handle, as_attachment=True, filename=task.file_name,
                            content_type=get_writer(task.export_format).content_type)


class ExportCancelApi(APIView):
    def post(self, request):
        return _cancel(request, _params(request))


def _cancel(request, params) -> Response:
    task = export_cancel(task_id=parse_task_id(params.get("task_id")), user=request.user)
    return Response({"task_id": str(task.id), "status": task.status})


class ExportPoolStatusApi(APIView):
    def get(self, request):
        return Response(pool_status())


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        report = health()
        return Response(report, status=200 if report["status"] == "ok" else 503)


def not_found(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)
