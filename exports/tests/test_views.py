"""The HTTP API as CONTRACT.md writes it: each endpoint, each status code, ownership, auth."""

import csv
import io
import json
import tempfile
import uuid
from pathlib import Path

from django.test import TestCase, TransactionTestCase, override_settings
from rest_framework.test import APIClient

from exports import pool
from exports.models import CorporateParkRecord, ExportTask
from exports.tests.factories import make_records, make_user, token_for

START = "/data/export/corporate-park/"
STATUS = "/data/export/corporate-park/status/"
CANCEL = "/data/export/corporate-park/cancel/"
TASKS = "/data/export/corporate-park/tasks/"
Status = ExportTask.Status


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


class ApiTestMixin:
    def setUp(self):
        super().setUp()
        self._dir = tempfile.TemporaryDirectory()
        self._override = override_settings(EXPORT_DIR=Path(self._dir.name), BATCH_SIZE=50)
        self._override.enable()
        self.user = make_user("alice")
        self.client = client_for(self.user)

    def tearDown(self):
        self._override.disable()
        self._dir.cleanup()
        super().tearDown()

    def completed_task(self, owner=None) -> ExportTask:
        path = Path(self._dir.name) / f"{uuid.uuid4()}.csv"
        path.write_text("DOT\r\nAdrar\r\n", encoding="utf-8")
        return ExportTask.objects.create(
            owner=owner or self.user, export_format="csv", fingerprint="f",
            status=Status.COMPLETED, progress=100, file_path=str(path),
            file_name="corporate_park_20261204_1530_abcdef12.csv", file_size=path.stat().st_size)


