"""Writes: starting an export (deduplicated, within the admission limits) and cancelling one.

Limits are counted in the database, not in a process's memory, so they hold across every
server process.
"""

import logging
import math
import shutil
from datetime import timedelta
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone

from . import conf, pool
from .exceptions import (
    InvalidParameters, QueueFull, ServerBusy, StartRateExceeded, TaskNotCancellable,
    TooManyActive,
)
from .filters import ExportRequest
from .models import ExportTask
from .selectors import recent_durations, task_get_for_user

log = logging.getLogger(__name__)
Status = ExportTask.Status


ADMISSION_LOCK_KEY = 7_310_001  # any constant: the one PostgreSQL advisory lock of admission
DEFAULT_DURATION_S = 3.0  # assumed export duration before any export has completed


def export_start(*, user, request: ExportRequest, now=None) -> tuple[ExportTask, bool]:
    """Return (task, deduplicated): the same user's identical active export, or a new one.

    Raises TooManyActive, StartRateExceeded (429) or QueueFull (503), each with a
    retry_after. The job is submitted only once the task's row is committed, so no thread
    ever looks for a row it cannot see yet.
    """
    filters, export_format = request.filters, request.export_format
    key = filters.fingerprint(export_format)
    if same := _same_active(user, key):  # cheap first look: no count, no 503 for a repeat
        return same, True
    if export_format == ExportTask.Format.PDF:
        _check_pdf_size(request)
    try:
        _check_server_can_take_exports()
        with transaction.atomic():
            _admission_gate_lock()
            if same := _same_active(user, key):  # again under the gate: a racing twin
                return same, True
            _admit(user, now or timezone.now())
            task = ExportTask.objects.create(owner=user, fingerprint=key,
                                             export_format=export_format,
                                             filters=filters.as_dict())
            transaction.on_commit(lambda: _queued(task))  # the row waits; wake a claimer
    except (TooManyActive, StartRateExceeded, QueueFull, ServerBusy) as refused:
        pool.count("refused")
        log.info("export refused owner=%s reason=%s retry_after=%s",
                 user.pk, type(refused).__name__, refused.retry_after)
        raise
    return task, False


def _same_active(user, key: str) -> ExportTask | None:
    return ExportTask.objects.active().filter(owner=user, fingerprint=key).first()


def _queued(task: ExportTask) -> None:
    log.info("export queued task=%s format=%s owner=%s", task.id, task.export_format,
             task.owner_id)
    pool.wake()


def _check_server_can_take_exports() -> None:
    """503 while this process is stopping, or while the export disk is nearly full."""
    if not pool.accepting():
        raise ServerBusy(retry_after=_bounded(conf.graceful_seconds() + 5),
                         message="The server is restarting. Try again in a few seconds.")
    try:
        free = shutil.disk_usage(conf.export_dir()).free
    except OSError as exc:
        raise ServerBusy(retry_after=60, message=(
            f"The export folder is unavailable ({exc.strerror}). Try again later.")) from None
    if free < conf.min_free_bytes():
        raise ServerBusy(retry_after=60, message=(
            f"The server is low on disk space for exports ({free // 2**20:,} MB free). "
            "Try again later."))


def _admission_gate_lock() -> None:
    """Serialise admission, or two requests racing for the last slot both get in.

    SQLite: the transaction began with BEGIN IMMEDIATE (DATABASES OPTIONS transaction_mode),
    so a second writer already waits its busy timeout. PostgreSQL: one transaction-scoped
    advisory lock, released at commit or rollback.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADMISSION_LOCK_KEY])


def _admit(user, now) -> None:
    """Raise if this start would pass a limit; order as CONTRACT.md: user first, then server."""
    active = ExportTask.objects.active()
    mine = active.filter(owner=user).count()
    if mine >= conf.max_active_per_user():
        raise TooManyActive(retry_after=retry_after_estimate(ahead=mine))
    starts, window = conf.export_start_rate()
    recent = (ExportTask.objects.filter(owner=user, created_at__gt=now - timedelta(seconds=window))
              .order_by("-created_at").values_list("created_at", flat=True)[:starts])
    if len(recent) >= starts:
        reopens = recent[starts - 1] + timedelta(seconds=window)  # the oldest start that counts
        raise StartRateExceeded(retry_after=_bounded((reopens - now).total_seconds()))
    total = active.count()
    if total >= conf.export_queue_limit():
        raise QueueFull(retry_after=retry_after_estimate(ahead=total))


def retry_after_estimate(*, ahead: int) -> int:
    """Seconds until a slot is likely free: the queue ahead drains at threads/median rate."""
    durations = recent_durations()
    median = durations[len(durations) // 2] if durations else DEFAULT_DURATION_S
    waves = math.ceil(max(1, ahead - conf.max_export_threads() + 1) / conf.max_export_threads())
    return _bounded(median * waves)


def _bounded(seconds: float, low: int = 1, high: int = 300) -> int:
    return int(min(high, max(low, math.ceil(seconds))))


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
