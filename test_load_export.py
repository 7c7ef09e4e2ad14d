"""Load test of a running export server: worker threads each run a few exports one after
another (random format and size), wait out 429/503 Retry-After, follow each export to its end,
download and check its file, while a monitor samples the pool status every second.

    python test_load_export.py --workers 5 --exports 3 --duration 300 [--base-url URL]
        (--token KEY | --username U --password P) [--formats csv,excel,pdf]
        [--min-limit 1] [--max-limit 5000] [--pdf-max-limit 5000] [--seed S] [--sustain]

It prints a running line while it works and the statistics at the end. It ends when every
worker is done, or at --duration (exports still running then get --grace seconds, then count as
lost); with --sustain the workers start over until --duration. Exit status:
1 if an accepted export was lost, a request answered 5xx (other than 503 with Retry-After) or
got no answer, a start was refused other than with 429/503, or a download did not match its
status; 2 if the server cannot be used; else 0. The client comes from test_threading.py.
"""

import argparse
import hashlib
import itertools
import random
import sys
import threading
import time
from collections import Counter, defaultdict

import requests

from test_threading import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNUSABLE,
    TERMINAL,
    Api,
    PoolPeaks,
    ScriptError,
    add_server_args,
    check_credentials,
    connect,
    detail,
    percentile,
    seconds_between,
    start_export,
)

MAX_PROBLEMS_SHOWN = 10


class Stats:
    """Everything the threads learn, under one lock; read by the running line and the report."""

    def __init__(self):
        self._lock = threading.Lock()
        self.codes: Counter = Counter()  # status code (or exception name) -> requests
        self.latency: dict[str, list[float]] = defaultdict(list)  # call kind -> seconds
        self.counts: Counter = Counter()  # accepted, completed, failed, lost, ...
        self.total_s: dict[str, list[float]] = defaultdict(list)  # format -> created->finished
        self.run_s: dict[str, list[float]] = defaultdict(list)  # format -> started->finished
        self.rows = 0
        self.peaks = PoolPeaks()
        self.peak_rss = 0
        self.last_pool: dict = {}
        self.problems: list[str] = []

    def on_call(self, kind: str, seconds: float, answer) -> None:
        """Api hook: count and time every request; note answers that fail the run."""
        if isinstance(answer, Exception):
            code, bad = type(answer).__name__, True
        else:
            code = answer.status_code
            bad = code >= 500 and not (code == 503 and "Retry-After" in answer.headers)
        with self._lock:
            self.codes[code] += 1
            self.latency[kind].append(seconds)
            if bad:
                self.counts["bad_answers"] += 1
        if isinstance(answer, Exception):
            self.problem(f"{kind} got no answer: {code}: {str(answer)[:160]}")
        elif bad:
            self.problem(f"{kind} answered {code}: {detail(answer)}")

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def finished(self, export_format: str, body: dict) -> None:
        with self._lock:
            self.counts[body["status"]] += 1
            if body["status"] != "completed":
                return
            self.rows += body.get("row_count") or 0
            for into, since in ((self.total_s, "created_at"), (self.run_s, "started_at")):
                seconds = seconds_between(body.get(since), body.get("finished_at"))
                if seconds is not None:
                    into[export_format].append(seconds)

    def pool_sample(self, pool: dict) -> None:
        with self._lock:
            self.peaks.add(pool)
            self.peak_rss = max(self.peak_rss, pool.get("system", {}).get("process_rss_bytes", 0))
            self.last_pool = pool

    def in_flight(self) -> int:
        c = self.counts
        return c["accepted"] - sum(c[s] for s in TERMINAL) - c["lost"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test a running export server: worker threads start exports one "
                    "after another, follow them, download and check the files, while the "
                    "pool status is sampled every second.")
    add_server_args(parser)
    parser.add_argument("--workers", type=int, default=5, help="Worker threads (default 5).")
    parser.add_argument("--exports", type=int, default=3,
                        help="Exports each worker runs one after another (default 3).")
    parser.add_argument("--duration", type=float, default=300,
                        help="Stop starting exports after this many seconds (default 300).")
    parser.add_argument("--sustain", action="store_true",
                        help="After its --exports exports, each worker starts over, until "
                             "--duration (by default the run ends when all workers are done).")
    parser.add_argument("--grace", type=float, default=20,
                        help="Seconds an export still running at --duration may take to end "
                             "before it counts as lost (default 20).")
    parser.add_argument("--max-limit", type=int, default=5000,
                        help="Each export's limit is random in [min-limit, max-limit] "
                             "(default 5000).")
    parser.add_argument("--min-limit", type=int, default=1,
                        help="Smallest random limit (default 1).")
    parser.add_argument("--pdf-max-limit", type=int, default=5000,
                        help="Cap on a PDF's limit, below the server's EXPORT_PDF_MAX_ROWS "
                             "(default 5000).")
    parser.add_argument("--seed", type=int, help="Random seed, to repeat a run (default: new).")
    parser.add_argument("--poll", type=float, default=1.0,
                        help="Seconds between status polls of one export (default 1).")
    parser.add_argument("--report-every", type=float, default=5.0,
                        help="Seconds between running lines (default 5).")
    args = parser.parse_args(argv)
    check_credentials(parser, args)
    if min(args.workers, args.exports, args.min_limit, args.pdf_max_limit) < 1:
        parser.error("--workers, --exports, --min-limit and --pdf-max-limit must be at least 1")
    if any(args.min_limit > _cap(args, f) for f in args.formats):
        parser.error("--min-limit must not exceed --max-limit (nor --pdf-max-limit for pdf)")
    if min(args.duration, args.poll, args.report_every) <= 0 or args.grace < 0:
        parser.error("--duration, --poll and --report-every must be positive, --grace >= 0")
    if args.seed is None:
        args.seed = random.randrange(2**31)  # printed, so the run can be repeated
    return args


