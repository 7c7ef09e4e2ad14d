"""run_export: ordered rows from one snapshot, monotonic progress, cancel and failure leave
no file. Thread tests use TransactionTestCase: other threads cannot see a TestCase transaction."""

import csv
import errno
import os
import tempfile
from pathlib import Path

from django.test import TransactionTestCase, override_settings

from exports import pool, runner
from exports.models import CorporateParkRecord, ExportTask
from exports.services import export_cancel
from exports.tests.factories import make_records, make_user
from exports.worker import worker_id
from exports.writers.csv import CsvWriter

Status = ExportTask.Status


class ExportDirMixin:
    def setUp(self):
        super().setUp()
        self._dir = tempfile.TemporaryDirectory()
        self.export_dir = Path(self._dir.name)
        self._override = override_settings(EXPORT_DIR=self.export_dir, BATCH_SIZE=10)
        self._override.enable()
        self.user = make_user()

    def tearDown(self):
        self._override.disable()
        self._dir.cleanup()
        super().tearDown()

    def new_task(self, export_format="csv", **filters) -> ExportTask:
        """A task already claimed by this process, so no supervisor can take it first."""
        return ExportTask.objects.create(owner=self.user, export_format=export_format,
                                         filters=filters, fingerprint="x", attempts=1,
                                         status=Status.PROCESSING, worker_id=worker_id())

    def read_csv(self, task: ExportTask) -> list[list[str]]:
        with open(task.file_path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))


class RunExportTests(ExportDirMixin, TransactionTestCase):
    def test_writes_every_matching_row_in_primary_key_order(self):
        make_records(25, dot="Oran")
        make_records(5, start=25, dot="Alger")
        task = self.new_task(dot=["Oran"])
        self.assertEqual(runner.run_claimed(task.id), Status.COMPLETED)
        task.refresh_from_db()
        rows = self.read_csv(task)[1:]
        expected = list(CorporateParkRecord.objects.filter(dot="Oran").order_by("pk")
                        .values_list("customer_full_name", flat=True))
        self.assertEqual([r[-1] for r in rows], expected)
        self.assertEqual((task.row_count, task.rows_processed, task.progress), (25, 25, 100))

    def test_completed_task_records_its_file(self):
        make_records(3)
        task = self.new_task()
        runner.run_claimed(task.id)
        task.refresh_from_db()
        path = Path(task.file_path)
        self.assertEqual(path, self.export_dir / f"{task.id}.csv")
        self.assertEqual(task.file_size, path.stat().st_size)
        self.assertEqual(len(task.file_sha256), 64)
        self.assertTrue(task.file_name.startswith("corporate_park_") and task.file_name.endswith(".csv"))
        self.assertIsNotNone(task.expires_at)
        self.assertEqual(os.listdir(self.export_dir), [path.name])

    def test_limit_caps_the_rows(self):
        make_records(30)
        task = self.new_task(limit=12)
        runner.run_claimed(task.id)
        task.refresh_from_db()
        self.assertEqual((task.row_count, len(self.read_csv(task)) - 1), (12, 12))

    def test_empty_export_is_a_header_only_file(self):
        task = self.new_task(dot=["Nowhere"])
        self.assertEqual(runner.run_claimed(task.id), Status.COMPLETED)
        task.refresh_from_db()
        self.assertEqual(len(self.read_csv(task)), 1)
        self.assertEqual((task.row_count, task.progress), (0, 100))

    def test_progress_never_decreases_and_reaches_100_only_at_the_end(self):
        make_records(95)
        task = self.new_task()
        seen = []
        real = runner._progress

        def spy(t, rows):
            real(t, rows)
            seen.append(ExportTask.objects.get(id=t.id).progress)

        with self._patch(runner, "_progress", spy):
            runner.run_claimed(task.id)
        self.assertEqual(len(seen), 10)  # once per batch of 10
        self.assertEqual(seen, sorted(seen))
        self.assertLess(max(seen), 100)
        task.refresh_from_db()
        self.assertEqual(task.progress, 100)

    def test_rows_changed_mid_export_neither_vanish_nor_repeat(self):
        make_records(40)
        before = list(CorporateParkRecord.objects.order_by("pk")
                      .values_list("customer_full_name", flat=True))
        task = self.new_task()
        real = runner._progress

        def meddle(t, rows):
            real(t, rows)
            if t.rows_processed == 10:  # another writer changes the table mid-export
                CorporateParkRecord.objects.filter(pk=CorporateParkRecord.objects.order_by("pk")[30].pk).delete()
                make_records(5, start=100)

        with self._patch(runner, "_progress", meddle):
            runner.run_claimed(task.id)
        task.refresh_from_db()
        self.assertEqual([r[-1] for r in self.read_csv(task)[1:]], before)

    def test_cancel_mid_way_stops_and_leaves_no_file(self):
        make_records(60)
        task = self.new_task()
        real = runner._progress

        def cancel_after_two(t, rows):
            if t.rows_processed == 20:
                export_cancel(task_id=t.id, user=self.user)
            real(t, rows)

        with self._patch(runner, "_progress", cancel_after_two):
            self.assertEqual(runner.run_claimed(task.id), Status.CANCELLED)
        task.refresh_from_db()
        self.assertEqual(task.status, Status.CANCELLED)
        self.assertLessEqual(task.rows_processed, 30)
        self.assertEqual(os.listdir(self.export_dir), [])

    def test_disk_full_fails_with_a_sentence_and_leaves_no_file(self):
        make_records(50)
        task = self.new_task()
        real = CsvWriter.write_rows
        calls = []

        def full_at_third(writer, rows):
            calls.append(1)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(writer, rows)

        with self._patch(CsvWriter, "write_rows", full_at_third):
            self.assertEqual(runner.run_claimed(task.id), Status.FAILED)
        task.refresh_from_db()
        self.assertIn("disk space", task.error)
        self.assertIsNotNone(task.finished_at)
        self.assertEqual(os.listdir(self.export_dir), [])

    def test_unexpected_error_fails_with_a_reference(self):
        make_records(5)
        task = self.new_task()

        def boom(writer, rows):
            raise ValueError("bug")

        with self._patch(CsvWriter, "write_rows", boom):
            runner.run_claimed(task.id)
        task.refresh_from_db()
        self.assertEqual(task.status, Status.FAILED)
        self.assertIn(str(task.id), task.error)
        self.assertNotIn("ValueError", task.error)

    def test_pdf_grown_past_its_cap_since_the_start_fails_with_advice(self):
        make_records(12)
        task = self.new_task("pdf")
        with override_settings(EXPORT_PDF_MAX_ROWS=10):
            self.assertEqual(runner.run_claimed(task.id), Status.FAILED)
        task.refresh_from_db()
        self.assertIn("at most 10 rows", task.error)
        self.assertEqual(os.listdir(self.export_dir), [])

    def test_a_task_not_queued_is_never_run(self):
        task = self.new_task()
        ExportTask.objects.filter(id=task.id).update(status=Status.CANCELLED)
        self.assertIsNone(runner.run_export(task.id))
        self.assertIsNone(runner.run_claimed(task.id))
        self.assertEqual(os.listdir(self.export_dir), [])

    def test_each_format_runs_to_a_file(self):
        make_records(15)
        for export_format, ext in (("excel", ".xlsx"), ("pdf", ".pdf"), ("csv", ".csv")):
            task = self.new_task(export_format)
            self.assertEqual(runner.run_claimed(task.id), Status.COMPLETED, export_format)
            task.refresh_from_db()
            self.assertTrue(task.file_path.endswith(ext))

    @staticmethod
    def _patch(target, name, value):
        from unittest import mock

        return mock.patch.object(target, name, value)


