"""The database queue of exports: claiming the next task, heartbeats, and the reaper.

A task's row is the truth; liveness is a heartbeat. Each process claims queued tasks with one
conditional UPDATE (so no two processes run the same task), refreshes `heartbeat_at` of the
tasks it runs, and reaps processing tasks whose owner is gone: on this host when the owner's
pid no longer runs (or runs another process), elsewhere when its heartbeat is older than three
intervals. A reaped task is queued again once (exports are idempotent), and fails at its
second interruption. A task owned by a live process is never touched.
"""

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from django.db.models import F
from django.utils import timezone

from . import conf
from .models import ExportTask
from .worker import owner_alive, worker_id

log = logging.getLogger(__name__)
Status = ExportTask.Status
MAX_ATTEMPTS = 2  # the first run and one re-run
INTERRUPTED = "The export was interrupted by a server restart. Please start it again."


def task_claim(*, task_id: UUID, now: datetime | None = None) -> bool:
    """queued -> processing for this process, with one conditional UPDATE."""
    now = now or timezone.now()
    return bool(ExportTask.objects.filter(id=task_id, status=Status.QUEUED).update(
        status=Status.PROCESSING, worker_id=worker_id(), heartbeat_at=now,
        started_at=now, attempts=F("attempts") + 1))


def task_claim_next(*, now: datetime | None = None) -> UUID | None:
    """Claim the oldest queued task; None when the queue is empty."""
    for _ in range(10):  # another process may win a candidate: try the next one
        candidate = (ExportTask.objects.filter(status=Status.QUEUED).order_by("created_at")
                     .values_list("id", flat=True).first())
        if candidate is None:
            return None
        if task_claim(task_id=candidate, now=now):
            return candidate
    return None


def tasks_heartbeat(*, now: datetime | None = None) -> int:
    """Refresh heartbeat_at of every task this process runs."""
    return ExportTask.objects.filter(status=Status.PROCESSING, worker_id=worker_id()).update(
        heartbeat_at=now or timezone.now())


def tasks_reap(*, now: datetime | None = None) -> list[UUID]:
    """Hand back or fail every processing task whose owner is gone; return their ids."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=3 * conf.heartbeat_seconds())
    reaped = []
    candidates = (ExportTask.objects.filter(status=Status.PROCESSING)
                  .exclude(worker_id=worker_id()).values_list("id", "worker_id", "heartbeat_at"))
    for task_id, owner, beat in candidates:
        alive = owner_alive(owner) if owner else False
        if alive is False or (alive is None and (beat is None or beat < stale_before)):
            if _requeue_or_fail(task_id, owner, now):
                reaped.append(task_id)
    return reaped


def tasks_hand_back(*, now: datetime | None = None) -> int:
    """Graceful stop: this process's running tasks go back to the queue, not counted as an
    interruption. Their jobs see it at their next progress write and stop."""
    return ExportTask.objects.filter(status=Status.PROCESSING, worker_id=worker_id()).update(
        status=Status.QUEUED, worker_id="", heartbeat_at=None, attempts=F("attempts") - 1)


def _requeue_or_fail(task_id: UUID, owner: str, now: datetime) -> bool:
    mine = ExportTask.objects.filter(id=task_id, status=Status.PROCESSING, worker_id=owner)
    requeued = mine.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Status.QUEUED, worker_id="", heartbeat_at=None)
    failed = 0 if requeued else mine.update(status=Status.FAILED, error=INTERRUPTED,
                                            finished_at=now, worker_id="")
    if requeued or failed:
        log.warning("export reaped task=%s owner=%s outcome=%s", task_id, owner,
                    "requeued" if requeued else "failed")
        remove_leftovers(task_id)
    return bool(requeued or failed)


def remove_leftovers(task_id: UUID) -> None:
    """Delete what a dead job may have left: .part files, a renamed file whose completion
    was never committed (it is re-run from scratch), and writers' scratch folders."""
    for directory in (conf.export_dir(), conf.export_tmp_dir()):
        for path in Path(directory).glob(f"{task_id}.*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
