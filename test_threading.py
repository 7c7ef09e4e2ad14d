"""Concurrency check against a running export server: starts several exports of each format at
once, follows them and the pools to the end, then prints a table, the pool peaks and the rates.

    python test_threading.py [--base-url URL] (--token KEY | --username U --password P)
        [--formats csv,excel,pdf] [--per-format 2] [--limit 2000] [--poll 1] [--timeout 300]

It also owns the small client (Api, connect, start_export) that test_load_export.py reuses.
Exit status: 0 when every export completed, 1 otherwise, 2 when the server cannot be used.
"""

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import requests
import urllib3

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
EXPORT_PATH = "/data/export/corporate-park/"
STATUS_PATH = f"{EXPORT_PATH}status/"
TOKEN_PATH = "/data/auth/token/"
FORMATS = ("csv", "excel", "pdf")
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
MIN_RETRY_WAIT = 0.5  # a "Retry-After: 0" must not turn the retry loop into a busy loop


class ScriptError(Exception):
    """Something the user must fix (server unreachable, token rejected): one sentence, exit 2."""


# on_call(kind, seconds, answer): answer is the Response, or the exception that replaced it.
CallHook = Callable[[str, float, "requests.Response | Exception"], None]


class Api:
    """The export API over requests, as the web frontend uses it (GET, token header).

    Each thread gets its own Session, because a Session is not safe to share between threads.
    Every call is timed and reported to `on_call`, so a load test can count and time them.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 30,
                 on_call: CallHook | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.on_call = on_call
        self.resets = 0  # requests resent after a reset on a reused connection
        self._local = threading.local()
        self._lock = threading.Lock()

    def call(self, kind: str, path: str, **kwargs) -> requests.Response:
        started = time.monotonic()
        try:
            answer = self._get(path, **kwargs)
        except requests.RequestException as exc:
            self._report(kind, time.monotonic() - started, exc)
            raise
        self._report(kind, time.monotonic() - started, answer)
        return answer

    def start(self, params: dict) -> requests.Response:
        return self.call("start", EXPORT_PATH, params=params)

    def status(self, task_id: str) -> requests.Response:
        return self.call("status", STATUS_PATH, params={"task_id": task_id})

    def pool_status(self) -> requests.Response:
        return self.call("pool", EXPORT_PATH, params={"pool_status": "true"})

    def cancel(self, task_id: str) -> requests.Response:
        """The legacy GET form, open to token clients like this one."""
        return self.call("cancel", EXPORT_PATH, params={"task_id": task_id, "cancel": "true"})

    def download(self, file_url: str) -> requests.Response:
        """The file, streamed; `?t=<ms>` defeats caches, as the web frontend does."""
        return self.call("download", file_url, params={"t": int(time.time() * 1000)},
                         stream=True)

    def _get(self, path: str, **kwargs) -> requests.Response:
        url = self.base_url + path
        try:
            return self._session().get(url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            if not _reset_on_reuse(exc):
                raise
            # The server closed this idle keep-alive connection as we reused it (gunicorn closes
            # them after 2 s, which is also the frontend's poll interval): nothing was answered,
            # so ask once more on a new connection, as browsers do. Repeating a start is safe:
            # an identical active export is deduplicated.
            self._count_reset()
            return self._session().get(url, timeout=self.timeout, **kwargs)

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers["Authorization"] = f"Token {self.token}"
        return self._local.session

    def _count_reset(self) -> None:
        with self._lock:
            self.resets += 1

    def _report(self, kind: str, seconds: float, answer) -> None:
        if self.on_call is not None:
            self.on_call(kind, seconds, answer)


def _reset_on_reuse(exc: Exception) -> bool:
    """Connection aborted before any answer (urllib3's ProtocolError), not refused or timed out."""
    return (isinstance(exc, requests.ConnectionError) and bool(exc.args)
            and isinstance(exc.args[0], urllib3.exceptions.ProtocolError))


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """The options both scripts share: where the server is, who we are, which formats."""
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help=f"Server root (default {DEFAULT_BASE_URL}).")
    parser.add_argument("--token", help="API token (python manage.py create_export_user NAME).")
    parser.add_argument("--username", help="Log in with POST /data/auth/token/ instead.")
    parser.add_argument("--password", help="Password for --username.")
    parser.add_argument("--formats", type=parse_formats, default=FORMATS,
                        help="Comma-separated formats to export (default csv,excel,pdf).")