class PoolTests(ExportDirMixin, TransactionTestCase):
    def test_submitted_export_runs_on_the_pool_and_is_counted(self):
        make_records(30)
        task = self.new_task()
        before = pool.counters()["export"]["completed_tasks"]
        self.assertEqual(pool.submit_claimed(task.id).result(timeout=60), Status.COMPLETED)
        self.assertTrue(pool.wait_idle(10))
        counts = pool.counters()
        self.assertEqual(counts["export"]["completed_tasks"], before + 1)
        self.assertEqual(counts["export"]["active_threads"], 0)
        self.assertEqual(counts["processing"]["pending_tasks"], 0)

    def test_several_exports_at_once_each_get_their_own_rows(self):
        make_records(40, dot="Oran")
        make_records(20, start=40, dot="Adrar")
        tasks = [self.new_task(dot=[d]) for d in ("Oran", "Adrar", "Oran")]
        futures = [pool.submit_claimed(t.id) for t in tasks]
        self.assertEqual([f.result(timeout=60) for f in futures], [Status.COMPLETED] * 3)
        sizes = [len(self.read_csv(ExportTask.objects.get(id=t.id))) - 1 for t in tasks]
        self.assertEqual(sizes, [40, 20, 40])

    def test_in_order_keeps_order_with_a_bounded_window(self):
        from concurrent.futures import ThreadPoolExecutor
        import time

        def slow_square(x):
            time.sleep(0.01 * (5 - x % 5))
            return x * x

        with ThreadPoolExecutor(4) as executor:
            self.assertEqual(list(runner.in_order(executor, slow_square, range(20), window=3)),
                             [x * x for x in range(20)])
