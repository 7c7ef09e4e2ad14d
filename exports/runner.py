"""run_export(task_id): one export job, from a claimed task to a durable file.

The job reads the filtered records from one snapshot in primary-key order, batch by batch,
has the processing pool prepare each batch (at most `window` in flight, so memory stays flat),
writes them in order, and records progress once per batch. A cancel is seen at the next
progress write. The file is written as <id><ext>.part and renamed only once complete, so a
failed or cancelled job leaves nothing behind. The function knows no executor: the thread
pool calls it today, a Celery worker can call it tomorrow.
"""

import errno
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor, wait
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from django.db import connection
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from . import conf
from .exceptions import ExportCancelled, ExportFailed
from .filters import ExportFilters
from .models import ExportTask
from .recovery import task_claim
from .snapshot import snapshot
from .worker import letting_go, mark_ended, mark_running, worker_id
from .writers import ExportMeta, Writer, get_writer
from .writers.base import fsync_path

log = logging.getLogger(__name__)
Status = ExportTask.Status


def run_export(task_id: UUID, *, batch_pool: Executor | None = None) -> str | None:
    """Claim one queued export and run it to its end; return its final status (None if it
    was not queued). Never raises for a failed export: the failure is stored on the task.
    """
    try:
        if not task_claim(task_id=task_id):
            return None
        return run_claimed(task_id, batch_pool=batch_pool)
    finally:
        connection.close()  # a pool thread must not keep a connection between jobs


def run_claimed(task_id: UUID, *, batch_pool: Executor | None = None) -> str | None:
    """Run an export this process has already claimed (see recovery.task_claim_next)."""
    mark_running(task_id)  # already so when claimed here; a direct call registers it now
    try:
        task = ExportTask.objects.filter(id=task_id, status=Status.PROCESSING,
                                         worker_id=worker_id()).first()
        if task is None:
            return None
        own_pool = batch_pool is None
        pool = ThreadPoolExecutor(conf.max_worker_threads()) if own_pool else batch_pool
        try:
            return _run(task, pool)
        finally:
            if own_pool:
                pool.shutdown(wait=True)
    finally:
        mark_ended(task_id)
        connection.close()


def _run(task: ExportTask, pool: Executor) -> str:
    started = time.monotonic()
    # A re-run after a crash starts its file again but never shows less than was reached.
    task.shown_rows, task.rows_processed, task.deadline = (
        task.rows_processed, 0, started + conf.time_limit_seconds())
    log.info("export start task=%s format=%s owner=%s attempt=%s filters=%s",
             task.id, task.export_format, task.owner_id, task.attempts, task.filters)
    writer_cls = get_writer(task.export_format)
    part = None  # stays None when the export folder itself cannot be made
    try:
        part = conf.export_dir() / f"{task.id}{writer_cls.extension}.part"
        rows = _write_file(task, writer_cls, part, pool)
        status = _finish(task, part, rows)
    except ExportCancelled:
        _discard(part)
        status = "handed back" if letting_go.is_set() else Status.CANCELLED
    except Exception as exc:  # any failure ends as a failed task with a sentence, never a crash
        _discard(part)
        status = _fail(task, exc)
    log.info("export end task=%s status=%s rows=%s seconds=%.2f",
             task.id, status, task.rows_processed, time.monotonic() - started)
    return status


def _owned(task: ExportTask):
    """The task's row while this process still owns it: every write of the job goes through
    here, so a cancelled, handed-back or reaped task is never written by a stale job."""
    return ExportTask.objects.filter(id=task.id, status=Status.PROCESSING,
                                     worker_id=task.worker_id)


def _write_file(task: ExportTask, writer_cls: type[Writer], part: Path, pool: Executor) -> int:
    filters = ExportFilters.from_dict(task.filters)
    queryset = filters.queryset()
    with snapshot() as snap:
        total = snap.count(queryset, filters.limit)
        if not _owned(task).update(row_count=total):
            raise ExportCancelled()
        if writer_cls.format == "pdf" and total > conf.pdf_max_rows():  # rows added since start
            raise ExportFailed(f"A PDF export holds at most {conf.pdf_max_rows():,} rows and "
                               f"this one would now hold {total:,}. Choose CSV or Excel.")
        task.row_count, task.save_progress = total, _progress_statement(task)
        meta = ExportMeta(filters_label=filters.label(), row_count=total,
                          generated_at=timezone.localtime(timezone.now(), conf.time_zone()))
        writer = writer_cls(part, meta, **_writer_options(writer_cls))
        try:
            prepare = lambda batch: (len(batch), writer.prepare(batch))  # noqa: E731
            # closing(): no read is left running, and the query's cursor is released,
            # before the snapshot's connection closes.
            with closing(snap.batches(queryset, conf.batch_size(), filters.limit,
                                      date_form=writer_cls.date_form)) as batches, \
                    closing(read_ahead(pool, batches)) as ahead:
                for count, prepared in in_order(pool, prepare, ahead, window=_window()):
                    writer.write_rows(prepared)
                    _progress(task, count)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    if task.rows_processed != total:
        raise ExportFailed(f"The export wrote {task.rows_processed} rows but {total} were "
                           "counted. Please start it again.")
    return total


