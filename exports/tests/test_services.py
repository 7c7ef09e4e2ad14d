"""export_start's limits and deduplication, and export_cancel in every state."""

import threading
from datetime import timedelta

from django.db import connection
from django.http import QueryDict
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from exports import pool
from exports.exceptions import (
    QueueFull, ServerBusy, StartRateExceeded, TaskNotCancellable, TaskNotFound, TooManyActive,
)
from exports.filters import parse_export_request
from exports.models import ExportTask
from exports.services import export_cancel, export_start, retry_after_estimate
from exports.tests.factories import make_records, make_user
from exports.tests.test_runner import ExportDirMixin

Status = ExportTask.Status


def request(query: str = "export_format=csv"):
    return parse_export_request(QueryDict(query))


def queued(user, n: int = 1, **fields) -> list[ExportTask]:
    return [ExportTask.objects.create(owner=user, export_format="csv", fingerprint=f"fp{i}",
                                      **fields) for i in range(n)]


@override_settings(EXPORT_QUEUE_LIMIT=3, EXPORT_MAX_ACTIVE_PER_USER=2, EXPORT_START_RATE="60/min")
class AdmissionTests(TestCase):
    def setUp(self):
        self.alice, self.bob = make_user("alice"), make_user("bob")

    def test_user_with_max_active_gets_too_many_active_with_retry_after(self):
        queued(self.alice, 2)
        with self.assertRaises(TooManyActive) as caught:
            export_start(user=self.alice, request=request("limit=1"))
        self.assertTrue(1 <= caught.exception.retry_after <= 300)
        self.assertEqual(caught.exception.extra, {"retry_after": caught.exception.retry_after})

    def test_full_queue_gets_queue_full(self):
        queued(self.bob, 3)
        with self.assertRaises(QueueFull):
            export_start(user=self.alice, request=request())

    def test_finished_tasks_do_not_count(self):
        queued(self.alice, 2, status=Status.COMPLETED)
        queued(self.bob, 2, status=Status.FAILED)
        task, deduplicated = export_start(user=self.alice, request=request())
        self.assertFalse(deduplicated)

    def test_deduplicated_start_passes_even_at_the_limit(self):
        first, _ = export_start(user=self.alice, request=request("dot=Oran,Adrar"))
        queued(self.alice, 1)
        again, deduplicated = export_start(user=self.alice, request=request("dot[]=Adrar&dot[]=Oran"))
        self.assertEqual((again.id, deduplicated), (first.id, True))

    def test_rate_counts_accepted_starts_in_the_window_only(self):
        with override_settings(EXPORT_START_RATE="2/min", EXPORT_MAX_ACTIVE_PER_USER=10,
                               EXPORT_QUEUE_LIMIT=10):
            export_start(user=self.alice, request=request("limit=1"))
            export_start(user=self.alice, request=request("limit=1"))  # deduplicated: no count
            export_start(user=self.alice, request=request("limit=2"))
            now = timezone.now()
            with self.assertRaises(StartRateExceeded) as caught:
                export_start(user=self.alice, request=request("limit=3"), now=now)
            self.assertTrue(55 <= caught.exception.retry_after <= 60)
            export_start(user=self.alice, request=request("limit=3"), now=now + timedelta(seconds=61))
            export_start(user=self.bob, request=request("limit=3"), now=now)

    def test_repeat_of_an_active_export_is_answered_even_while_stopping(self):
        first, _ = export_start(user=self.alice, request=request("dot=Oran"))
        pool.begin_stop()
        try:
            again, deduplicated = export_start(user=self.alice, request=request("dot=Oran"))
            self.assertEqual((again.id, deduplicated), (first.id, True))
            with self.assertRaises(ServerBusy):
                export_start(user=self.alice, request=request("dot=Alger"))
        finally:
            pool.resume()

    def test_retry_after_grows_with_the_queue(self):
        with override_settings(MAX_EXPORT_THREADS=2):
            short, long = retry_after_estimate(ahead=2), retry_after_estimate(ahead=20)
        self.assertLess(short, long)
        self.assertLessEqual(long, 300)

    def test_refusals_are_counted_in_the_pool_status(self):
        before = pool.counters()["export"]["refused_tasks"]
        queued(self.bob, 3)
        with self.assertRaises(QueueFull):
            export_start(user=self.alice, request=request())
        self.assertEqual(pool.counters()["export"]["refused_tasks"], before + 1)


class CancelTests(TestCase):
    def setUp(self):
        self.alice = make_user("alice")

    def test_each_terminal_state_refuses_with_409(self):
        for status in (Status.COMPLETED, Status.FAILED, Status.EXPIRED):
            task = queued(self.alice, status=status)[0]
            with self.assertRaises(TaskNotCancellable):
                export_cancel(task_id=task.id, user=self.alice)
            self.assertEqual(ExportTask.objects.get(id=task.id).status, status)

    def test_queued_and_processing_are_cancelled_and_cancel_is_idempotent(self):
        for status in (Status.QUEUED, Status.PROCESSING):
            task = queued(self.alice, status=status)[0]
            self.assertEqual(export_cancel(task_id=task.id, user=self.alice).status, Status.CANCELLED)
            self.assertEqual(export_cancel(task_id=task.id, user=self.alice).status, Status.CANCELLED)

    def test_staff_may_cancel_anyones_task_others_may_not(self):
        task = queued(self.alice)[0]
        with self.assertRaises(TaskNotFound):
            export_cancel(task_id=task.id, user=make_user("bob"))
        self.assertEqual(export_cancel(task_id=task.id, user=make_user("root", staff=True)).status,
                         Status.CANCELLED)


class RaceTests(ExportDirMixin, TransactionTestCase):
    """Admission under real concurrency: threads with their own connections."""

    def race(self, users, query_of) -> list:
        barrier, results = threading.Barrier(len(users)), []

        def attempt(i, user):
            barrier.wait()
            try:
                results.append(export_start(user=user, request=request(query_of(i))))
            except (QueueFull, TooManyActive) as refused:
                results.append(refused)
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(i, u)) for i, u in enumerate(users)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return results

    def tearDown(self):
        ExportTask.objects.active().update(status=Status.CANCELLED)
        pool.wait_idle(60)
        super().tearDown()

    def test_racing_for_the_last_slots_admits_exactly_the_limit(self):
        make_records(2000)  # with BATCH_SIZE=1 below, admitted jobs outlive the race
        users = [make_user(f"u{i}") for i in range(8)]
        with override_settings(EXPORT_QUEUE_LIMIT=3, BATCH_SIZE=1, EXPORT_MAX_ACTIVE_PER_USER=5):
            results = self.race(users, lambda i: "export_format=csv")
        admitted = [r for r in results if isinstance(r, tuple)]
        self.assertEqual(len(results), 8)
        self.assertEqual(len(admitted), 3)
        self.assertTrue(all(isinstance(r, QueueFull) for r in results if r not in admitted))

    def test_identical_requests_at_the_same_instant_make_one_task(self):
        make_records(2000)
        with override_settings(BATCH_SIZE=1):
            results = self.race([self.user] * 4, lambda i: "export_format=csv&dot=Adrar")
        self.assertEqual(len({task.id for task, _ in results}), 1)
        self.assertEqual(sorted(dedup for _, dedup in results), [False, True, True, True])
