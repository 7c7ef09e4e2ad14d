"""Reads: a user's tasks, a downloadable task, the pool status of the whole server."""

import os
import statistics
from typing import BinaryIO
from uuid import UUID

import psutil
from django.db.models import QuerySet, Sum
from django.utils import timezone

from . import conf, pool
from .exceptions import InvalidParameters, TaskExpired, TaskNotFinished, TaskNotFound, shown
from .models import CleanupRun, ExportTask

Status = ExportTask.Status


def parse_task_id(raw: object, *, field: str = "task_id") -> UUID:
    """A task id from a request, or InvalidParameters naming the field."""
    if raw is None or str(raw).strip() == "":
        raise InvalidParameters({field: [f"{field} is required."]})
    try:
        return UUID(str(raw).strip())
    except ValueError:
        raise InvalidParameters({field: [f"{field} must be a UUID; got {shown(raw)}."]}) from None



def tasks_visible_to(user) -> QuerySet:
    """Staff see every task; others only their own (another's answers as unknown)."""
    tasks = ExportTask.objects.select_related("owner")
    return tasks if user.is_staff else tasks.filter(owner=user)


def task_get_for_user(*, task_id: UUID, user) -> ExportTask:
    task = tasks_visible_to(user).filter(id=task_id).first()
    if task is None:
        raise TaskNotFound(task_id)
    return task


def tasks_list_for_user(*, user) -> QuerySet:
    """The user's own exports, newest first (also for staff: it is their page's list)."""
    return ExportTask.objects.filter(owner=user).order_by("-created_at")


def task_open_download(*, task_id: UUID, user) -> tuple[ExportTask, BinaryIO]:
    """A completed task and its file, opened: else 404 / 409 (not finished) / 410 (expired).

    Opened here, so a cleanup removing the file between the check and the read answers 410;
    once open, the file stays readable until the download ends, whatever cleanup does.
    """
    task = task_get_for_user(task_id=task_id, user=user)
    if task.status == Status.EXPIRED:
        raise TaskExpired()
    if task.status != Status.COMPLETED:
        raise TaskNotFinished(task.status)
    try:
        return task, open(task.file_path, "rb")  # noqa: SIM115 - closed by the response
    except (FileNotFoundError, IsADirectoryError):
        raise TaskExpired() from None


def remaining_seconds(task: ExportTask, *, now=None) -> int | None:
    """Estimated seconds left while processing, from the rate so far."""
    if task.status != Status.PROCESSING or not task.started_at or not task.row_count:
        return None
    if not task.rows_processed:
        return None
    elapsed = ((now or timezone.now()) - task.started_at).total_seconds()
    left = task.row_count - task.rows_processed
    return max(0, round(elapsed * left / task.rows_processed))


def pool_status(*, now=None) -> dict:
    """This process's pools (own counters) plus what spans processes (the database)."""
    now = now or timezone.now()
    pools = pool.counters()
    active = ExportTask.objects.active()
    oldest = active.filter(status=Status.QUEUED).order_by("created_at").first()
    pools["export"].update(
        pending_tasks=active.filter(status=Status.QUEUED).count(),  # the queue is the database
        queue_limit=conf.export_queue_limit(),
        oldest_wait_seconds=round((now - oldest.created_at).total_seconds(), 1) if oldest else 0,
        **_durations(),
    )
    return {
        "export_pool": pools["export"],
        "processing_pool": pools["processing"],
        "batch_size": conf.batch_size(),
        "cleaned_files": cleaned_files_total(),
        "system": _system(),
        "backend": conf.export_backend(),
    }


def recent_durations(recent: int = 100) -> list[float]:
    """Seconds taken by the last `recent` completed exports, sorted ascending."""
    done = (ExportTask.objects.filter(status=Status.COMPLETED, started_at__isnull=False,
                                      finished_at__isnull=False)
            .order_by("-finished_at").values_list("started_at", "finished_at")[:recent])
    return sorted((end - start).total_seconds() for start, end in done)


def _durations() -> dict:
    seconds = recent_durations()
    if not seconds:
        return {"duration_p50_seconds": None, "duration_p95_seconds": None}
    p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
    return {"duration_p50_seconds": round(statistics.median(seconds), 2),
            "duration_p95_seconds": round(p95, 2)}


def _system() -> dict:
    try:
        disk_free = psutil.disk_usage(str(conf.export_dir())).free
    except OSError:  # an unusable EXPORT_DIR is reported by /healthz; here it is unknown
        disk_free = None
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_percent": psutil.virtual_memory().percent,
        "process_rss_bytes": psutil.Process().memory_info().rss,
        "disk_free_bytes": disk_free,
    }


def cleaned_files_total() -> int:
    """Files cleanup_exports has removed, over every run (CleanupRun rows)."""
    return CleanupRun.objects.aggregate(total=Sum("files_removed"))["total"] or 0


def health() -> dict[str, str]:
    """What /healthz reports: 'ok' or a sentence for each part."""
    report = {"status": "ok", "database": "ok", "export_dir": "ok"}
    try:
        ExportTask.objects.exists()
    except Exception as exc:  # the health check must answer, whatever the database says
        report["database"] = f"unavailable: {type(exc).__name__}"
    try:
        directory = conf.export_dir()
        if not os.access(directory, os.W_OK):
            report["export_dir"] = f"not writable: {directory}"
    except OSError as exc:
        report["export_dir"] = f"unavailable: {exc.strerror}"
    if report["database"] != "ok" or report["export_dir"] != "ok":
        report["status"] = "unavailable"
    return report
