"""gunicorn settings of the export service (`make run`), and the hooks that start and stop
each worker's export machinery. Executors and the supervisor are made after the fork."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 600  # a large download on a slow link
# Running exports get EXPORT_GRACEFUL_S to finish after SIGTERM; gunicorn must wait longer.
graceful_timeout = int(float(os.environ.get("EXPORT_GRACEFUL_S") or 25)) + 10
# Longer than the 2 s the frontend waits between polls, so its next poll finds the
# connection still open (at exactly 2 s, it races the server closing it).
keepalive = 5


def post_worker_init(worker):
    import signal

    from exports import lifecycle

    lifecycle.on_worker_start()
    lifecycle.on_sigterm_then(signal.getsignal(signal.SIGTERM))


def worker_exit(server, worker):
    from exports import lifecycle

    lifecycle.on_worker_exit()
