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
from .worker import mark_ended, mark_running, owner_alive, running, worker_id

log = logging.getLogger(__name__)
Status = ExportTask.Status
MAX_ATTEMPTS = 2  # the first run and one re-run
INTERRUPTED = "The export was interrupted by a server restart. Please start it again."


def task_claim(*, task_id: UUID, now: datetime | None = None) -> bool:
    """queued -> processing for this process, with one conditional UPDATE. A claimed task
    counts as running here from this moment, so the heartbeat covers it before its job
    starts; the job marks it ended (runner.run_claimed)."""
    now = now or timezone.now()
    mark_running(task_id)
    claimed = ExportTask.objects.filter(id=task_id, status=Status.QUEUED).update(
        status=Status.PROCESSING, worker_id=worker_id(), heartbeat_at=now,
        started_at=now, attempts=F("attempts") + 1)
    if not claimed:
        mark_ended(task_id)
    return bool(claimed)


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
    """Refresh heartbeat_at of the tasks this process is really running (not merely owns:
    a task whose job died inside this process must go stale and be reaped)."""
    return ExportTask.objects.filter(status=Status.PROCESSING, worker_id=worker_id(),
                                     id__in=running()).update(heartbeat_at=now or timezone.now())


def tasks_reap(*, now: datetime | None = None) -> list[UUID]:
    """Hand back or fail every processing task whose owner is gone; return their ids."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=3 * conf.heartbeat_seconds())
    me, mine_running, reaped = worker_id(), running(), []
    candidates = ExportTask.objects.filter(status=Status.PROCESSING).values_list(
        "id", "worker_id", "heartbeat_at", "started_at", "created_at")
    for task_id, owner, beat, started, created in candidates:
        if owner == me:
            alive = True if task_id in mine_running else None  # a job that died here
        else:
            alive = owner_alive(owner) if owner else False
        last_sign = beat or started or created
        if alive is False or (alive is None and last_sign < stale_before):
            if _requeue_or_fail(task_id, owner, now):
                reaped.append(task_id)
    return reaped


def tasks_hand_back(*, now: datetime | None = None) -> int:
    """Graceful stop: this process's tasks go back to the queue, not counted as an
    interruption. Called once their jobs have let go (worker.letting_go), or timed out."""
    return ExportTask.objects.filter(status=Status.PROCESSING, worker_id=worker_id()).update(
        status=Status.QUEUED, worker_id="", heartbeat_at=None, attempts=F("attempts") - 1)


def _requeue_or_fail(task_id: UUID, owner: str, now: datetime) -> bool:
    # Leftovers go first: once re-queued, the task may be claimed at once and its new job
    # would write the very same <id>.<ext>.part.
    remove_leftovers(task_id)
    mine = ExportTask.objects.filter(id=task_id, status=Status.PROCESSING, worker_id=owner)
    requeued = mine.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Status.QUEUED, worker_id="", heartbeat_at=None)
    failed = 0 if requeued else mine.update(status=Status.FAILED, error=INTERRUPTED,
                                            finished_at=now, worker_id="")
    if requeued or failed:
        log.warning("export reaped task=%s owner=%s outcome=%s", task_id, owner,
                    "requeued" if requeued else "failed")
    return bool(requeued or failed)


def stale_parts_remove() -> int:
    """Remove .part files and scratch folders of tasks no longer queued or processing (a job
    cancelled while its process was dead, a crash after the rename): checked every beat, so
    none outlives a restart by more than a heartbeat interval."""
    directories = (conf.export_dir(), conf.export_tmp_dir())
    found = {}
    for directory in directories:
        for path in Path(directory).iterdir():
            task_id = _part_owner(path.name)
            if task_id is not None:
                found.setdefault(task_id, []).append(path)
    active = set(ExportTask.objects.active().filter(id__in=list(found)).values_list("id", flat=True))
    removed = 0
    for task_id, paths in found.items():
        if task_id not in active:
            for path in paths:
                _remove_path(path)
                removed += 1
    return removed


def _part_owner(name: str) -> UUID | None:
    head, dot, rest = name.partition(".")
    if ".part" not in rest:
        return None
    try:
        return UUID(head)
    except ValueError:
        return None


def remove_leftovers(task_id: UUID) -> None:
    """Delete what a dead job may have left: .part files, a renamed file whose completion
    was never committed (it is re-run from scratch), and writers' scratch folders."""
    for directory in (conf.export_dir(), conf.export_tmp_dir()):
        for path in Path(directory).glob(f"{task_id}.*"):
            _remove_path(path)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
