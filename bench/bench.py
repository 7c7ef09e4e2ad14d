"""Export benchmark: rows/s, ratio to a floor, and peak RSS of every case, each in its own process.

For each size asked (`--rows 100000`, `--rows 100000,1000000`, or `--large` for both) it seeds
its own SQLite database in a temporary DATA_DIR, then runs every case in a child process of its
own and prints one table per size:

  floors    raw sqlite3 read; raw read -> csv.writer
  XLSX      raw read -> XlsxWriter constant_memory (write_string / write_datetime with a format)
            raw read -> rustpy-xlsxwriter (a generator of dicts with datetimes: its streaming path)
  PDF       raw read -> a plain ReportLab platypus Table (A4 landscape, repeatRows=1), at
            min(rows, EXPORT_PDF_MAX_ROWS) rows: the anchor the service's PDF is compared with
  service   the service's own export of each format through the real pools (pool.submit_export,
            no HTTP); CSV and XLSX again with MAX_WORKER_THREADS=1 (what the processing pool buys);
            three CSV exports at once (total rows/s), with the default pool and with one thread
  HTTP      a real gunicorn server on the same data: start a CSV export with a token, poll its
            status, download the file; peak RSS is the gunicorn worker's

Ratios: CSV cases against the csv.writer floor, XLSX against the fastest XLSX floor of the run,
PDF against the ReportLab anchor. Peak RSS is the process's VmHWM; "over base" subtracts the
RSS measured after imports and django.setup(), right before the case's work starts. Targets
(CSV >= 0.8x, XLSX >= 0.7x, RSS over base <= 60 MB at 1,000,000 rows for CSV and XLSX, PDF peak
RSS <= the anchor's) are printed next to the numbers as information: the command never fails on
them. With two sizes it also prints each case's peak RSS difference between them.

    python bench/bench.py [--rows 100000[,1000000]] [--large] [--cases NAME,...] [--repeat N]
                          [--markdown] [--json FILE] [--keep]
"""

import argparse
import csv
import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "exports_corporateparkrecord"
FIELDS = ("dot", "actel_code", "customer_l1_code", "customer_l1_desc", "customer_l2_code",
          "customer_l2_desc", "customer_l3_code", "customer_l3_desc", "telecom_type",
          "offer_type", "offer_name", "subscriber_status", "creation_date", "state",
          "customer_full_name")
COLUMNS = ", ".join(FIELDS)
DATE = FIELDS.index("creation_date")
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
LARGE = (100_000, 1_000_000)
RSS_TARGET_ROWS, RSS_TARGET_MB = 1_000_000, 60.0
SPEED_TARGETS = {"csv": 0.8, "xlsx": 0.7}
# The HTTP case polls the status this often: finer than a frontend would, so that the time
# measured is the server's (a status answer costs it a few milliseconds).
HTTP_POLL_S = 0.05


# -- measuring a process ------------------------------------------------------------------

