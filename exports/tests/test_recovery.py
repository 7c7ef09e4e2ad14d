"""The database queue and the reaper: claims, heartbeats, dead owners, hand-back, and the
faults a job must survive (full disk, unwritable folder, time limit, cancel racing the end)."""

import errno
import os
import subprocess
import sys
import threading
from datetime import timedelta
from unittest import mock

from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.utils import timezone

from exports import pool, recovery, runner
from exports.exceptions import ServerBusy
from exports.filters import ExportFilters, ExportRequest
from exports.models import ExportTask
from exports.services import export_cancel, export_start
from exports.tests.factories import make_records
from exports.tests.test_runner import ExportDirMixin
from exports.worker import mark_ended, mark_running, worker_id
from exports.writers.csv import CsvWriter

Status = ExportTask.Status
DEAD_HERE = f"{worker_id().rsplit(':', 2)[0]}:999999:1"  # this host, a pid that never ran
ELSEWHERE = "other-host:4242:100"


class ReaperTests(ExportDirMixin, TransactionTestCase):
    def processing(self, owner: str, beat_age_s: float = 0, attempts: int = 1, **fields):
        return ExportTask.objects.create(
            owner=self.user, export_format="csv", fingerprint="f", status=Status.PROCESSING,
            worker_id=owner, attempts=attempts,
            heartbeat_at=timezone.now() - timedelta(seconds=beat_age_s), **fields)

    def test_dead_owner_on_this_host_is_requeued_at_once_and_its_files_removed(self):
        task = self.processing(DEAD_HERE, progress=40, rows_processed=400)
        part = self.export_dir / f"{task.id}.csv.part"
        part.write_bytes(b"half")
        self.assertEqual(recovery.tasks_reap(), [task.id])
        task.refresh_from_db()
        self.assertEqual((task.status, task.worker_id, task.progress), (Status.QUEUED, "", 40))
        self.assertFalse(part.exists())

    def test_second_interruption_fails_with_a_sentence(self):
        task = self.processing(DEAD_HERE, attempts=2)
        recovery.tasks_reap()
        task.refresh_from_db()
        self.assertEqual(task.status, Status.FAILED)
        self.assertEqual(task.error, recovery.INTERRUPTED)
        self.assertIsNotNone(task.finished_at)

    def test_other_host_is_reaped_only_when_its_heartbeat_is_stale(self):
        with override_settings(EXPORT_HEARTBEAT_S=10):
            fresh = self.processing(ELSEWHERE, beat_age_s=25)
            stale = self.processing(ELSEWHERE, beat_age_s=31)
            self.assertEqual(recovery.tasks_reap(), [stale.id])
        self.assertEqual(ExportTask.objects.get(id=fresh.id).status, Status.PROCESSING)

    def test_live_owner_is_never_touched_however_old_its_heartbeat(self):
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            from exports.worker import _start_ticks

            live = f"{DEAD_HERE.rsplit(':', 2)[0]}:{sleeper.pid}:{_start_ticks(sleeper.pid)}"
            busy = self.processing(live, beat_age_s=3600)
            mine = self.processing(worker_id(), beat_age_s=3600)
            mark_running(mine.id)
            self.assertEqual(recovery.tasks_reap(), [])
        finally:
            sleeper.kill()
            sleeper.wait()
            mark_ended(mine.id)
        statuses = set(ExportTask.objects.filter(id__in=[busy.id, mine.id]).values_list("status", flat=True))
        self.assertEqual(statuses, {Status.PROCESSING})

    def test_pid_reused_by_another_process_counts_as_dead(self):
        reused = f"{DEAD_HERE.rsplit(':', 2)[0]}:{os.getpid()}:1"  # our pid, another start time
        task = self.processing(reused)
        self.assertEqual(recovery.tasks_reap(), [task.id])

    def test_heartbeat_refreshes_only_tasks_this_process_runs(self):
        mine = self.processing(worker_id(), beat_age_s=100)
        theirs = self.processing(ELSEWHERE, beat_age_s=100)
        mark_running(mine.id)
        try:
            self.assertEqual(recovery.tasks_heartbeat(), 1)
        finally:
            mark_ended(mine.id)
        mine.refresh_from_db(), theirs.refresh_from_db()
        self.assertLess(timezone.now() - mine.heartbeat_at, timedelta(seconds=5))
        self.assertGreater(timezone.now() - theirs.heartbeat_at, timedelta(seconds=90))

    def test_own_task_whose_job_died_goes_stale_and_is_reaped(self):
        with override_settings(EXPORT_HEARTBEAT_S=10):
            recent = self.processing(worker_id(), beat_age_s=5)  # not running here any more
            orphan = self.processing(worker_id(), beat_age_s=31)
            self.assertEqual(recovery.tasks_heartbeat(), 0)
            self.assertEqual(recovery.tasks_reap(), [orphan.id])
        self.assertEqual(ExportTask.objects.get(id=recent.id).status, Status.PROCESSING)

    def test_stale_part_files_of_ended_tasks_are_swept(self):
        done = self.processing(ELSEWHERE)
        ExportTask.objects.filter(id=done.id).update(status=Status.CANCELLED)
        live = self.processing(ELSEWHERE)
        for task in (done, live):
            (self.export_dir / f"{task.id}.csv.part").write_bytes(b"x")
        (self.export_dir / f"{done.id}.csv").write_bytes(b"kept: not a .part")
        self.assertEqual(recovery.stale_parts_remove(), 1)
        self.assertEqual(sorted(os.listdir(self.export_dir)),
                         sorted([f"{live.id}.csv.part", f"{done.id}.csv"]))

    def test_hand_back_requeues_without_counting_an_attempt(self):
        task = self.processing(worker_id(), attempts=1)
        self.assertEqual(recovery.tasks_hand_back(), 1)
        task.refresh_from_db()
        self.assertEqual((task.status, task.attempts, task.worker_id), (Status.QUEUED, 0, ""))

    def test_rerun_after_reaping_never_shows_less_progress(self):
        make_records(100)
        task = self.processing(DEAD_HERE, progress=60, rows_processed=60)
        recovery.tasks_reap()
        seen = []
        real = runner._progress

        def spy(t, rows):
            real(t, rows)
            seen.append(ExportTask.objects.values_list("progress", "rows_processed").get(id=t.id))

        with mock.patch.object(runner, "_progress", spy):
            self.assertEqual(runner.run_export(task.id), Status.COMPLETED)
        self.assertTrue(all(p >= 60 and r >= 60 for p, r in seen), seen)
        self.assertEqual(ExportTask.objects.get(id=task.id).attempts, 2)