class AuthTests(ApiTestMixin, TestCase):
    def test_no_credentials_is_401_with_token_challenge(self):
        for url in (START, f"{STATUS}?task_id={uuid.uuid4()}", TASKS, f"{START}?pool_status=true"):
            response = APIClient().get(url)
            self.assertEqual(response.status_code, 401, url)
            self.assertEqual(response["WWW-Authenticate"], "Token")
            self.assertIn("detail", response.json())

    def test_token_login_returns_the_users_token(self):
        response = APIClient().post("/data/auth/token/", {"username": "alice", "password": "pw-alice"})
        self.assertEqual(response.json(), {"token": token_for(self.user)})

    def test_token_login_with_bad_password_is_400(self):
        response = APIClient().post("/data/auth/token/", {"username": "alice", "password": "no"})
        self.assertEqual(response.status_code, 400)

    def test_health_needs_no_credentials(self):
        response = APIClient().get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "ok", "export_dir": "ok"})

    def test_session_get_cannot_start_or_cancel(self):
        session = APIClient()
        session.force_login(self.user)
        self.assertEqual(session.get(f"{START}?export_format=csv").status_code, 403)
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="f")
        self.assertEqual(session.get(f"{START}?task_id={task.id}&cancel=true").status_code, 403)
        self.assertEqual(ExportTask.objects.get(id=task.id).status, Status.QUEUED)

    def test_session_head_cannot_start_or_cancel_either(self):
        session = APIClient()
        session.force_login(self.user)
        self.assertEqual(session.head(f"{START}?export_format=csv").status_code, 403)
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="f")
        self.assertEqual(session.head(f"{START}?task_id={task.id}&cancel=true").status_code, 403)
        self.assertEqual(ExportTask.objects.get(id=task.id).status, Status.QUEUED)
        self.assertEqual(ExportTask.objects.count(), 1)

    def test_session_post_needs_csrf(self):
        session = APIClient(enforce_csrf_checks=True)
        session.force_login(self.user)
        self.assertEqual(session.post(START, {"export_format": "csv"}).status_code, 403)
        self.assertEqual(ExportTask.objects.count(), 0)

    def test_session_may_read_status_and_pool_status(self):
        session = APIClient()
        session.force_login(self.user)
        self.assertEqual(session.get(f"{START}?pool_status=true").status_code, 200)
        self.assertEqual(session.get(TASKS).status_code, 200)

    def test_cors_preflight_allows_listed_origin_and_exposes_disposition(self):
        with override_settings(CORS_ALLOWED_ORIGINS=["http://front.example"]):
            response = APIClient().options(START, HTTP_ORIGIN="http://front.example",
                                           HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                                           HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")
            self.assertEqual(response["Access-Control-Allow-Origin"], "http://front.example")
            get = self.client.get(f"{START}?pool_status=true", HTTP_ORIGIN="http://front.example")
            self.assertIn("Content-Disposition", get["Access-Control-Expose-Headers"])
            other = APIClient().options(START, HTTP_ORIGIN="http://evil.example",
                                        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
            self.assertNotIn("Access-Control-Allow-Origin", other)


class StartTests(ApiTestMixin, TestCase):
    def test_start_answers_202_with_location_and_body(self):
        response = self.client.get(f"{START}?export_format=csv&dot=Adrar&dot=Oran")
        self.assertEqual(response.status_code, 202)
        body = response.json()
        self.assertEqual(set(body), {"task_id", "status", "progress", "status_url",
                                     "export_format", "deduplicated"})
        self.assertEqual((body["status"], body["progress"], body["deduplicated"]), ("queued", 0, False))
        self.assertEqual(response["Location"], body["status_url"])
        task = ExportTask.objects.get(id=body["task_id"])
        self.assertEqual(task.filters, {"dot": ["Adrar", "Oran"]})

    def test_start_without_trailing_slash_and_default_format(self):
        response = self.client.get("/data/export/corporate-park")
        self.assertEqual(response.status_code, 202)
        self.assertEqual(response.json()["export_format"], "excel")

    def test_post_with_form_and_json_bodies(self):
        form = self.client.post(START, {"export_format": "csv", "dot[]": ["Oran", "Adrar"]})
        self.assertEqual(form.status_code, 202)
        json_body = self.client.post(START, {"export_format": "pdf", "dot": ["Oran"], "limit": 5},
                                     format="json")
        self.assertEqual(json_body.status_code, 202)
        self.assertEqual(ExportTask.objects.get(id=json_body.json()["task_id"]).filters,
                         {"dot": ["Oran"], "limit": 5})

    def test_identical_active_export_is_deduplicated_in_any_form(self):
        first = self.client.get(f"{START}?export_format=csv&dot[]=Oran&dot[]=Adrar").json()
        again = self.client.get(f"{START}?export_format=csv&dot=Adrar,Oran")
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json()["task_id"], first["task_id"])
        self.assertTrue(again.json()["deduplicated"])
        self.assertEqual(ExportTask.objects.count(), 1)

    def test_other_user_or_finished_task_is_not_deduplicated(self):
        self.client.get(f"{START}?export_format=csv")
        bob = client_for(make_user("bob"))
        self.assertEqual(bob.get(f"{START}?export_format=csv").status_code, 202)
        ExportTask.objects.update(status=Status.COMPLETED)
        self.assertEqual(self.client.get(f"{START}?export_format=csv").status_code, 202)

    def test_bad_parameters_are_400_naming_each(self):
        cases = {"export_format=": "export_format", "export_format=doc": "export_format",
                 "limit=abc": "limit", "limit=0": "limit", "limit=-1": "limit",
                 "limit=99999999999": "limit", "month=3": "month", "year=2024&month=13": "month",
                 "year=abc": "year", "dot=" + "x" * 201: "dot"}
        for query, field in cases.items():
            response = self.client.get(f"{START}?{query}")
            self.assertEqual(response.status_code, 400, query)
            self.assertIn(field, response.json()["errors"], query)
            self.assertIn("detail", response.json())
        self.assertEqual(ExportTask.objects.count(), 0)

    def test_json_bodies_that_are_not_objects_are_400(self):
        for body in ("null", "[1, 2]", '"abc"', "5", "true"):
            for url in (START, CANCEL):
                response = self.client.post(url, body, content_type="application/json")
                self.assertEqual(response.status_code, 400, (url, body))
                self.assertIn("body", response.json()["errors"])

    def test_json_null_is_absent_and_nested_values_are_400(self):
        response = self.client.post(START, {"export_format": "csv", "dot": None}, format="json")
        self.assertEqual(response.status_code, 202)
        self.assertEqual(ExportTask.objects.get(id=response.json()["task_id"]).filters, {})
        nested = self.client.post(START, {"dot": {"a": 1}}, format="json")
        self.assertIn("dot", nested.json()["errors"])

    def test_invalid_text_is_400_never_500(self):
        cases = [(START, {"export_format": "\ud800"}, "export_format"),
                 (START, {"dot": "\ud800x"}, "dot"), (START, {"limit": "\ud800"}, "limit"),
                 (CANCEL, {"task_id": "\ud800"}, "task_id")]
        for url, body, field in cases:  # json.dumps escapes the lone surrogate as \\ud800
            response = self.client.post(url, json.dumps(body), content_type="application/json")
            self.assertEqual(response.status_code, 400, body)
            self.assertIn(field, response.json()["errors"])
        self.assertEqual(self.client.get(f"{START}?dot=%00x").status_code, 400)
        self.assertEqual(ExportTask.objects.count(), 0)

    @override_settings(EXPORT_PDF_MAX_ROWS=10)
    def test_pdf_above_its_row_cap_is_refused_with_advice(self):
        make_records(11)
        response = self.client.get(f"{START}?export_format=pdf")
        self.assertEqual(response.status_code, 400)
        message = response.json()["errors"]["export_format"][0]
        self.assertIn("10", message)
        self.assertIn("csv", message)
        self.assertEqual(self.client.get(f"{START}?export_format=pdf&limit=10").status_code, 202)
        self.assertEqual(self.client.get(f"{START}?export_format=pdf&dot=Oran").status_code, 202)


class StatusTests(ApiTestMixin, TestCase):
    def test_status_without_task_id_is_400_and_starts_nothing(self):
        response = self.client.get(STATUS)
        self.assertEqual(response.status_code, 400)
        self.assertIn("task_id", response.json()["errors"])
        self.assertEqual(ExportTask.objects.count(), 0)

    def test_status_with_a_bad_uuid_is_400(self):
        self.assertEqual(self.client.get(f"{STATUS}?task_id=nope").status_code, 400)

    def test_unknown_and_foreign_tasks_answer_alike(self):
        foreign = ExportTask.objects.create(owner=make_user("bob"), export_format="csv", fingerprint="f")
        unknown = self.client.get(f"{STATUS}?task_id={uuid.uuid4()}")
        theirs = self.client.get(f"{STATUS}?task_id={foreign.id}")
        self.assertEqual((unknown.status_code, theirs.status_code), (404, 404))
        self.assertEqual(unknown.json().keys(), theirs.json().keys())

    def test_staff_see_every_task(self):
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="f")
        staff = client_for(make_user("root", staff=True))
        self.assertEqual(staff.get(f"{STATUS}?task_id={task.id}").status_code, 200)

    def test_status_body_has_every_contract_field(self):
        task = self.completed_task()
        body = self.client.get(f"{STATUS}?task_id={task.id}&t=123").json()
        for field in ("task_id", "status", "progress", "row_count", "rows_processed",
                      "remaining_time", "file_url", "file_name", "file_size", "file_sha256",
                      "error", "created_at", "started_at", "finished_at", "expires_at",
                      "export_format", "filters"):
            self.assertIn(field, body)
        self.assertEqual(body["file_url"], f"/data/export/corporate-park/download/{task.id}/")

    def test_tasks_lists_only_own_exports_newest_first(self):
        older = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="a")
        newer = ExportTask.objects.create(owner=self.user, export_format="pdf", fingerprint="b")
        ExportTask.objects.create(owner=make_user("bob"), export_format="csv", fingerprint="c")
        body = self.client.get(TASKS).json()
        self.assertEqual([t["task_id"] for t in body["results"]], [str(newer.id), str(older.id)])
        self.assertEqual(body["count"], 2)

    def test_pool_status_has_every_field(self):
        body = self.client.get(f"{START}?pool_status=true").json()
        self.assertEqual(set(body), {"export_pool", "processing_pool", "batch_size",
                                     "cleaned_files", "system", "backend"})
        self.assertEqual(set(body["export_pool"]), {
            "active_threads", "max_workers", "pending_tasks", "queue_limit", "total_tasks",
            "completed_tasks", "failed_tasks", "cancelled_tasks", "refused_tasks",
            "oldest_wait_seconds", "duration_p50_seconds", "duration_p95_seconds"})
        self.assertEqual(set(body["processing_pool"]), {"active_threads", "max_workers", "pending_tasks"})
        self.assertEqual(set(body["system"]), {"cpu_percent", "memory_percent",
                                               "process_rss_bytes", "disk_free_bytes"})
        self.assertEqual((body["backend"], body["batch_size"]), ("threads", 50))
        self.assertEqual(ExportTask.objects.count(), 0)

    def test_pool_status_pending_is_the_queue_in_the_database(self):
        ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="a")
        ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="b")
        body = self.client.get(f"{START}?pool_status=true").json()
        self.assertEqual(body["export_pool"]["pending_tasks"], 2)