def proc_status_mb(key: str, pid: int | str = "self") -> float:
    """A VmXXX line of /proc/<pid>/status, in MB (nan when unreadable)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_rows(db: str, limit: int | None = None):
    """A cursor over the export columns in primary-key order (the floors' only read)."""
    conn = sqlite3.connect(db)
    sql = f"SELECT {COLUMNS} FROM {TABLE} ORDER BY id"
    return conn.execute(sql + " LIMIT ?", (limit,)) if limit else conn.execute(sql)


@dataclass(frozen=True)
class Context:
    """What a child knows: the database, a scratch folder, the PDF cap, the server env."""

    db: str
    out: Path
    pdf_rows: int
    token: str


# -- floors --------------------------------------------------------------------------------

@contextmanager
def case_raw_read(ctx: Context) -> Iterator[Callable[[], dict]]:
    def work() -> dict:
        return {"rows": sum(1 for _ in raw_rows(ctx.db))}

    yield work


@contextmanager
def case_raw_csv(ctx: Context) -> Iterator[Callable[[], dict]]:
    def work() -> dict:
        rows = 0
        with open(ctx.out / "floor.csv", "w", encoding="utf-8-sig", newline="") as handle:
            writer, cursor = csv.writer(handle), raw_rows(ctx.db)
            writer.writerow(FIELDS)
            while batch := cursor.fetchmany(500):
                writer.writerows(batch)
                rows += len(batch)
        return {"rows": rows, "file": str(ctx.out / "floor.csv")}

    yield work


@contextmanager
def case_xlsxwriter(ctx: Context) -> Iterator[Callable[[], dict]]:
    import xlsxwriter

    def work() -> dict:
        path = ctx.out / "floor-xlsxwriter.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(ctx.out)})
        sheet, date_format = book.add_worksheet(), book.add_format({"num_format": DATE_FORMAT})
        rows = _xlsxwriter_rows(sheet, date_format, raw_rows(ctx.db))
        book.close()
        return {"rows": rows, "file": str(path)}

    yield work


def _xlsxwriter_rows(sheet, date_format, cursor) -> int:
    """Header then every row: text by write_string, the date by write_datetime."""
    write_string, write_datetime, parse = sheet.write_string, sheet.write_datetime, \
        datetime.fromisoformat
    for col, name in enumerate(FIELDS):
        write_string(0, col, name)
    r = 0
    for r, row in enumerate(cursor, start=1):
        for col, value in enumerate(row):
            if col == DATE:
                write_datetime(r, col, parse(value), date_format)
            else:
                write_string(r, col, value)
    return r


@contextmanager
def case_rustpy(ctx: Context) -> Iterator[Callable[[], dict]]:
    import rustpy_xlsxwriter

    def records(cursor):
        parse, key = datetime.fromisoformat, FIELDS[DATE]
        for row in cursor:
            record = dict(zip(FIELDS, row))
            record[key] = parse(record[key])
            yield record

    def work() -> dict:
        # Its streaming path (README: generators are processed lazily, constant-memory mode
        # is the default); DataFrames are faster there, but need every row in memory first.
        path, counter = ctx.out / "floor-rustpy.xlsx", _Counter(records(raw_rows(ctx.db)))
        rustpy_xlsxwriter.write_worksheet(counter, str(path), datetime_format=DATE_FORMAT)
        return {"rows": counter.count, "file": str(path)}

    yield work


class _Counter:
    """An iterator that counts what it hands out."""

    def __init__(self, items):
        self._items, self.count = iter(items), 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._items)
        self.count += 1
        return item


@contextmanager
def case_reportlab(ctx: Context) -> Iterator[Callable[[], dict]]:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.platypus import SimpleDocTemplate, Table, TableStyle

    # The service's font size, leading, padding and grid, so pages hold about as many rows;
    # otherwise plain: Helvetica (not embedded), no wrapping, no title, no page numbers.
    style = TableStyle([("FONTSIZE", (0, 0), (-1, -1), 6.5), ("LEADING", (0, 0), (-1, -1), 8),
                        ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("GRID", (0, 0), (-1, -1), 0.25, "grey")])

    def work() -> dict:
        path = ctx.out / "anchor.pdf"
        doc = SimpleDocTemplate(str(path), pagesize=landscape(A4), leftMargin=28,
                                rightMargin=28, topMargin=28, bottomMargin=28)
        data = [list(FIELDS)] + [list(row) for row in raw_rows(ctx.db, ctx.pdf_rows)]
        doc.build([Table(data, repeatRows=1, colWidths=[doc.width / len(FIELDS)] * len(FIELDS),
                         style=style)])
        return {"rows": len(data) - 1, "file": str(path), "pdf": str(path)}

    yield work


# -- the service ---------------------------------------------------------------------------

def case_service(export_format: str) -> Callable:
    @contextmanager
    def case(ctx: Context) -> Iterator[Callable[[], dict]]:
        task, writer = _service_task(export_format)
        from exports import pool

        def work() -> dict:
            status = pool.submit_export(task.id).result()
            task.refresh_from_db()
            if status != "completed":
                raise SystemExit(f"export {export_format} ended {status}: {task.error}")
            result = {"rows": task.rows_processed, "file": task.file_path, "writer": writer}
            return {**result, "pdf": task.file_path} if export_format == "pdf" else result

        yield work
        pool.shutdown()

    return case


