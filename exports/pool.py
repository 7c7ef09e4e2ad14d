"""The two module-level executors of a server process, their counters, and the supervisor
thread that feeds the export pool from the database queue.

The export pool (MAX_EXPORT_THREADS) runs whole jobs; the processing pool
(MAX_WORKER_THREADS) is shared by every job for batch preparation. Queued exports wait in
the database, not in an executor: the supervisor claims the next one whenever an export
thread is free, beats the heartbeat of the running ones and reaps those of dead processes.
Everything is made on first use, in the process that uses it, so a server that forks its
workers after import (gunicorn --preload) gets live threads. Every number reported comes
from our own counters, taken under one lock, never from executor internals.
"""

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

from django.db import close_old_connections, connection

from . import conf, recovery
from .worker import letting_go

log = logging.getLogger(__name__)

EXPORT, PROCESSING = "export", "processing"

_lock = threading.Lock()  # guards everything below, for reads and writes
_changed = threading.Condition(_lock)  # notified when work finishes or is queued
_pools: dict[str, ThreadPoolExecutor] = {}
_counts: Counter = Counter()
_state: dict = {"pid": None, "accepting": True, "stopped": False, "wake": False, "thread": None}


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    with _lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(size, thread_name_prefix=f"{name}-pool")
        return _pools[name]


def _tracked(name: str, fn: Callable, *args, **kwargs):
    """Run fn on a pool thread, keeping the pool's active and pending counts exact."""
    with _lock:
        _counts[f"{name}_pending"] -= 1
        _counts[f"{name}_active"] += 1
    try:
        return fn(*args, **kwargs)
    finally:
        with _lock:
            _counts[f"{name}_active"] -= 1
            _changed.notify_all()


def _submit(name: str, size: int, fn: Callable, *args, **kwargs) -> Future:
    executor = _pool(name, size)
    with _lock:
        _counts[f"{name}_pending"] += 1
        _counts[f"{name}_submitted"] += 1
    future = executor.submit(_tracked, name, fn, *args, **kwargs)
    future.add_done_callback(lambda f: _forget_cancelled(name, f))
    return future


def _forget_cancelled(name: str, future: Future) -> None:
    if future.cancelled():  # never started: _tracked never took it off the pending count
        with _lock:
            _counts[f"{name}_pending"] -= 1
            _changed.notify_all()


class ProcessingPool:
    """The shared batch pool as the runner sees it: submit() counted like the export pool."""

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        return _submit(PROCESSING, conf.max_worker_threads(), fn, *args, **kwargs)


def processing_pool() -> ProcessingPool:
    return ProcessingPool()


def submit_export(task_id: UUID) -> Future:
    """Claim and run this queued export on the export pool (tests, and direct calls)."""
    from .runner import run_export  # the runner imports this module for the processing pool

    future = _submit(EXPORT, conf.max_export_threads(), run_export, task_id,
                     batch_pool=processing_pool())
    future.add_done_callback(_record_outcome)  # otherwise a crashed job goes unseen
    return future


def submit_claimed(task_id: UUID) -> Future:
    """Run an export this process has already claimed (recovery.task_claim_next)."""
    from .runner import run_claimed

    future = _submit(EXPORT, conf.max_export_threads(), run_claimed, task_id,
                     batch_pool=processing_pool())
    future.add_done_callback(_record_outcome)
    return future


def _record_outcome(future: Future) -> None:
    if future.cancelled():
        outcome = "cancelled"
    elif future.exception() is not None:
        outcome = "failed"
        log.error("export job crashed", exc_info=future.exception())
    else:
        outcome = future.result() or "skipped"
    with _lock:
        _counts[f"outcome_{outcome}"] += 1


# The supervisor: one thread per process.

def ensure_started() -> None:
    """Start this process's supervisor once (again after a fork); cheap to call often."""
    with _lock:
        if _state["pid"] == os.getpid():
            return
        if _state["pid"] is not None:  # forked: the parent's threads did not come along
            _pools.clear()
            _counts.clear()
        thread = threading.Thread(target=_supervise, name="export-supervisor", daemon=True)
        _state.update(pid=os.getpid(), accepting=True, stopped=False, wake=True, thread=thread)
        letting_go.clear()
    thread.start()


def resume() -> None:
    """Undo stop() in this process (tests): accept exports and run the supervisor again."""
    with _lock:
        _state["pid"] = None
    ensure_started()


