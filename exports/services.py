"""Writes: starting an export (deduplicated) and cancelling one."""

import logging
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from . import conf, pool
from .exceptions import InvalidParameters, TaskNotCancellable
from .filters import ExportRequest
from .models import ExportTask
from .selectors import task_get_for_user

log = logging.getLogger(__name__)
Status = ExportTask.Status


def export_start(*, user, request: ExportRequest) -> tuple[ExportTask, bool]:
    """Return (task, deduplicated): the same user's identical active export, or a new one.

    The job is submitted only once the task's row is committed, so no thread ever looks
    for a row it cannot see yet.
    """
    filters, export_format = request.filters, request.export_format
    if export_format == ExportTask.Format.PDF:
        _check_pdf_size(request)
    key = filters.fingerprint(export_format)
    with transaction.atomic():  # BEGIN IMMEDIATE on SQLite: one admission at a time
        same = ExportTask.objects.active().filter(owner=user, fingerprint=key).first()
        if same is not None:
            return same, True
        task = ExportTask.objects.create(owner=user, fingerprint=key,
                                         export_format=export_format, filters=filters.as_dict())
        transaction.on_commit(lambda: pool.submit_export(task.id))
    log.info("export queued task=%s format=%s owner=%s", task.id, export_format, user.pk)
    return task, False


def _check_pdf_size(request: ExportRequest) -> None:
    """Refuse at start a PDF above EXPORT_PDF_MAX_ROWS, rather than cutting it silently."""
    cap, limit = conf.pdf_max_rows(), request.filters.limit
    if limit is not None and limit <= cap:
        return
    matching = request.filters.queryset().count()
    rows = min(matching, limit) if limit is not None else matching
    if rows > cap:
        raise InvalidParameters({"export_format": [
            f"A PDF export holds at most {cap:,} rows and this one would hold {rows:,}. "
            "Narrow the filters, set limit, or choose export_format=csv or excel."]})


def export_cancel(*, task_id: UUID, user) -> ExportTask:
    """Cancel a queued or processing task (idempotent); 409 once it has ended otherwise."""
    task = task_get_for_user(task_id=task_id, user=user)
    cancelled = ExportTask.objects.filter(id=task.id, status__in=ExportTask.ACTIVE_STATUSES).update(
        status=Status.CANCELLED, finished_at=timezone.now())
    task.refresh_from_db()
    if not cancelled and task.status != Status.CANCELLED:
        raise TaskNotCancellable(task.status)
    if cancelled:
        log.info("export cancelled task=%s by=%s", task.id, user.pk)
    return task
