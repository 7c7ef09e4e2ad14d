"""Real faults from outside the process, against real servers (live_server.py): SIGKILL in
the middle of an export and a restart, SIGTERM with running and queued exports, three gunicorn
workers (with and without --preload), and SQLite under polling load."""

import os
import sqlite3
import threading
import time
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .live_server import prepared_data, serve

START = "/data/export/corporate-park/"
STATUS = "/data/export/corporate-park/status/"
TERMINAL = {"completed", "failed", "cancelled", "expired"}
# One export thread, so a second export waits queued; heartbeats every second.
CRASH_ENV = {"MAX_EXPORT_THREADS": "1", "BATCH_SIZE": "100", "EXPORT_HEARTBEAT_S": "1",
             "EXPORT_MAX_ACTIVE_PER_USER": "10", "EXPORT_GRACEFUL_S": "1"}


class Client:
    def __init__(self, server):
        self.base, self.session = server.base_url, requests.Session()
        self.session.headers["Authorization"] = f"Token {server.token}"

    def start(self, query: str) -> dict:
        answer = self.session.get(f"{self.base}{START}?{query}", timeout=30)
        assert answer.status_code in (200, 202), (answer.status_code, answer.text)
        return answer.json()

    def status(self, task_id: str) -> dict:
        answer = self.session.get(f"{self.base}{STATUS}?task_id={task_id}", timeout=30)
        assert answer.status_code == 200, (answer.status_code, answer.text)
        return answer.json()

    def wait(self, task_ids, until, timeout: float = 60) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            seen = {t: self.status(t) for t in task_ids}
            if all(until(s) for s in seen.values()) or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)


def leftovers(env) -> list[str]:
    return [n for n in os.listdir(env["EXPORT_DIR"]) if n.endswith(".part")] + os.listdir(
        env["EXPORT_TMP_DIR"])


class CrashTests:
    def test_sigkill_mid_excel_export_then_restart_ends_every_task(self):
        with prepared_data(rows=60_000, env=CRASH_ENV) as (env, token):
            with serve(env, token) as server:
                client = Client(server)
                excel = client.start("export_format=excel")["task_id"]
                csv = client.start("export_format=csv&limit=5000")["task_id"]
                seen = client.wait([excel], lambda s: s["progress"] > 0)
                assert seen[excel]["status"] == "processing", seen
                assert client.status(csv)["status"] == "queued"
                server.kill()
            restarted = time.monotonic()
            with serve(env, token) as server:
                client = Client(server)
                final = client.wait([excel, csv], lambda s: s["status"] in TERMINAL)
                elapsed = time.monotonic() - restarted
                print(f"restart to last task's end: {elapsed:.1f} s")
                assert {s["status"] for s in final.values()} == {"completed"}, final
                assert final[excel]["row_count"] == 60_000
                assert elapsed < 60
                assert leftovers(env) == []
                after = client.start("export_format=csv&limit=10")["task_id"]
                assert client.wait([after], lambda s: s["status"] in TERMINAL)[after]["status"] == "completed"

    def test_sigterm_hands_running_exports_back_and_they_finish_after_restart(self):
        with prepared_data(rows=60_000, env=CRASH_ENV) as (env, token):
            with serve(env, token) as server:
                client = Client(server)
                running = client.start("export_format=pdf&limit=40000")["task_id"]  # ~20 s
                waiting = client.start("export_format=csv&limit=100")["task_id"]
                client.wait([running], lambda s: s["progress"] > 0)
            # serve() ended with SIGTERM: after EXPORT_GRACEFUL_S (1 s) the running export
            # let go of its file and went back to the queue, not counted as an interruption.
            with sqlite3.connect(Path(env["DATA_DIR"]) / "db.sqlite3") as db:
                handed = db.execute("SELECT status, attempts, worker_id FROM exports_exporttask "
                                    "WHERE id = ?", [running.replace("-", "")]).fetchone()
            assert handed == ("queued", 0, ""), handed
            assert leftovers(env) == []
            with serve(env, token) as server:
                client = Client(server)
                final = client.wait([running, waiting], lambda s: s["status"] in TERMINAL, 90)
                assert {s["status"] for s in final.values()} == {"completed"}, final
                assert leftovers(env) == []
            log = server.log()
        assert "Traceback" not in log