def check_credentials(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.token and not (args.username and args.password):
        parser.error("give --token, or --username and --password")


def parse_formats(raw: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower() for f in raw.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"formats must be among {', '.join(FORMATS)}; got {raw!r}")
    return formats


def connect(args: argparse.Namespace) -> Api:
    """An Api whose token the server accepts, or ScriptError saying what is wrong."""
    token = args.token or _login(args.base_url, args.username, args.password)
    api = Api(args.base_url, token)
    try:
        answer = api.pool_status()
    except requests.RequestException as exc:
        raise ScriptError(_unreachable(args.base_url, exc)) from None
    if answer.status_code in (401, 403):
        raise ScriptError(f"The server at {args.base_url} rejected the token "
                          f"({answer.status_code}: {detail(answer)}). Check --token, or log in "
                          "with --username and --password.")
    if answer.status_code != 200 or "export_pool" not in _json(answer):
        raise ScriptError(f"{args.base_url} does not look like the export service: the pool "
                          f"status answered {answer.status_code}. Check --base-url.")
    return api


def _login(base_url: str, username: str, password: str) -> str:
    try:
        answer = requests.post(base_url.rstrip("/") + TOKEN_PATH, timeout=30,
                               data={"username": username, "password": password})
    except requests.RequestException as exc:
        raise ScriptError(_unreachable(base_url, exc)) from None
    token = _json(answer).get("token")
    if answer.status_code == 400:
        raise ScriptError(f"The server refused the user name or password for {username!r}. "
                          "Check --username and --password, or use --token.")
    if answer.status_code != 200 or not token:
        raise ScriptError(f"Logging in at {base_url}{TOKEN_PATH} answered "
                          f"{answer.status_code}. Check --base-url.")
    return token


def _unreachable(base_url: str, exc: Exception) -> str:
    return (f"Cannot reach the export server at {base_url} ({type(exc).__name__}). "
            "Is it running? Check --base-url.")


def _json(answer: requests.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def detail(answer: requests.Response) -> str:
    """The server's explanation of an answer: its `detail`, else the start of its body."""
    return str(_json(answer).get("detail") or answer.text[:120].strip() or answer.reason)


def retry_after(answer: requests.Response) -> float | None:
    """Seconds to wait before retrying a 429/503 that carries Retry-After; else None."""
    if answer.status_code not in (429, 503):
        return None
    try:
        return max(MIN_RETRY_WAIT, float(answer.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None  # no usable Retry-After (an HTTP date included): not ours to retry


def start_export(api: Api, params: dict, *, deadline: float) -> tuple[requests.Response, int]:
    """Start one export, waiting out each 429/503 Retry-After until `deadline` (monotonic).

    Returns the last answer (202 new or 200 deduplicated when accepted) and how many times
    the start was retried.
    """
    retries = 0
    while True:
        answer = api.start(params)
        wait = retry_after(answer)
        if wait is None or time.monotonic() + wait > deadline:
            return answer, retries
        time.sleep(wait)
        retries += 1


def parse_time(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_time(end) - parse_time(start)).total_seconds()


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * pct / 100)) - 1]


# --- this script's own run -------------------------------------------------------------------

@dataclass
class Export:
    """One export this script asked for, and what it last learned about it."""

    export_format: str
    limit: int
    task_id: str | None = None
    deduplicated: bool = False
    status: str = "not started"
    retries: int = 0
    body: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class PoolPeaks:
    samples: int = 0
    export_active: int = 0
    export_max: int = 0
    export_pending: int = 0
    processing_active: int = 0
    processing_max: int = 0

    def add(self, pool: dict) -> None:
        export, processing = pool["export_pool"], pool["processing_pool"]
        self.samples += 1
        self.export_active = max(self.export_active, export["active_threads"])
        self.export_max = export["max_workers"]
        self.export_pending = max(self.export_pending, export["pending_tasks"])
        self.processing_active = max(self.processing_active, processing["active_threads"])
        self.processing_max = processing["max_workers"]

    def line(self) -> str:
        return (f"peak active export threads {self.export_active}/{self.export_max}, "
                f"peak pending export tasks {self.export_pending}, "
                f"peak active processing threads {self.processing_active}/"
                f"{self.processing_max} ({self.samples} samples)")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Start several exports of each format at once on a running export "
                    "server, follow them and the pools, and report. Exits 1 if any export "
                    "did not complete, 2 if the server cannot be used.")
    add_server_args(parser)
    parser.add_argument("--per-format", type=int, default=2,
                        help="Exports started at once per format (default 2).")
    parser.add_argument("--limit", type=int, default=2000,
                        help="Rows per export (default 2000); each export adds its index, so "
                             "no two are identical and none is deduplicated.")
    parser.add_argument("--poll", type=float, default=1.0,
                        help="Seconds between status polls (default 1).")
    parser.add_argument("--timeout", type=float, default=300,
                        help="Give up after this many seconds (default 300).")
    args = parser.parse_args(argv)
    check_credentials(parser, args)
    if args.per_format < 1 or args.limit < 1 or args.poll <= 0 or args.timeout <= 0:
        parser.error("--per-format and --limit must be at least 1; --poll and --timeout "
                     "must be positive")
    return args