def case_service_concurrent(export_format: str, exports: int) -> Callable:
    """`exports` exports of the same rows started at once through the real pools: rows/s is
    their total rows over the time until the last one ends (what a busy server delivers)."""

    @contextmanager
    def case(ctx: Context) -> Iterator[Callable[[], dict]]:
        first, writer = _service_task(export_format)
        from exports import pool
        from exports.models import ExportTask

        tasks = [first] + [
            ExportTask.objects.create(owner=first.owner, export_format=export_format,
                                      fingerprint=f"bench-{time.monotonic_ns()}-{n}",
                                      filters=first.filters)
            for n in range(1, exports)]

        def work() -> dict:
            futures = [pool.submit_export(task.id) for task in tasks]
            statuses = [future.result() for future in futures]
            if set(statuses) != {"completed"}:
                raise SystemExit(f"concurrent {export_format} exports ended {statuses}")
            done = ExportTask.objects.filter(id__in=[task.id for task in tasks])
            for task in done:
                Path(task.file_path).unlink(missing_ok=True)
            return {"rows": sum(task.rows_processed for task in done),
                    "writer": f"{exports} at once; {writer}"}

        yield work
        pool.shutdown()

    return case


def _service_task(export_format: str):
    """django.setup(), the modules an export uses, and one queued task: all before the base."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from exports import conf, runner, writers  # noqa: F401 - imported before the base RSS
    from exports.models import ExportTask

    writer = writers.get_writer(export_format)
    if export_format == "pdf":
        _register_pdf_fonts()  # once per server process, not per export
    user, _ = get_user_model().objects.get_or_create(username="bench")
    # The service refuses PDFs above EXPORT_PDF_MAX_ROWS at start; measure at that cap.
    filters = {"limit": conf.pdf_max_rows()} if export_format == "pdf" else {}
    task = ExportTask.objects.create(owner=user, export_format=export_format,
                                     fingerprint=f"bench-{time.monotonic_ns()}", filters=filters)
    label = (f"{writer.__module__}.{writer.__name__}; BATCH_SIZE={settings.BATCH_SIZE}, "
             f"MAX_WORKER_THREADS={settings.MAX_WORKER_THREADS}")
    return task, label


def _register_pdf_fonts() -> None:
    try:
        from exports.writers import fonts
    except ImportError:
        return
    getattr(fonts, "register_fonts", lambda: None)()


# -- once through HTTP ---------------------------------------------------------------------

@contextmanager
def case_http_csv(ctx: Context) -> Iterator[Callable[[], dict]]:
    from exports.tests.live_server import serve

    with serve(dict(os.environ), ctx.token, threads=8) as server:
        api = _Api(server.base_url, ctx.token)
        api.get_json("/data/export/corporate-park/tasks/")  # warm the worker up first
        worker = _worker_pid(server.process.pid)
        base = proc_status_mb("VmRSS", worker)

        def work() -> dict:
            rows, size = _http_export(api, ctx.out / "http.csv")
            return {"rows": rows, "file": str(ctx.out / "http.csv"), "bytes": size,
                    "peak_rss_mb": proc_status_mb("VmHWM", worker), "base_rss_mb": base,
                    "writer": f"gunicorn worker pid {worker} (server RSS, not the client's)"}

        yield work


class _Api:
    """GET with the token; JSON answers or a file streamed to disk."""

    def __init__(self, base_url: str, token: str):
        self.base_url, self.headers = base_url, {"Authorization": f"Token {token}"}

    def _open(self, path: str):
        import urllib.request

        request = urllib.request.Request(self.base_url + path, headers=self.headers)
        return urllib.request.urlopen(request, timeout=600)

    def get_json(self, path: str) -> dict:
        with self._open(path) as answer:
            return json.loads(answer.read())

    def download(self, path: str, target: Path) -> int:
        with self._open(path) as answer, open(target, "wb") as handle:
            while chunk := answer.read(1 << 20):
                handle.write(chunk)
        return target.stat().st_size


def _http_export(api: _Api, target: Path) -> tuple[int, int]:
    """Start a CSV export, poll it to completion, download it: (rows, bytes)."""
    started = api.get_json("/data/export/corporate-park/?export_format=csv")
    while True:
        status = api.get_json(started["status_url"])
        if status["status"] == "completed":
            break
        if status["status"] in ("failed", "cancelled"):
            raise SystemExit(f"HTTP export ended {status['status']}: {status.get('error')}")
        time.sleep(HTTP_POLL_S)
    size = api.download(status["file_url"], target)
    if size != status["file_size"]:
        raise SystemExit(f"downloaded {size} bytes, the status said {status['file_size']}")
    return status["row_count"], size


def _worker_pid(master: int, timeout: float = 10) -> int:
    """The gunicorn worker: the child process of the master."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                return int(stat.parent.name)
        time.sleep(0.1)
    raise SystemExit(f"no worker process found under gunicorn master {master}")