class MultiWorkerTests:
    def check_three_workers(self, extra: tuple[str, ...]):
        env_over = {"EXPORT_QUEUE_LIMIT": "3", "BATCH_SIZE": "50", "MAX_EXPORT_THREADS": "1"}
        with prepared_data(rows=20_000, env=env_over) as (env, token):
            with serve(env, token, workers=3, extra=extra) as server:
                client = Client(server)
                codes, accepted = [], []
                for limit in range(15_000, 15_008):  # each export outlives the burst
                    answer = requests.get(f"{server.base_url}{START}?export_format=excel&limit={limit}",
                                          headers={"Authorization": f"Token {server.token}"}, timeout=30)
                    codes.append(answer.status_code)
                    if answer.status_code == 202:
                        accepted.append(answer.json()["task_id"])
                    else:
                        assert int(answer.headers["Retry-After"]) >= 1
                assert set(codes) <= {202, 429, 503} and accepted, codes
                progress = {t: [] for t in accepted}

                def poll_until_done():
                    while True:
                        states = {t: client.status(t) for t in accepted}  # any worker answers
                        for t, s in states.items():
                            progress[t].append(s["progress"])
                        if all(s["status"] in TERMINAL for s in states.values()):
                            return states
                        time.sleep(0.05)

                cancel_me = accepted[-1]
                cancelled = requests.post(f"{server.base_url}/data/export/corporate-park/cancel/",
                                          data={"task_id": cancel_me}, timeout=30,
                                          headers={"Authorization": f"Token {server.token}"})
                assert cancelled.status_code in (200, 409)
                final = poll_until_done()
                for t, seen in progress.items():
                    assert seen == sorted(seen), (t, seen)  # never goes back, whoever answers
                    if t != cancel_me or cancelled.status_code == 409:
                        assert final[t]["status"] == "completed", final[t]
                assert final[cancel_me]["status"] in ({"cancelled"} if cancelled.status_code == 200
                                                      else {"completed"})
                # The limits held across the three processes: when each export was admitted,
                # fewer than EXPORT_QUEUE_LIMIT earlier ones were still queued or running.
                at = {t: {k: datetime.fromisoformat(final[t][k]) for k in ("created_at", "finished_at")}
                      for t in accepted}
                for i, t in enumerate(accepted):
                    active = [j for j in accepted[:i] if at[j]["finished_at"] > at[t]["created_at"]]
                    assert len(active) < 3, (t, active)
                download = client.session.get(server.base_url + final[accepted[0]]["file_url"], timeout=30)
                assert len(download.content) == final[accepted[0]]["file_size"]
                assert leftovers(env) == []

    def test_three_workers_agree(self):
        self.check_three_workers(())

    def test_three_workers_with_preload(self):
        self.check_three_workers(("--preload",))


class SqliteLoadTests:
    def test_eight_exports_and_twenty_pollers_see_no_lock_and_no_5xx(self):
        env_over = {"MAX_EXPORT_THREADS": "8", "EXPORT_MAX_ACTIVE_PER_USER": "8", "BATCH_SIZE": "100"}
        with prepared_data(rows=20_000, env=env_over) as (env, token):
            with serve(env, token, threads=32) as server:
                client = Client(server)
                tasks = [client.start(f"export_format=csv&limit={2000 + i}")["task_id"] for i in range(8)]
                stop, answers, lock = threading.Event(), [], threading.Lock()

                def poller(i):
                    session = requests.Session()
                    session.headers["Authorization"] = f"Token {token}"
                    while not stop.is_set():
                        code = session.get(f"{server.base_url}{STATUS}?task_id={tasks[i % 8]}",
                                           timeout=30).status_code
                        with lock:
                            answers.append(code)
                        time.sleep(0.2)

                with ThreadPoolExecutor(20) as executor:
                    for i in range(20):
                        executor.submit(poller, i)
                    final = client.wait(tasks, lambda s: s["status"] in TERMINAL, timeout=90)
                    time.sleep(1)
                    stop.set()
                assert {s["status"] for s in final.values()} == {"completed"}, final
                assert answers and set(answers) == {200}, sorted(set(answers))
            log = server.log()
        assert "database is locked" not in log
        assert "Traceback" not in log