def _cap(args: argparse.Namespace, export_format: str) -> int:
    """The largest random limit; PDFs stay under the server's EXPORT_PDF_MAX_ROWS."""
    return min(args.max_limit, args.pdf_max_limit) if export_format == "pdf" else args.max_limit


def _worker(api: Api, args: argparse.Namespace, stats: Stats, rng: random.Random,
            deadline: float, hard_stop: float) -> None:
    for _ in itertools.count() if args.sustain else range(args.exports):
        if time.monotonic() >= deadline:
            return
        export_format = rng.choice(args.formats)
        limit = rng.randint(args.min_limit, _cap(args, export_format))
        if not _run_export(api, stats, export_format, limit,
                           deadline=deadline, hard_stop=hard_stop, poll=args.poll):
            return


def _run_export(api: Api, stats: Stats, export_format: str, limit: int, *, deadline: float,
                hard_stop: float, poll: float) -> bool:
    """One export from start to checked download; every outcome lands in stats.

    False when the server still refused the start as the duration ended: starting again
    would only retry in a loop until the deadline.
    """
    try:
        answer, retries = start_export(api, {"export_format": export_format, "limit": limit},
                                       deadline=deadline)
    except requests.RequestException:
        time.sleep(poll)  # counted by Stats.on_call; pause, or a dead server is hammered
        return True
    stats.add("start_retries", retries)
    if answer.status_code in (429, 503) and "Retry-After" in answer.headers:
        stats.add("not_started")
        return False
    if answer.status_code not in (200, 202):
        stats.add("refused")
        stats.problem(f"start {export_format} limit={limit} answered {answer.status_code}: "
                      f"{detail(answer)}")
        return True
    body = answer.json()
    stats.add("accepted")
    stats.add("deduplicated", bool(body.get("deduplicated")))
    final = _follow(api, body["task_id"], hard_stop=hard_stop, poll=poll)
    if final is None:
        _lost(api, stats, body["task_id"], export_format)
    else:
        stats.finished(export_format, final)
        if final["status"] == "completed":
            _check_download(api, stats, final)
    return True