def _plan(formats: tuple[str, ...], per_format: int, limit: int) -> list[Export]:
    # Distinct limits make distinct requests: identical ones would be deduplicated (200).
    kinds = [fmt for fmt in formats for _ in range(per_format)]
    return [Export(fmt, limit + index) for index, fmt in enumerate(kinds)]


def _start(api: Api, export: Export, deadline: float) -> None:
    params = {"export_format": export.export_format, "limit": export.limit}
    try:
        answer, export.retries = start_export(api, params, deadline=deadline)
    except requests.RequestException as exc:
        export.status, export.note = "start error", type(exc).__name__
        return
    if answer.status_code not in (200, 202):
        export.status, export.note = f"refused {answer.status_code}", detail(answer)
        return
    body = answer.json()
    export.task_id, export.status = body["task_id"], body["status"]
    export.deduplicated = bool(body.get("deduplicated"))


def _refresh(api: Api, export: Export) -> None:
    """Update from the status URL; any other answer just means: ask again next time."""
    try:
        answer = api.status(export.task_id)
    except requests.RequestException as exc:
        export.note = f"last poll: {type(exc).__name__}"
        return
    if answer.status_code != 200:
        export.note = f"last poll: {answer.status_code}"
        return
    export.body = answer.json()
    export.status, export.note = export.body["status"], ""


def _sample_pool(api: Api, peaks: PoolPeaks, stop: threading.Event, every: float) -> None:
    """Sample the pool status every `every` seconds, from the first start until `stop`."""
    while True:
        try:
            answer = api.pool_status()
        except requests.RequestException:
            answer = None  # a missed sample only lowers the peaks' resolution
        if answer is not None and answer.status_code == 200:
            peaks.add(answer.json())
        if stop.wait(every):
            return