class ClaimTests(ExportDirMixin, TransactionTestCase):
    def test_claims_follow_queue_order_and_never_twice(self):
        pool.stop(grace=0)  # no supervisor of this process may take them first
        try:
            tasks = [ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint=str(i))
                     for i in range(12)]
            claimed, barrier = [], threading.Barrier(4)

            def claimer():
                barrier.wait()
                try:
                    while (task_id := recovery.task_claim_next()) is not None:
                        claimed.append(task_id)
                finally:
                    connection.close()

            threads = [threading.Thread(target=claimer) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            self.assertEqual(sorted(claimed), sorted(t.id for t in tasks))
            self.assertEqual(len(set(claimed)), 12)
        finally:
            ExportTask.objects.update(status=Status.CANCELLED)
            pool.resume()

    def test_queued_task_of_a_dead_process_is_picked_up(self):
        make_records(30)
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="q")
        pool.wake()
        self.assertTrue(pool.wait_idle(30))
        self.assertEqual(ExportTask.objects.get(id=task.id).status, Status.COMPLETED)


class FaultTests(ExportDirMixin, TransactionTestCase):
    def claimed(self, **filters) -> ExportTask:
        return ExportTask.objects.create(owner=self.user, export_format="csv", filters=filters,
                                         fingerprint="x", status=Status.PROCESSING,
                                         worker_id=worker_id(), attempts=1)

    def test_disk_full_at_any_batch_fails_cleanly_and_the_next_export_succeeds(self):
        make_records(50)
        for k in (1, 2, 5):
            calls, real = [], CsvWriter.write_rows

            def full_at_k(writer, rows, k=k):
                calls.append(1)
                if len(calls) == k:
                    raise OSError(errno.ENOSPC, "No space left on device")
                real(writer, rows)

            task = self.claimed()
            with mock.patch.object(CsvWriter, "write_rows", full_at_k):
                self.assertEqual(runner.run_claimed(task.id), Status.FAILED, k)
            self.assertIn("disk space", ExportTask.objects.get(id=task.id).error)
            self.assertEqual(os.listdir(self.export_dir), [], k)
        self.assertEqual(runner.run_claimed(self.claimed().id), Status.COMPLETED)

    def test_unwritable_export_dir_fails_with_a_sentence(self):
        blocker = self.export_dir / "not-a-folder"
        blocker.write_text("x")
        with override_settings(EXPORT_DIR=blocker / "exports"):
            task = self.claimed()
            self.assertEqual(runner.run_claimed(task.id), Status.FAILED)
        self.assertIn("export folder", ExportTask.objects.get(id=task.id).error)

    def test_time_limit_fails_the_export_and_frees_its_thread(self):
        make_records(1000)
        task = self.claimed()
        # The shortest limit (10 ms) against 1,000 one-row batches, each with its own
        # progress commit: far longer, however fast the machine.
        with override_settings(EXPORT_TIME_LIMIT_S=0.01, BATCH_SIZE=1):
            self.assertEqual(runner.run_claimed(task.id), Status.FAILED)
        self.assertIn("longer than the limit", ExportTask.objects.get(id=task.id).error)
        self.assertEqual(os.listdir(self.export_dir), [])

    def test_cancel_racing_completion_is_never_a_mix(self):
        make_records(25)
        for attempt in range(15):
            task = self.claimed()
            thread = threading.Thread(target=runner.run_claimed, args=(task.id,))
            thread.start()
            export_cancel(task_id=task.id, user=self.user)
            thread.join(30)
            task.refresh_from_db()
            files = [f for f in os.listdir(self.export_dir) if f.startswith(str(task.id))]
            if task.status == Status.COMPLETED:
                self.assertEqual(files, [f"{task.id}.csv"], attempt)
            else:
                self.assertEqual((task.status, files), (Status.CANCELLED, []), attempt)

    def test_low_disk_and_stopping_server_answer_503(self):
        request = ExportRequest(export_format="csv", filters=ExportFilters())
        with override_settings(EXPORT_MIN_FREE_BYTES=2**62):
            with self.assertRaises(ServerBusy) as caught:
                export_start(user=self.user, request=request)
            self.assertIn("disk space", str(caught.exception))
        pool.begin_stop()
        try:
            with self.assertRaises(ServerBusy) as caught:
                export_start(user=self.user, request=request)
            self.assertGreaterEqual(caught.exception.retry_after, 1)
        finally:
            pool.resume()
        self.assertEqual(ExportTask.objects.count(), 0)