def _writer_options(writer_cls: type[Writer]) -> dict:
    """The settings a writer takes as keywords."""
    if writer_cls.format == "csv":
        return {"bom": conf.csv_bom()}
    if writer_cls.format == "excel":
        return {"tmpdir": conf.export_tmp_dir()}
    return {}


def _window() -> int:
    """Batches in flight: enough to keep the pool busy, few enough to keep memory flat."""
    return max(2, min(conf.max_worker_threads(), 4))


def in_order(pool: Executor, fn: Callable, items: Iterable, window: int) -> Iterator:
    """Yield fn(item) in input order with at most `window` in flight (map() submits all)."""
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def read_ahead(pool: Executor, items: Iterator) -> Iterator:
    """Yield from `items`, each next one being read on the pool meanwhile.

    A batch read is one database call that waits without the GIL (snapshot.batches), so the
    next batch is read while this one is prepared and written. One read at a time: `items`
    is never run by two threads at once, nor closed while a read runs.
    """
    future = pool.submit(next, items, _END)
    try:
        while (item := future.result()) is not _END:
            future = pool.submit(next, items, _END)
            yield item
    finally:
        if not future.cancel():
            wait([future])


_END = object()


def _progress(task: ExportTask, rows: int) -> None:
    """Record one batch; a task no longer ours (cancelled, handed back) stops the job here."""
    task.rows_processed += rows
    total = task.row_count or 0
    percent = min(99, task.rows_processed * 100 // total) if total else 0
    task.progress = max(task.progress, percent)  # never decreases; 100 only on completion
    task.shown_rows = max(task.shown_rows, task.rows_processed)
    if letting_go.is_set() or not task.save_progress(task.shown_rows, task.progress):
        raise ExportCancelled()  # cancelled, or this process is handing its exports back
    if time.monotonic() > task.deadline:
        raise ExportFailed(
            f"The export took longer than the limit of {conf.time_limit_seconds():.0f} "
            "seconds and was stopped. Narrow the filters (or set limit) and start it again.")


def _progress_statement(task: ExportTask) -> Callable[[int, int], bool]:
    """_owned(task).update(rows_processed=..., progress=...), compiled once per job: building
    and compiling the query for every batch took about 5% of a CSV export's time."""
    query = _owned(task).query.chain(UpdateQuery)
    query.add_update_values({"rows_processed": 0, "progress": 0})
    sql, params = query.get_compiler(using=_owned(task).db).as_sql()
    where = list(params[2:])  # the SET values come first, in the order given

    def save(rows_processed: int, progress: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(sql, [rows_processed, progress, *where])
            return cursor.rowcount > 0  # 0: no longer ours (cancelled, handed back, reaped)

    return save


def _finish(task: ExportTask, part: Path, rows: int) -> str:
    """Rename the complete file into place, then commit `completed` (or undo if cancelled)."""
    final = part.with_suffix("")  # drops ".part"
    os.replace(part, final)
    fsync_path(final.parent)  # the rename itself must survive a power cut
    size, digest = final.stat().st_size, _sha256(final)
    now = timezone.now()
    created = timezone.localtime(task.created_at, conf.time_zone())
    done = _owned(task).update(
        status=Status.COMPLETED, progress=100, rows_processed=rows, finished_at=now,
        file_path=str(final), file_size=size, file_sha256=digest,
        file_name=f"corporate_park_{created:%Y%m%d_%H%M}_{task.id.hex[:8]}{final.suffix}",
        expires_at=now + timedelta(days=conf.file_retention_days()))
    if not done:  # cancelled while the file was being renamed: no file without its task
        _discard(final)
        return Status.CANCELLED
    return Status.COMPLETED


def _fail(task: ExportTask, exc: BaseException) -> str:
    if isinstance(exc, ExportFailed):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        message = "The server ran out of disk space while writing the export. Please try again later."
    elif isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM,
                                                    errno.ENOTDIR, errno.EEXIST):
        message = "The server cannot write export files (the export folder is not writable). Please contact support."
    else:
        message = f"The export failed because of an internal error (reference {task.id}). Please try again or contact support."
    log.error("export failed task=%s: %s", task.id, message, exc_info=exc)
    _owned(task).update(
        status=Status.FAILED, error=message, finished_at=timezone.now())
    return Status.FAILED


def _discard(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