def _watch(api: Api, exports: list[Export], *, poll: float, deadline: float,
           started: float) -> None:
    """Poll every unfinished export until all have ended or the deadline has passed."""
    last_done = -1
    while True:
        for export in [e for e in exports if e.task_id and e.status not in TERMINAL]:
            _refresh(api, export)
        done = sum(1 for e in exports if e.status in TERMINAL or not e.task_id)
        if done != last_done:
            print(f"  {time.monotonic() - started:6.1f} s  {done}/{len(exports)} ended", flush=True)
            last_done = done
        if done == len(exports) or time.monotonic() >= deadline:
            return
        time.sleep(poll)


def _cancel_unfinished(api: Api, exports: list[Export]) -> None:
    """At the timeout, cancel what still runs, so the server is not left working for nobody."""
    for export in exports:
        if export.task_id and export.status not in TERMINAL:
            export.status = f"{export.status} (timeout)"
            try:
                code = api.cancel(export.task_id).status_code
                export.note = f"cancelled by this script at the timeout ({code})"
            except requests.RequestException as exc:
                export.note = f"cancelling at the timeout failed: {type(exc).__name__}"


def _print_table(exports: list[Export]) -> None:
    print(f"{'task':<8}  {'format':<6}  {'limit':>6}  {'rows':>6}  {'wait s':>7}  "
          f"{'seconds':>7}  status")
    for e in exports:
        body = e.body
        wait = seconds_between(body.get("created_at"), body.get("started_at"))
        total = seconds_between(body.get("created_at"), body.get("finished_at"))
        retried = f"started after {e.retries} Retry-After waits" if e.retries else ""
        extra = "; ".join(filter(None, [retried, "deduplicated" if e.deduplicated else "",
                                        body.get("error") or "", e.note]))
        print(f"{(e.task_id or '-')[:8]:<8}  {e.export_format:<6}  {e.limit:>6}  "
              f"{_text(body.get('row_count')):>6}  {_text(wait, '.2f'):>7}  "
              f"{_text(total, '.2f'):>7}  {e.status}{f'  ({extra})' if extra else ''}")


def _text(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _print_summary(exports: list[Export], peaks: PoolPeaks, resets: int) -> int:
    total = len(exports)
    completed = sum(1 for e in exports if e.status == "completed")
    failed = total - completed
    print(f"Pool utilisation seen: {peaks.line()}")
    if resets:
        print(f"Requests resent after the server reset a reused connection: {resets}")
    print(f"Success rate: {completed / total:.1%} ({completed}/{total} completed)")
    print(f"Failure rate: {failed / total:.1%} ({failed}/{total} did not complete)")
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _run(api: Api, exports: list[Export], args: argparse.Namespace) -> PoolPeaks:
    """Start every export at once, follow them to the end (or the timeout); the pool peaks."""
    started = time.monotonic()
    deadline = started + args.timeout
    peaks, stop = PoolPeaks(), threading.Event()
    sampler = threading.Thread(target=_sample_pool, args=(api, peaks, stop, args.poll),
                               daemon=True)
    sampler.start()
    with ThreadPoolExecutor(len(exports)) as starters:  # all at once, not one by one
        list(starters.map(lambda e: _start(api, e, deadline), exports))
    print(f"  {time.monotonic() - started:6.1f} s  "
          f"{sum(1 for e in exports if e.task_id)}/{len(exports)} accepted "
          f"({sum(e.retries for e in exports)} retries after 429/503)", flush=True)
    _watch(api, exports, poll=args.poll, deadline=deadline, started=started)
    _cancel_unfinished(api, exports)
    stop.set()
    sampler.join()
    return peaks


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        api = connect(args)
    except ScriptError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    exports = _plan(args.formats, args.per_format, args.limit)
    print(f"Starting {len(exports)} exports at once ({', '.join(args.formats)} x "
          f"{args.per_format}, limit {args.limit}+) on {api.base_url}", flush=True)
    try:
        peaks = _run(api, exports, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    _print_table(exports)
    return _print_summary(exports, peaks, api.resets)


if __name__ == "__main__":
    sys.exit(main())
