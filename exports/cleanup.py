"""exports_cleanup: retention of export files, run by cron through `cleanup_exports`.

Files of completed tasks past retention are removed and their tasks marked expired; files
and `.part` files that no live task owns are removed. Every change to a task is a conditional
UPDATE and every removal ignores FileNotFoundError, so two runs at once are safe: only the run
whose UPDATE wins removes the file. Nothing outside EXPORT_DIR is touched, links are never
followed, and files whose names are not export names are left alone.
"""

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from django.utils import timezone

from . import conf
from .models import CleanupRun, ExportTask

Status = ExportTask.Status
UUID_PATTERN = r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
EXPORT_NAME = re.compile(rf"^{UUID_PATTERN}\.(?:csv|xlsx|pdf)(?P<part>\.part)?$")
SCRATCH_NAME = re.compile(rf"^{UUID_PATTERN}\.(?:csv|xlsx|pdf)\.part\..+\.tmp$")


@dataclass
class CleanupReport:
    dry_run: bool = False
    removed: list[tuple[str, int, str]] = field(default_factory=list)  # name, bytes, why
    tasks_expired: int = 0

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size, _ in self.removed)

    def summary(self) -> str:
        verb = "Would remove" if self.dry_run else "Removed"
        lines = [f"{verb} {name} ({size:,} bytes): {why}" for name, size, why in self.removed]
        lines.append(f"{verb} {len(self.removed)} file(s), {self.bytes_freed:,} bytes; "
                     f"{'would expire' if self.dry_run else 'expired'} "
                     f"{self.tasks_expired} task(s).")
        return "\n".join(lines)


def exports_cleanup(*, older_than_days: int | None = None, dry_run: bool = False,
                    now: datetime | None = None) -> CleanupReport:
    """Expire completed exports older than the retention, then remove orphaned files."""
    now = now or timezone.now()
    days = conf.file_retention_days() if older_than_days is None else older_than_days
    report = CleanupReport(dry_run=dry_run)
    _expire_old(report, cutoff=now - timedelta(days=days))
    _remove_orphans(report)
    _remove_stale_scratch(report)
    if not dry_run and (report.removed or report.tasks_expired):
        CleanupRun.objects.create(files_removed=len(report.removed),
                                  bytes_freed=report.bytes_freed,
                                  tasks_expired=report.tasks_expired)
    return report


def _expire_old(report: CleanupReport, *, cutoff: datetime) -> None:
    old = ExportTask.objects.filter(status=Status.COMPLETED, finished_at__lt=cutoff)
    for task_id, file_path in old.values_list("id", "file_path"):
        if not report.dry_run:
            won = ExportTask.objects.filter(id=task_id, status=Status.COMPLETED).update(
                status=Status.EXPIRED)
            if not won:  # another run (or a cancel) got there first
                continue
        report.tasks_expired += 1
        path = _inside_export_dir(file_path)
        if path is not None:
            _remove(report, path, "past retention")


def _remove_orphans(report: CleanupReport) -> None:
    """Remove export-named files and links in EXPORT_DIR that no live task owns."""
    directory = conf.export_dir()
    with os.scandir(directory) as entries:
        candidates = [(e, m) for e in entries if (m := EXPORT_NAME.match(e.name))]
    owners = dict(ExportTask.objects.filter(id__in={UUID(m["id"]) for _, m in candidates})
                  .values_list("id", "status"))
    for entry, match in candidates:
        if entry.is_dir(follow_symlinks=False):
            continue
        status = owners.get(UUID(match["id"]))
        if status in ExportTask.ACTIVE_STATUSES:
            continue  # never touch a task still queued or processing
        if entry.is_symlink():
            _remove(report, Path(entry.path), "a link, not an export file")
        elif match["part"]:
            _remove(report, Path(entry.path), f"unfinished file of a {status or 'missing'} task")
        elif status != Status.COMPLETED:
            _remove(report, Path(entry.path), f"no completed task owns it ({status or 'missing'})")


def _remove_stale_scratch(report: CleanupReport) -> None:
    """Scratch folders (<task_id>.<ext>.part.*.tmp) that no queued or processing task owns:
    a writer removes its own, so these are left by a process that died mid-export."""
    directory = conf.export_tmp_dir()
    with os.scandir(directory) as entries:
        candidates = [(e, UUID(m["id"])) for e in entries
                      if e.is_dir(follow_symlinks=False) and (m := SCRATCH_NAME.match(e.name))]
    active = set(ExportTask.objects.active().filter(id__in={i for _, i in candidates})
                 .values_list("id", flat=True))
    for entry, task_id in candidates:
        if task_id not in active:
            _remove_tree(report, Path(entry.path))


def _remove_tree(report: CleanupReport, path: Path) -> None:
    size = sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    if not report.dry_run:
        shutil.rmtree(path, ignore_errors=True)  # rmtree never follows links out of the tree
    report.removed.append((path.name, size, "scratch folder of a finished or dead export"))


def _inside_export_dir(file_path: str) -> Path | None:
    """The task's file if it is a plain file directly inside EXPORT_DIR, else None."""
    if not file_path:
        return None
    path = Path(file_path)
    if path.parent.resolve() != conf.export_dir().resolve() or path.is_symlink():
        return None
    return path


def _remove(report: CleanupReport, path: Path, why: str) -> None:
    try:
        size = path.lstat().st_size if not path.is_symlink() else 0
        if not report.dry_run:
            path.unlink()  # unlink never follows a link: only the link itself goes
    except FileNotFoundError:
        return  # another run removed it first
    report.removed.append((path.name, size, why))
