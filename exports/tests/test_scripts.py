"""The two client scripts at the repository root (test_threading.py, test_load_export.py), run
as a user runs them, against one real server for the whole module (live_server.py)."""

import subprocess
import sys

import pytest

from .live_server import ROOT, free_port, live_server

SCRIPTS = ("test_threading.py", "test_load_export.py")
PASSWORD = "load-test-password"


@pytest.fixture(scope="module")
def server():
    with live_server(rows=3000, password=PASSWORD) as running:
        yield running


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def outcome(done: subprocess.CompletedProcess) -> str:
    """Both streams, for assertion messages."""
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


class ScriptInterfaceTests:
    @pytest.mark.parametrize("script", SCRIPTS)
    def test_help_lists_the_options(self, script):
        done = run(script, "--help")
        assert done.returncode == 0, outcome(done)
        for option in ("--base-url", "--token", "--username", "--password", "--formats"):
            assert option in done.stdout

    @pytest.mark.parametrize("script", SCRIPTS)
    def test_import_does_nothing(self, script):
        done = run("-c", f"import {script.removesuffix('.py')}")
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), outcome(done)

    @pytest.mark.parametrize("script", SCRIPTS)
    def test_unreachable_server_is_a_sentence_and_exit_2(self, script):
        nowhere = f"http://127.0.0.1:{free_port()}"
        done = run(script, "--base-url", nowhere, "--token", "0" * 40)
        assert done.returncode == 2, outcome(done)
        assert f"Cannot reach the export server at {nowhere}" in done.stderr
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize("script", SCRIPTS)
    def test_wrong_token_is_a_sentence_and_exit_2(self, server, script):
        done = run(script, "--base-url", server.base_url, "--token", "0" * 40)
        assert done.returncode == 2, outcome(done)
        assert "rejected the token (401: Invalid token.)" in done.stderr
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize("script", SCRIPTS)
    def test_wrong_password_is_a_sentence_and_exit_2(self, server, script):
        done = run(script, "--base-url", server.base_url, "--username", "loadtest",
                   "--password", "not-the-password")
        assert done.returncode == 2, outcome(done)
        assert "refused the user name or password for 'loadtest'" in done.stderr

    def test_missing_credentials_is_a_usage_error(self):
        done = run("test_threading.py")
        assert done.returncode == 2, outcome(done)
        assert "give --token, or --username and --password" in done.stderr


class ThreadingScriptTests:
    def test_every_format_completes_and_is_reported(self, server):
        done = run("test_threading.py", "--base-url", server.base_url, "--token", server.token,
                   "--per-format", "1", "--limit", "300", "--poll", "0.5")
        assert done.returncode == 0, outcome(done)
        lines = done.stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("task "))
        assert lines[header].split() == ["task", "format", "limit", "rows", "wait", "s",
                                         "seconds", "status"]
        rows = [line.split() for line in lines[header + 1:header + 4]]
        assert [(r[1], r[2], r[3], r[6]) for r in rows] == [
            ("csv", "300", "300", "completed"), ("excel", "301", "301", "completed"),
            ("pdf", "302", "302", "completed")]
        assert "Pool utilisation seen: peak active export threads " in done.stdout
        assert "peak pending export tasks " in done.stdout
        assert "peak active processing threads " in done.stdout
        assert "Success rate: 100.0% (3/3 completed)" in done.stdout
        assert "Failure rate: 0.0% (0/3 did not complete)" in done.stdout

    def test_logs_in_with_username_and_password(self, server):
        done = run("test_threading.py", "--base-url", server.base_url, "--username", "loadtest",
                   "--password", PASSWORD, "--formats", "csv", "--per-format", "1",
                   "--limit", "50", "--poll", "0.2")
        assert done.returncode == 0, outcome(done)
        assert "Success rate: 100.0% (1/1 completed)" in done.stdout

    def test_unfinished_exports_at_the_timeout_fail_the_run_and_are_cancelled(self, server):
        done = run("test_threading.py", "--base-url", server.base_url, "--token", server.token,
                   "--formats", "pdf", "--per-format", "1", "--limit", "3000",
                   "--timeout", "0.3", "--poll", "0.1")
        assert done.returncode == 1, outcome(done)
        assert "(timeout)" in done.stdout
        assert "cancelled by this script at the timeout (200)" in done.stdout
        assert "Failure rate: 100.0% (1/1 did not complete)" in done.stdout


class LoadScriptTests:
    def test_short_run_completes_downloads_and_reports(self, server):
        done = run("test_load_export.py", "--base-url", server.base_url, "--token",
                   server.token, "--workers", "2", "--exports", "2", "--duration", "20",
                   "--max-limit", "500", "--seed", "7", "--poll", "0.3")
        assert done.returncode == 0, outcome(done)
        out = done.stdout
        assert "Exports: accepted 4 (0 deduplicated), completed 4, failed 0, cancelled 0, " \
               "lost 0;" in out
        assert "Downloads: 4 checked, 0 size mismatches, 0 sha256 mismatches, 0 errors" in out
        for line in ("Requests by status code: ", "Rows/s overall: ", "Latency (s):",
                     "  start ", "  status ", "Export duration by format (s",
                     "Pool: peak active export threads ", "Result: OK"):
            assert line in out, line
        assert "Traceback" not in server.log()

    def test_exports_unfinished_at_the_deadline_are_lost_and_fail_the_run(self, server):
        done = run("test_load_export.py", "--base-url", server.base_url, "--token",
                   server.token, "--workers", "1", "--exports", "1", "--formats", "pdf",
                   "--min-limit", "3000", "--max-limit", "3000", "--duration", "0.5",
                   "--grace", "0", "--poll", "0.2")
        assert done.returncode == 1, outcome(done)
        assert "lost 1;" in done.stdout
        assert "Result: FAILED: lost exports: 1" in done.stdout