def wake() -> None:
    """A task was queued: let the supervisor claim it now rather than at its next poll."""
    ensure_started()
    with _lock:
        _state["wake"] = True
        _changed.notify_all()


def accepting() -> bool:
    with _lock:
        return _state["accepting"]


def _supervise() -> None:
    try:
        _supervise_until_stopped()
    finally:
        connection.close()  # never hold a connection past the supervisor's life


def _supervise_until_stopped() -> None:
    pid, next_beat = os.getpid(), 0.0
    while True:
        with _lock:
            _changed.wait_for(lambda: _state["wake"] or _state["stopped"],
                              timeout=min(1.0, conf.heartbeat_seconds()))
            _state["wake"] = False
            if _state["pid"] != pid or _state["stopped"]:
                return
        try:
            if time.monotonic() >= next_beat:  # beats go on while a graceful stop waits
                recovery.tasks_heartbeat()
                recovery.tasks_reap()
                recovery.stale_parts_remove()
                next_beat = time.monotonic() + conf.heartbeat_seconds()
            _fill_free_slots()
        except Exception:  # the supervisor must outlive a database hiccup; it retries next turn
            log.exception("export supervisor turn failed")
        finally:
            close_old_connections()


def _fill_free_slots() -> None:
    while True:
        with _lock:
            busy = _counts["export_active"] + _counts["export_pending"]
            if not _state["accepting"] or busy >= conf.max_export_threads():
                return
        task_id = recovery.task_claim_next()
        if task_id is None:
            return
        submit_claimed(task_id)


def begin_stop() -> None:
    """Take no new export from now on (starts answer 503); safe in a signal handler."""
    _state["accepting"] = False  # one store, no lock: a signal may arrive while it is held


def stop(*, grace: float | None = None) -> int:
    """Graceful stop: take no new export, let running ones finish for up to `grace` seconds
    (EXPORT_GRACEFUL_S), then hand the rest back to the queue. Returns how many went back."""
    grace = conf.graceful_seconds() if grace is None else grace
    begin_stop()
    if _state["pid"] != os.getpid():
        return 0  # never started in this process: it runs no export to hand back

    def idle() -> bool:
        return not _counts["export_active"] + _counts["export_pending"]

    with _changed:
        _changed.wait_for(idle, timeout=grace)
        letting_go.set()  # the rest stop at their next batch and delete their own .part
        _changed.wait_for(idle, timeout=10)
        _state["stopped"] = True
        _changed.notify_all()
    supervisor = _state["thread"]
    if supervisor is not None and supervisor is not threading.current_thread():
        supervisor.join(timeout=5)
    handed = recovery.tasks_hand_back()
    if handed:
        log.warning("export stop: %s running export(s) handed back to the queue", handed)
    connection.close()
    return handed


def count(name: str) -> None:
    """Count an event of this process that no executor sees (e.g. a refused start)."""
    with _lock:
        _counts[name] += 1


def counters() -> dict[str, dict[str, int]]:
    """This process's pool numbers, read under the lock."""
    with _lock:
        c = dict(_counts)
    return {
        EXPORT: {"active_threads": c.get("export_active", 0),
                 "max_workers": conf.max_export_threads(),
                 "pending_tasks": c.get("export_pending", 0),
                 "total_tasks": c.get("export_submitted", 0),
                 "completed_tasks": c.get("outcome_completed", 0),
                 "failed_tasks": c.get("outcome_failed", 0),
                 "cancelled_tasks": c.get("outcome_cancelled", 0),
                 "refused_tasks": c.get("refused", 0)},
        PROCESSING: {"active_threads": c.get("processing_active", 0),
                     "max_workers": conf.max_worker_threads(),
                     "pending_tasks": c.get("processing_pending", 0)},
    }


def wait_idle(timeout: float) -> bool:
    """Block until no export is queued or processing in the database and nothing is pending
    or running in this process's pools; False on timeout (tests, graceful stop scripts)."""
    from .models import ExportTask

    def idle() -> bool:
        return not any(_counts[f"{n}_{k}"] for n in (EXPORT, PROCESSING)
                       for k in ("active", "pending"))

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _changed:
            if not _changed.wait_for(idle, max(0.0, deadline - time.monotonic())):
                return False
        if not ExportTask.objects.active().exists():
            return True
        time.sleep(0.05)
    return False


def shutdown(wait: bool = True) -> None:
    """Stop both executors (tests, process exit); the next submit makes new ones."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for executor in pools:
        executor.shutdown(wait=wait, cancel_futures=not wait)