def _follow(api: Api, task_id: str, *, hard_stop: float, poll: float) -> dict | None:
    """Poll until the export ends (its last status body), or None once hard_stop has passed.

    Any answer but a 200 just means: ask again, as the web frontend does.
    """
    while True:
        time.sleep(poll)
        try:
            answer = api.status(task_id)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 200:
            body = answer.json()
            if body["status"] in TERMINAL:
                return body
        if time.monotonic() >= hard_stop:
            return None


def _lost(api: Api, stats: Stats, task_id: str, export_format: str) -> None:
    """Report an export that did not end in time, and cancel it so it stops loading the server
    (and stops counting against this user's active exports on the next run)."""
    stats.add("lost")
    stats.problem(f"lost: {export_format} export {task_id} had not ended at the deadline")
    try:
        api.cancel(task_id)
    except requests.RequestException:
        pass  # already counted by Stats.on_call; the report names the task


def _check_download(api: Api, stats: Stats, body: dict) -> None:
    """Download as the frontend does and compare with the status's file_size and sha256."""
    name = f"{body['export_format']} export {body['task_id']}"
    try:
        with api.download(body["file_url"]) as answer:
            if answer.status_code != 200:
                stats.add("download_errors")
                stats.problem(f"download of {name} answered {answer.status_code}")
                return
            size, digest = _read(answer)
    except requests.RequestException as exc:
        stats.add("download_errors")
        stats.problem(f"download of {name} broke off: {type(exc).__name__}")
        return
    stats.add("downloads")
    if size != body["file_size"]:
        stats.add("size_mismatches")
        stats.problem(f"size mismatch: {name} is {size} bytes, status said {body['file_size']}")
    elif body.get("file_sha256") and digest != body["file_sha256"]:
        stats.add("sha256_mismatches")
        stats.problem(f"sha256 mismatch: {name}")


