"""A real server for tests: gunicorn in a subprocess, on its own temporary data folder and
SQLite database, seeded, with an API user; `live_server()` yields its base URL and token."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Small pools and batches, so a few hundred rows already exercise queueing and batching; a
# short graceful stop, so the server stops quickly at the end of a test.
SMALL_SERVER = {"MAX_EXPORT_THREADS": "2", "MAX_WORKER_THREADS": "4", "BATCH_SIZE": "200",
                "EXPORT_GRACEFUL_S": "2"}
GUNICORN_CONF = ROOT / "gunicorn.conf.py"


@dataclass(frozen=True)
class LiveServer:
    """A running server; unpacks as (base_url, token). The log holds gunicorn's output."""

    base_url: str
    token: str
    log_path: Path
    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL the whole server (master and workers), as a crash would."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=15)

    def __iter__(self):
        return iter((self.base_url, self.token))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def live_server(*, rows: int = 3000, user: str = "loadtest", password: str | None = None,
                env: dict[str, str] | None = None, threads: int = 8,
                startup_timeout: float = 30) -> Iterator[LiveServer]:
    """Migrate, seed `rows` records, create `user` (with `password` if given), serve; stop the
    server and remove its data folder on exit.

    `env` overrides the server's environment (on top of SMALL_SERVER).
    """
    with prepared_data(rows=rows, user=user, password=password, env=env) as (child_env, token):
        with serve(child_env, token, threads=threads, startup_timeout=startup_timeout) as server:
            yield server


@contextmanager
def prepared_data(*, rows: int = 3000, user: str = "loadtest", password: str | None = None,
                  env: dict[str, str] | None = None) -> Iterator[tuple[dict[str, str], str]]:
    """A migrated, seeded data folder with an API user: yields (server env, token), so that
    several servers can be started on it one after another (crash and restart tests)."""
    data_dir = Path(tempfile.mkdtemp(prefix="export-live-"))
    try:
        child_env = _child_env(data_dir, env or {})
        _manage(child_env, "migrate", "--noinput")
        _manage(child_env, "seed_corporate_park", "--rows", str(rows))
        login = ["--password", password] if password else []
        token = _manage(child_env, "create_export_user", user, *login).strip().splitlines()[-1]
        yield child_env, token
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def serve(child_env: dict[str, str], token: str, *, threads: int = 8, workers: int = 1,
          startup_timeout: float = 30, extra: tuple[str, ...] = ()) -> Iterator[LiveServer]:
    """gunicorn on that data folder until the block ends (SIGTERM, then SIGKILL)."""
    log_path = Path(child_env["DATA_DIR"]) / f"server-{time.monotonic_ns()}.log"
    with _gunicorn(child_env, threads, log_path, workers, extra) as (base_url, process):
        _wait_healthy(base_url, process, log_path, startup_timeout)
        yield LiveServer(base_url, token, log_path, process)


def _child_env(data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SMALL_SERVER)
    env.update(
        DATA_DIR=str(data_dir),
        # Always SQLite in the data folder: when the suite runs on PostgreSQL, the live server
        # must not touch the test runner's database.
        DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}",
        EXPORT_DIR=str(data_dir / "exports"),
        EXPORT_TMP_DIR=str(data_dir / "tmp"),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="backend.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    """Run a management command in the server's environment; its stdout, or a clear error."""
    done = subprocess.run([sys.executable, "manage.py", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _gunicorn(env: dict[str, str], threads: int, log_path: Path, workers: int = 1,
              extra: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    # The project's own config when it has one (its worker hooks run the exports), as `make
    # run` uses it; the options after it set only where this server listens and its size.
    config = ["--config", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []
    command = [sys.executable, "-m", "gunicorn", "backend.wsgi:application", *config,
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "gthread",
               "--threads", str(threads), "--timeout", "120",
               # The default control socket is one path per user: two servers would share it.
               "--no-control-socket", *extra]
    with open(log_path, "wb") as log:
        # Its own session, so stopping it also stops the worker it forked.
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen, grace: float = 15) -> None:
    """SIGTERM the server's process group; SIGKILL whatever is left after `grace` seconds."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGKILL)  # also a worker that outlived its master
    process.wait(timeout=grace)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # the whole group has already exited


def _wait_healthy(base_url: str, process: subprocess.Popen, log_path: Path,
                  timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet (a 503 is an HTTPError, a URLError: wait for it too)
        time.sleep(0.2)
    state = "exited" if process.poll() is not None else f"not healthy within {timeout:.0f} s"
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"The live server at {base_url} {state}. Its log ends with:\n{tail}")
