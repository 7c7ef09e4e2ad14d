"""Starting and stopping this process's export machinery with the server that hosts it.

gunicorn calls these from gunicorn.conf.py; `runserver` gets the SIGTERM handler from the
app's ready(). Other servers start the supervisor from the middleware on the first request.
"""

import os
import signal

from . import pool


def on_worker_start() -> None:
    """A server process is ready: claim queued exports, heartbeat and reap from now on."""
    pool.ensure_started()


def on_sigterm_then(previous) -> None:
    """On SIGTERM, first stop taking exports (starts answer 503), then let the server's own
    handler run (gunicorn waits for requests, then calls on_worker_exit)."""

    def handler(signum, frame):
        pool.begin_stop()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)


def on_worker_exit() -> None:
    """Let running exports finish for up to EXPORT_GRACEFUL_S, then hand the rest back."""
    pool.stop()


def install_for_runserver() -> None:
    """runserver has no graceful stop of its own: stop the exports, then exit."""

    def handler(signum, frame):
        pool.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)