class DownloadAndCancelTests(ApiTestMixin, TestCase):
    def download_url(self, task) -> str:
        return f"/data/export/corporate-park/download/{task.id}/"

    def test_download_streams_with_headers_and_ignores_cache_buster(self):
        task = self.completed_task()
        response = self.client.get(self.download_url(task) + "?t=1733325000000")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(response["Content-Disposition"],
                         'attachment; filename="corporate_park_20261204_1530_abcdef12.csv"')
        self.assertEqual(int(response["Content-Length"]), task.file_size)
        self.assertEqual(b"".join(response.streaming_content), Path(task.file_path).read_bytes())

    def test_download_of_unfinished_expired_foreign_tasks(self):
        queued = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="q")
        expired = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="e",
                                            status=Status.EXPIRED)
        foreign = self.completed_task(owner=make_user("bob"))
        self.assertEqual(self.client.get(self.download_url(queued)).status_code, 409)
        self.assertEqual(self.client.get(self.download_url(expired)).status_code, 410)
        self.assertEqual(self.client.get(self.download_url(foreign)).status_code, 404)
        self.assertEqual(self.client.get(f"/data/export/corporate-park/download/{uuid.uuid4()}/").status_code, 404)

    def test_file_removed_under_a_completed_task_answers_410(self):
        task = self.completed_task()
        Path(task.file_path).unlink()
        self.assertEqual(self.client.get(self.download_url(task)).status_code, 410)

    def test_cancel_queued_task_by_post_then_again(self):
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="q")
        first = self.client.post(CANCEL, {"task_id": str(task.id)})
        self.assertEqual(first.json(), {"task_id": str(task.id), "status": "cancelled"})
        self.assertEqual(self.client.post(CANCEL, {"task_id": str(task.id)}).status_code, 200)

    def test_cancel_legacy_get_form(self):
        task = ExportTask.objects.create(owner=self.user, export_format="csv", fingerprint="q")
        response = self.client.get(f"{START}?task_id={task.id}&cancel=true")
        self.assertEqual((response.status_code, response.json()["status"]), (200, "cancelled"))
        self.assertEqual(ExportTask.objects.count(), 1)

    def test_cancel_finished_is_409_and_unknown_or_foreign_is_404(self):
        done = self.completed_task()
        foreign = ExportTask.objects.create(owner=make_user("bob"), export_format="csv", fingerprint="q")
        self.assertEqual(self.client.post(CANCEL, {"task_id": str(done.id)}).status_code, 409)
        self.assertEqual(self.client.post(CANCEL, {"task_id": str(foreign.id)}).status_code, 404)
        self.assertEqual(self.client.post(CANCEL, {"task_id": str(uuid.uuid4())}).status_code, 404)
        self.assertEqual(self.client.post(CANCEL, {}).status_code, 400)
        self.assertEqual(ExportTask.objects.get(id=foreign.id).status, Status.QUEUED)