def _read(answer: requests.Response) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in answer.iter_content(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _monitor(api: Api, stats: Stats, stop: threading.Event, every: float = 1.0) -> None:
    while True:
        try:
            answer = api.pool_status()
        except requests.RequestException:
            answer = None  # counted by Stats.on_call; the next sample may work
        if answer is not None and answer.status_code == 200:
            stats.pool_sample(answer.json())
        if stop.wait(every):
            return


def _running_line(stats: Stats, elapsed: float) -> str:
    c, export = stats.counts, stats.last_pool.get("export_pool", {})
    return (f"[{elapsed:6.1f} s] accepted {c['accepted']}  completed {c['completed']}  "
            f"failed {c['failed']}  in flight {stats.in_flight()}  active threads "
            f"{export.get('active_threads', '?')}/{export.get('max_workers', '?')}  "
            f"pending {export.get('pending_tasks', '?')}")


def _wait_for(workers: list[threading.Thread], stats: Stats, started: float,
              every: float) -> float:
    """Join the workers, printing a running line every `every` seconds; the wall time."""
    next_line = started + every
    while alive := [w for w in workers if w.is_alive()]:
        alive[0].join(timeout=max(0.0, next_line - time.monotonic()))
        if time.monotonic() >= next_line:
            print(_running_line(stats, time.monotonic() - started), flush=True)
            next_line += every
    return time.monotonic() - started


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _stats_row(label: str, values: list[float], spec: str = ".3f") -> str:
    cells = [_fmt(percentile(values, p), spec) for p in (50, 95)]
    return (f"  {label:<12} {len(values):>6}  {cells[0]:>8}  {cells[1]:>8}  "
            f"{_fmt(max(values) if values else None, spec):>8}")


def _stats_header(title: str, label: str) -> str:
    return f"{title}\n  {label:<12} {'n':>6}  {'p50':>8}  {'p95':>8}  {'max':>8}"


def _report(stats: Stats, wall: float, resets: int) -> list[str]:
    """Print the statistics; return the reasons the run failed (none: it passed)."""
    c = stats.counts
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(stats.codes.items(), key=str))
    print(f"\nWall time: {wall:.1f} s")
    print(f"Requests by status code: {codes}")
    print(f"Requests resent after the server reset a reused keep-alive connection: {resets}")
    print(f"Exports: accepted {c['accepted']} ({c['deduplicated']} deduplicated), completed "
          f"{c['completed']}, failed {c['failed']}, cancelled {c['cancelled']}, lost "
          f"{c['lost']}; not started by the deadline {c['not_started']}, refused "
          f"{c['refused']}, start retries after 429/503 {c['start_retries']}")
    print(f"Downloads: {c['downloads']} checked, {c['size_mismatches']} size mismatches, "
          f"{c['sha256_mismatches']} sha256 mismatches, {c['download_errors']} errors")
    print(f"Rows/s overall: {stats.rows / wall:,.0f} ({stats.rows:,} rows of completed "
          f"exports in {wall:.1f} s)")
    print(_stats_header("Latency (s):", "call"))
    for kind in ("start", "status", "pool", "download"):
        print(_stats_row(kind, stats.latency.get(kind, [])))
    print(_stats_header("Export duration by format (s; total: created to finished, run: "
                        "started to finished):", "format"))
    for export_format in sorted(stats.total_s):
        print(_stats_row(f"{export_format} total", stats.total_s[export_format], ".2f"))
        print(_stats_row(f"{export_format} run", stats.run_s[export_format], ".2f"))
    print(f"Pool: {stats.peaks.line()}, peak server RSS {stats.peak_rss / 2**20:.0f} MB")
    return _failures(stats)


def _failures(stats: Stats) -> list[str]:
    c = stats.counts
    reasons = [f"{what}: {n}" for n, what in (
        (c["lost"], "lost exports"), (c["bad_answers"], "5xx answers or requests without answer"),
        (c["refused"], "starts refused other than with 429/503"),
        (c["size_mismatches"] + c["sha256_mismatches"], "download mismatches"),
        (c["download_errors"], "failed downloads")) if n]
    for text in stats.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  problem: {text}")
    if len(stats.problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(stats.problems) - MAX_PROBLEMS_SHOWN} more problems")
    return reasons


def _run(api: Api, stats: Stats, args: argparse.Namespace) -> float:
    """Run the workers and the monitor until the workers are done; the wall time."""
    started = time.monotonic()
    deadline = started + args.duration
    stop = threading.Event()
    # Daemon threads: an interrupted run must not wait for them to finish.
    threading.Thread(target=_monitor, args=(api, stats, stop), daemon=True).start()
    workers = [threading.Thread(target=_worker, daemon=True, args=(
        api, args, stats, random.Random(f"{args.seed}:{i}"), deadline, deadline + args.grace))
        for i in range(args.workers)]
    for worker in workers:
        worker.start()
    wall = _wait_for(workers, stats, started, args.report_every)
    stop.set()
    return wall


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        api = connect(args)
    except ScriptError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    stats = Stats()
    api.on_call = stats.on_call
    print(f"Load test on {api.base_url}: {args.workers} workers x {args.exports} exports"
          f"{' (sustained)' if args.sustain else ''}, "
          f"formats {','.join(args.formats)}, limit {args.min_limit}..{args.max_limit} "
          f"(pdf at most {_cap(args, 'pdf')}), duration {args.duration:g} s, "
          f"seed {args.seed}", flush=True)
    try:
        wall = _run(api, stats, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    reasons = _report(stats, wall, api.resets)
    print(f"Result: {'FAILED: ' + '; '.join(reasons) if reasons else 'OK'}")
    return EXIT_FAILED if reasons else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