# -- the cases -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One measured case. kind picks its floor; floor=True makes it one."""

    key: str
    label: str
    kind: str  # "read", "csv", "xlsx", "pdf"
    run: Callable
    floor: bool = False
    env: dict = field(default_factory=dict)


ONE_THREAD = {"MAX_WORKER_THREADS": "1"}
CASES = (
    Case("read", "raw sqlite3 read", "read", case_raw_read, floor=True),
    Case("csv-floor", "raw read -> csv.writer", "csv", case_raw_csv, floor=True),
    Case("xlsxwriter", "raw read -> XlsxWriter const_mem", "xlsx", case_xlsxwriter, floor=True),
    Case("rustpy", "raw read -> rustpy-xlsxwriter", "xlsx", case_rustpy, floor=True),
    Case("reportlab", "raw read -> ReportLab Table", "pdf", case_reportlab, floor=True),
    Case("service-csv", "service csv", "csv", case_service("csv")),
    Case("service-csv-1t", "service csv, 1 worker thr.", "csv", case_service("csv"),
         env=ONE_THREAD),
    Case("http-csv", "HTTP csv (gunicorn)", "csv", case_http_csv),
    Case("service-excel", "service excel", "xlsx", case_service("excel")),
    Case("service-excel-1t", "service excel, 1 worker thr.", "xlsx", case_service("excel"),
         env=ONE_THREAD),
    Case("service-pdf", "service pdf", "pdf", case_service("pdf")),
    Case("service-csv-x3", "service csv, 3 at once", "csv", case_service_concurrent("csv", 3)),
    Case("service-csv-x3-1t", "service csv, 3 at once, 1 thr.", "csv",
         case_service_concurrent("csv", 3), env=ONE_THREAD),
)
BY_KEY = {case.key: case for case in CASES}


# -- the child process ---------------------------------------------------------------------

def child(key: str, ctx: Context) -> None:
    """Run one case: set up, take the base RSS, time the work, read the peak; print JSON."""
    with BY_KEY[key].run(ctx) as work:
        base = proc_status_mb("VmRSS")
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        result = {"peak_rss_mb": proc_status_mb("VmHWM"), "base_rss_mb": base, **result,
                  "seconds": seconds}
    _after(result)
    print(json.dumps(result))


def _after(result: dict) -> None:
    """Once the peak is read: count PDF pages, remove the output file."""
    if result.get("pdf"):
        from pypdf import PdfReader

        result["pages"] = len(PdfReader(result["pdf"]).pages)
    if result.get("file"):
        Path(result["file"]).unlink(missing_ok=True)


def run_child(case: Case, env: dict, ctx: Context) -> dict:
    command = [sys.executable, __file__, "--child", case.key, "--db", ctx.db, "--out",
               str(ctx.out), "--pdf-rows", str(ctx.pdf_rows), "--token", ctx.token]
    print(f"  {case.label} ...", end=" ", file=sys.stderr, flush=True)
    done = subprocess.run(command, env={**env, **case.env}, capture_output=True, text=True,
                          cwd=ROOT, check=False)
    if done.returncode:
        raise SystemExit(f"{case.label} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{result['seconds']:.1f} s", file=sys.stderr, flush=True)
    return {**result, "key": case.key}


def median_runs(cases: list[Case], env: dict, ctx: Context, repeat: int) -> list[dict]:
    """Run the cases `repeat` times, round after round (so a noisy minute hits every case
    alike), each in a fresh process; keep each case's run of median time."""
    rounds = [[run_child(case, env, ctx) for case in cases] for _ in range(max(1, repeat))]
    return [_median(list(runs)) for runs in zip(*rounds)]


