"""The two module-level executors of a server process, made on first use, and their counters.

The export pool (MAX_EXPORT_THREADS) runs whole jobs; the processing pool
(MAX_WORKER_THREADS) is shared by every job for batch preparation. Executors are made on first
use, in the process that uses them, so a server that forks its workers after import
(gunicorn --preload) gets live threads. Every number reported comes from our own counters,
taken under one lock, never from executor internals.
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from uuid import UUID

from . import conf

log = logging.getLogger(__name__)

EXPORT, PROCESSING = "export", "processing"

_lock = threading.Lock()  # guards _pools and _counts, for reads and writes
_idle = threading.Condition(_lock)  # notified whenever a pool's work finishes
_pools: dict[str, ThreadPoolExecutor] = {}
_counts: Counter = Counter()


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    with _lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(size, thread_name_prefix=f"{name}-pool")
            _counts[f"{name}_max_workers"] = size
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
            _idle.notify_all()


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
            _idle.notify_all()


class ProcessingPool:
    """The shared batch pool as the runner sees it: submit() counted like the export pool."""

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        return _submit(PROCESSING, conf.max_worker_threads(), fn, *args, **kwargs)


def processing_pool() -> ProcessingPool:
    return ProcessingPool()


def submit_export(task_id: UUID) -> Future:
    """Run the export on the export pool; its outcome is counted by a done-callback."""
    from .runner import run_export  # the runner imports this module for the processing pool

    future = _submit(EXPORT, conf.max_export_threads(), run_export, task_id,
                     batch_pool=processing_pool())
    future.add_done_callback(_record_outcome)  # otherwise a crashed job goes unseen
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


def count(name: str) -> None:
    """Count an event of this process that no executor sees (e.g. a refused start)."""
    with _lock:
        _counts[name] += 1


def counters() -> dict[str, dict[str, int]]:
    """This process's pool numbers, read under the lock."""
    with _lock:
        c = dict(_counts)
    pool = {
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
    return pool


def wait_idle(timeout: float) -> bool:
    """Block until no export or batch is pending or running here; False on timeout."""
    def idle() -> bool:
        return not any(_counts[f"{n}_{k}"] for n in (EXPORT, PROCESSING)
                       for k in ("active", "pending"))

    with _idle:
        return _idle.wait_for(idle, timeout)


def shutdown(wait: bool = True) -> None:
    """Stop both executors (tests, process exit); the next submit makes new ones."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for executor in pools:
        executor.shutdown(wait=wait, cancel_futures=not wait)
