"""The one exception handler: ExportError -> HTTP status, JSON body, Retry-After."""

from rest_framework.response import Response
from rest_framework.views import exception_handler

from .exceptions import (
    InvalidParameters, QueueFull, StartRateExceeded, TaskExpired, TaskNotCancellable,
    ServerBusy, TaskNotFinished, TaskNotFound, TooManyActive, UnsafeMethod,
)

STATUS = {InvalidParameters: 400, TaskNotFound: 404, UnsafeMethod: 403, TaskNotFinished: 409,
          TaskNotCancellable: 409, TaskExpired: 410, TooManyActive: 429, StartRateExceeded: 429,
          QueueFull: 503, ServerBusy: 503}


def export_exception_handler(exc, context):
    status = next((STATUS[c] for c in type(exc).__mro__ if c in STATUS), None)
    if status is None:
        return exception_handler(exc, context)  # DRF's own; returning None means a 500
    response = Response({"detail": str(exc), **exc.extra}, status=status)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(exc.retry_after)
    return response