def _median(runs: list[dict]) -> dict:
    runs.sort(key=lambda r: r["seconds"])
    return {**runs[len(runs) // 2], "all_rates": sorted(rate(r) for r in runs)}


# -- one size: seed, run, report -----------------------------------------------------------

def bench_env(data_dir: Path) -> dict:
    """The children's environment: SQLite and every folder inside the temporary data dir."""
    return {**os.environ, "DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "backend.settings",
            "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
            "EXPORT_DIR": str(data_dir / "exports"), "EXPORT_TMP_DIR": str(data_dir / "tmp"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def prepare(data_dir: Path, rows: int, env: dict) -> Context:
    """Migrate, seed `rows` records, make the API user; the context every child gets."""
    started = time.perf_counter()
    manage(env, "migrate", "-v0")
    manage(env, "seed_corporate_park", "--rows", str(rows), "--replace")
    token = manage(env, "create_export_user", "bench").strip().splitlines()[-1]
    cap = manage(env, "shell", "-c", "from exports import conf; print(conf.pdf_max_rows())")
    print(f"seeded {rows:,} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return Context(str(data_dir / "db.sqlite3"), data_dir, min(rows, int(cap.split()[-1])), token)


def bench_size(rows: int, cases: list[Case], keep: bool, repeat: int = 1) -> list[dict]:
    data_dir = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        env = bench_env(data_dir)
        ctx = prepare(data_dir, rows, env)
        return [{**run, "size": rows} for run in median_runs(cases, env, ctx, repeat)]
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


# -- ratios, targets, tables ---------------------------------------------------------------

def rate(result: dict) -> float:
    return result["rows"] / result["seconds"]


def floor_rates(results: list[dict]) -> dict[str, tuple[str, float]]:
    """Per kind, the floor it is compared with: (its label, its rows/s); XLSX: the fastest."""
    floors: dict[str, tuple[str, float]] = {}
    for r in results:
        case = BY_KEY[r["key"]]
        if case.floor and case.kind != "read" and rate(r) > floors.get(case.kind, ("", 0))[1]:
            floors[case.kind] = (case.label, rate(r))
    if "csv" in floors:
        floors["read"] = floors["csv"]
    return floors


def speed_verdict(case: Case, ratio: float) -> tuple[str, str]:
    target = SPEED_TARGETS.get(case.kind)
    if case.floor or target is None or math.isnan(ratio):
        return "", ""
    return f">= {target}x", "ok" if ratio >= target else "below target"


def rss_verdict(case: Case, r: dict, anchor: dict | None) -> tuple[str, str]:
    over = r["peak_rss_mb"] - r["base_rss_mb"]
    if case.floor:
        return "", ""
    if case.kind == "pdf":
        if anchor is None:
            return "<= anchor", "no anchor"
        ok = r["peak_rss_mb"] <= anchor["peak_rss_mb"]
        return f"peak <= {anchor['peak_rss_mb']:.0f}", "ok" if ok else "below target"
    target = f"over <= {RSS_TARGET_MB:.0f} @1M"
    if r["size"] < RSS_TARGET_ROWS:
        return target, "(1M only)"
    return target, "ok" if over <= RSS_TARGET_MB else "below target"


def table_rows(results: list[dict]) -> list[list[str]]:
    floors = floor_rates(results)
    anchor = next((r for r in results if r["key"] == "reportlab"), None)
    lines = []
    for r in results:
        case = BY_KEY[r["key"]]
        ratio = rate(r) / floors[case.kind][1] if case.kind in floors else float("nan")
        speed_target, speed_ok = speed_verdict(case, ratio)
        rss_target, rss_ok = rss_verdict(case, r, anchor)
        pages = f"{r['pages'] / r['seconds']:,.1f} ({r['pages']:,} p)" if "pages" in r else ""
        shown = "-" if math.isnan(ratio) else f"{ratio:.2f}x"
        lines.append([case.label, f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{rate(r):,.0f}",
                      shown, speed_target, speed_ok, f"{r['peak_rss_mb']:.1f}",
                      f"{r['base_rss_mb']:.1f}", f"{r['peak_rss_mb'] - r['base_rss_mb']:.1f}",
                      rss_target, rss_ok, pages])
    return lines


HEADER = ["case", "rows", "seconds", "rows/s", "vs floor", "target", "speed", "peak RSS MB",
          "base MB", "over base MB", "RSS target", "RSS", "pages/s"]
RIGHT = {1, 2, 3, 4, 7, 8, 9}


def render(header: list[str], rows: list[list[str]], markdown: bool,
           right: set[int] = RIGHT) -> str:
    if markdown:
        rule = ["---:" if i in right else "---" for i in range(len(header))]
        return "\n".join("| " + " | ".join(line) + " |" for line in [header, rule, *rows])
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(line, widths))).rstrip()

    return "\n".join(fmt(line) for line in [header, *rows])


def report_size(rows: int, results: list[dict], markdown: bool) -> None:
    floors = floor_rates(results)
    print(f"\n{rows:,} rows seeded; SQLite; one process per case; "
          f"{datetime.now():%Y-%m-%d %H:%M}; {os.cpu_count()} CPUs; "
          f"Python {platform.python_version()}\n")
    print(render(HEADER, table_rows(results), markdown))
    print("\nfloors: " + "; ".join(f"{k} = {label} ({value:,.0f} rows/s)"
                                   for k, (label, value) in floors.items() if k != "read"))
    for r in results:
        if r.get("writer"):
            print(f"  {BY_KEY[r['key']].label}: {r['writer']}")
    if any(len(r["all_rates"]) > 1 for r in results):
        print("runs (rows/s, slowest to fastest; the table shows the median run):")
        for r in results:
            print(f"  {BY_KEY[r['key']].label}: "
                  + ", ".join(f"{value:,.0f}" for value in r["all_rates"]))


def report_rss_growth(by_size: dict[int, list[dict]], markdown: bool) -> None:
    small, large = min(by_size), max(by_size)
    before = {r["key"]: r for r in by_size[small]}
    lines = []
    for r in by_size[large]:
        if r["key"] in before:
            a = before[r["key"]]
            over = (r["peak_rss_mb"] - r["base_rss_mb"]) - (a["peak_rss_mb"] - a["base_rss_mb"])
            lines.append([BY_KEY[r["key"]].label, f"{a['rows']:,}", f"{r['rows']:,}",
                          f"{a['peak_rss_mb']:.1f}", f"{r['peak_rss_mb']:.1f}",
                          f"{r['peak_rss_mb'] - a['peak_rss_mb']:+.1f}", f"{over:+.1f}"])
    print(f"\npeak RSS, {small:,} vs {large:,} rows seeded\n")
    print(render(["case", "rows", "rows", "peak MB", "peak MB", "difference MB",
                  "over-base difference MB"], lines, markdown, right={1, 2, 3, 4, 5, 6}))


# -- command line --------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="cases: " + ", ".join(case.key for case in CASES)
        + ". Numbers are information, never assertions: the command fails only on errors.")
    parser.add_argument("--rows", default="100000",
                        help="rows to seed; a comma list runs each size (default 100000)")
    parser.add_argument("--large", action="store_true",
                        help="run 100,000 and 1,000,000 rows (overrides --rows)")
    parser.add_argument("--cases", default=",".join(case.key for case in CASES),
                        help="comma list of cases to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each case N times (a new process each); report the median")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders")
    for name in ("--child", "--db", "--out", "--pdf-rows", "--token"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    return parser.parse_args()


def sizes(args: argparse.Namespace) -> list[int]:
    if args.large:
        return list(LARGE)
    return sorted({int(v.replace("_", "").replace(",", "")) for v in args.rows.split(",") if v})


def selected(args: argparse.Namespace) -> list[Case]:
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(BY_KEY)}")
    return [case for case in CASES if case.key in keys]


def main() -> None:
    args = parse_args()
    if args.child:
        ctx = Context(args.db, Path(args.out), int(args.pdf_rows), args.token)
        return child(args.child, ctx)
    cases, by_size = selected(args), {}
    for rows in sizes(args):
        by_size[rows] = bench_size(rows, cases, args.keep, args.repeat)
        report_size(rows, by_size[rows], args.markdown)
    if len(by_size) > 1:
        report_rss_growth(by_size, args.markdown)
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in by_size.items()}, indent=1))


if __name__ == "__main__":
    main()
