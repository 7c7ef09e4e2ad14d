"""exports_cleanup and the cleanup_exports command: retention, orphans, links, dry run, and
two runs at once. Time is injected with now=, never slept."""

import io
import os
import tempfile
import threading
import uuid
from datetime import timedelta
from pathlib import Path

from django.core.management import CommandError, call_command
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from exports.cleanup import exports_cleanup
from exports.models import ExportTask
from exports.selectors import cleaned_files_total
from exports.tests.factories import make_user, token_for

Status = ExportTask.Status


class CleanupMixin:
    def setUp(self):
        super().setUp()
        self._dirs = [tempfile.TemporaryDirectory() for _ in range(3)]
        self.export_dir, self.tmp_dir, self.outside = (Path(d.name) for d in self._dirs)
        self._override = override_settings(EXPORT_DIR=self.export_dir, EXPORT_TMP_DIR=self.tmp_dir,
                                           FILE_RETENTION_DAYS=7)
        self._override.enable()
        self.user = make_user()
        self.now = timezone.now()

    def tearDown(self):
        self._override.disable()
        for directory in self._dirs:
            directory.cleanup()
        super().tearDown()

    def task(self, status=Status.COMPLETED, age_days=0, ext=".csv", with_file=True) -> ExportTask:
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="f",
                                         status=status)
        path = self.export_dir / f"{task.id}{ext}"
        if with_file:
            path.write_bytes(b"x" * 100)
        ExportTask.objects.filter(id=task.id).update(
            file_path=str(path), finished_at=self.now - timedelta(days=age_days))
        return task

    def files(self) -> set[str]:
        return set(os.listdir(self.export_dir))


class RetentionTests(CleanupMixin, TestCase):
    def test_files_past_retention_go_and_their_tasks_expire(self):
        old, fresh = self.task(age_days=8), self.task(age_days=6)
        report = exports_cleanup(now=self.now)
        self.assertEqual(self.files(), {f"{fresh.id}.csv"})
        self.assertEqual(ExportTask.objects.get(id=old.id).status, Status.EXPIRED)
        self.assertEqual(ExportTask.objects.get(id=fresh.id).status, Status.COMPLETED)
        self.assertEqual((report.tasks_expired, report.bytes_freed), (1, 100))

    def test_days_overrides_the_setting(self):
        self.task(age_days=2)
        exports_cleanup(older_than_days=1, now=self.now)
        self.assertEqual(self.files(), set())

    def test_failed_and_cancelled_tasks_keep_their_status(self):
        failed = self.task(Status.FAILED, age_days=30, with_file=False)
        cancelled = self.task(Status.CANCELLED, age_days=30, with_file=False)
        exports_cleanup(now=self.now)
        self.assertEqual(ExportTask.objects.get(id=failed.id).status, Status.FAILED)
        self.assertEqual(ExportTask.objects.get(id=cancelled.id).status, Status.CANCELLED)

    def test_orphans_and_stale_parts_go_active_tasks_stay(self):
        orphan = self.export_dir / f"{uuid.uuid4()}.xlsx"
        orphan.write_bytes(b"o")
        failed_part = self.export_dir / f"{self.task(Status.FAILED, with_file=False).id}.pdf.part"
        failed_part.write_bytes(b"p")
        running = self.task(Status.PROCESSING, ext=".csv.part")
        queued_file = self.task(Status.QUEUED)
        unknown = self.export_dir / "notes.txt"
        unknown.write_text("operator's file")
        exports_cleanup(now=self.now + timedelta(days=365))
        self.assertEqual(self.files(), {f"{running.id}.csv.part", f"{queued_file.id}.csv", "notes.txt"})

    def test_links_are_removed_without_following_them(self):
        target = self.outside / "precious.csv"
        target.write_text("keep me")
        link = self.export_dir / f"{uuid.uuid4()}.csv"
        link.symlink_to(target)
        exports_cleanup(now=self.now)
        self.assertFalse(os.path.lexists(link))
        self.assertEqual(target.read_text(), "keep me")

    def test_task_path_outside_export_dir_is_never_removed(self):
        task = self.task(age_days=30)
        outside_file = self.outside / "elsewhere.csv"
        outside_file.write_text("keep me")
        ExportTask.objects.filter(id=task.id).update(file_path=str(outside_file))
        exports_cleanup(now=self.now)
        self.assertTrue(outside_file.exists())
        self.assertEqual(ExportTask.objects.get(id=task.id).status, Status.EXPIRED)

    def test_stale_scratch_folders_go_active_ones_stay(self):
        dead = self.task(Status.FAILED, with_file=False)
        live = self.task(Status.PROCESSING, with_file=False)
        for task in (dead, live):
            scratch = self.tmp_dir / f"{task.id}.xlsx.part.abc.tmp"
            scratch.mkdir()
            (scratch / "sheet1.xml").write_bytes(b"s" * 10)
        exports_cleanup(now=self.now)
        self.assertEqual(os.listdir(self.tmp_dir), [f"{live.id}.xlsx.part.abc.tmp"])

    def test_dry_run_changes_nothing_but_reports(self):
        old = self.task(age_days=8)
        (self.export_dir / f"{uuid.uuid4()}.csv").write_bytes(b"o")
        before = self.files()
        report = exports_cleanup(dry_run=True, now=self.now)
        self.assertEqual(self.files(), before)
        self.assertEqual(ExportTask.objects.get(id=old.id).status, Status.COMPLETED)
        self.assertEqual(len(report.removed), 2)
        self.assertIn("Would remove", report.summary())
        self.assertEqual(cleaned_files_total(), 0)

    def test_expired_download_answers_410_and_pool_status_counts_files(self):
        task = self.task(age_days=8)
        exports_cleanup(now=self.now)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(self.user)}")
        response = client.get(f"/data/export/corporate-park/download/{task.id}/")
        self.assertEqual(response.status_code, 410)
        status = client.get(f"/data/export/corporate-park/status/?task_id={task.id}").json()
        self.assertEqual(status["status"], "expired")
        self.assertEqual(client.get("/data/export/corporate-park/?pool_status=true").json()["cleaned_files"], 1)


class CommandTests(CleanupMixin, TestCase):
    def test_prints_what_it_removed_and_bytes_freed(self):
        task = self.task(age_days=8)
        out = io.StringIO()
        call_command("cleanup_exports", stdout=out)
        self.assertIn(f"{task.id}.csv", out.getvalue())
        self.assertIn("Removed 1 file(s), 100 bytes", out.getvalue())

    def test_nothing_to_do_is_fine(self):
        out = io.StringIO()
        call_command("cleanup_exports", "--dry-run", stdout=out)
        self.assertIn("0 file(s)", out.getvalue())

    def test_negative_days_is_an_error(self):
        with self.assertRaises(CommandError):
            call_command("cleanup_exports", "--days", "-1", stdout=io.StringIO())


class ConcurrentCleanupTests(CleanupMixin, TransactionTestCase):
    def test_two_runs_at_once_remove_each_file_once(self):
        tasks = [self.task(age_days=10) for _ in range(20)]
        for _ in range(10):
            (self.export_dir / f"{uuid.uuid4()}.pdf").write_bytes(b"o")
        barrier, reports = threading.Barrier(2), []

        def run():
            barrier.wait()
            try:
                reports.append(exports_cleanup(now=self.now))
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(self.files(), set())
        self.assertEqual(sum(len(r.removed) for r in reports), 30)
        self.assertEqual(sum(r.tasks_expired for r in reports), 20)
        self.assertEqual(ExportTask.objects.filter(status=Status.EXPIRED).count(), len(tasks))