class EndToEndTests(ApiTestMixin, TransactionTestCase):
    def wait_terminal(self, status_url: str) -> dict:
        self.assertTrue(pool.wait_idle(60))
        return self.client.get(status_url).json()

    def test_csv_export_of_two_dots_holds_exactly_their_rows(self):
        make_records(120, dot="Adrar")
        make_records(80, start=120, dot="Oran")
        make_records(50, start=200, dot="Alger")
        started = self.client.get(f"{START}?export_format=csv&dot=Adrar&dot=Oran").json()
        status = self.wait_terminal(started["status_url"])
        self.assertEqual(status["status"], "completed")
        expected = CorporateParkRecord.objects.filter(dot__in=["Adrar", "Oran"])
        self.assertEqual(status["row_count"], expected.count())
        download = self.client.get(status["file_url"] + "?t=1")
        rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
        self.assertEqual(rows[0][0], "DOT")
        self.assertEqual([r[-1] for r in rows[1:]],
                         list(expected.order_by("pk").values_list("customer_full_name", flat=True)))

    def test_each_format_completes_and_downloads(self):
        make_records(60)
        for export_format, content_type in (("excel", "spreadsheetml"), ("pdf", "application/pdf")):
            started = self.client.get(f"{START}?export_format={export_format}").json()
            status = self.wait_terminal(started["status_url"])
            self.assertEqual(status["status"], "completed", status)
            download = self.client.get(status["file_url"])
            self.assertIn(content_type, download["Content-Type"])
            self.assertEqual(len(b"".join(download.streaming_content)), status["file_size"])
