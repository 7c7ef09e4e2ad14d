"""Export benchmark: rows/s and peak RSS of each case, each in its own process.

Seeds its own SQLite database in a temporary data folder, then measures the floors (a raw
sqlite3 read, and a raw read into csv.writer) and the service's own export of each format
through the real pools (no HTTP). Prints one table; numbers are figures, not assertions.

    python bench/bench.py --rows 100000 [--formats csv,excel,pdf] [--keep DIR]
"""

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "exports_corporateparkrecord"
COLUMNS = ("dot, actel_code, customer_l1_code, customer_l1_desc, customer_l2_code, "
           "customer_l2_desc, customer_l3_code, customer_l3_desc, telecom_type, offer_type, "
           "offer_name, subscriber_status, creation_date, state, customer_full_name")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def base_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def case_raw_read(db: str, out: Path) -> int:
    conn = sqlite3.connect(db)
    rows = 0
    for _ in conn.execute(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY id"):
        rows += 1
    return rows


def case_raw_csv(db: str, out: Path) -> int:
    conn = sqlite3.connect(db)
    rows = 0
    with open(out / "floor.csv", "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        cursor = conn.execute(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY id")
        while batch := cursor.fetchmany(500):
            writer.writerows(batch)
            rows += len(batch)
    return rows


def case_service(export_format: str):
    def run(db: str, out: Path) -> int:
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from exports import pool
        from exports.models import ExportTask

        user, _ = get_user_model().objects.get_or_create(username="bench")
        task = ExportTask.objects.create(owner=user, export_format=export_format,
                                         fingerprint="bench", filters=_filters())
        status = pool.submit_export(task.id).result()
        task.refresh_from_db()
        if status != "completed":
            raise SystemExit(f"export {export_format} ended {status}: {task.error}")
        return task.rows_processed

    def _filters() -> dict:
        from exports import conf

        # The service refuses PDFs above EXPORT_PDF_MAX_ROWS at start; measure at that cap.
        return {"limit": conf.pdf_max_rows()} if export_format == "pdf" else {}

    return run


CASES = {
    "raw sqlite3 read": case_raw_read,
    "raw read -> csv.writer": case_raw_csv,
    "service csv": case_service("csv"),
    "service excel": case_service("excel"),
    "service pdf": case_service("pdf"),
}


def child(case: str, db: str, out: str) -> None:
    base = base_rss_mb()
    started = time.perf_counter()
    rows = CASES[case](db, Path(out))
    seconds = time.perf_counter() - started
    print(json.dumps({"case": case, "rows": rows, "seconds": seconds,
                      "peak_rss_mb": peak_rss_mb(), "base_rss_mb": base}))


def run_child(case: str, env: dict, db: str, out: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", case, "--db", db,
                             "--out", str(out)], env=env, capture_output=True, text=True,
                            cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"{case} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare(data_dir: Path, rows: int, env: dict) -> str:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run(manage + ["seed_corporate_park", "--rows", str(rows), "--replace"],
                   env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return str(data_dir / "db.sqlite3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,excel,pdf")
    parser.add_argument("--child"), parser.add_argument("--db"), parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.db, args.out)
    data_dir = Path(tempfile.mkdtemp(prefix="export-bench-"))
    env = {**os.environ, "DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "backend.settings",
           "PYTHONPATH": str(ROOT),
           "LOG_LEVEL": "WARNING"}
    try:
        db = prepare(data_dir, args.rows, env)
        cases = ["raw sqlite3 read", "raw read -> csv.writer"] + [
            f"service {f.strip()}" for f in args.formats.split(",") if f.strip()]
        results = [run_child(case, env, db, data_dir) for case in cases]
        floor = {r["case"]: r["rows"] / r["seconds"] for r in results}
        print(f"\n{args.rows:,} rows seeded; SQLite; one process per case\n")
        print(f"{'case':28} {'rows':>9} {'seconds':>8} {'rows/s':>10} {'vs csv floor':>12} "
              f"{'peak RSS MB':>12} {'over base MB':>12}")
        for r in results:
            rate = r["rows"] / r["seconds"]
            ratio = rate / floor["raw read -> csv.writer"]
            print(f"{r['case']:28} {r['rows']:>9,} {r['seconds']:>8.2f} {rate:>10,.0f} "
                  f"{ratio:>12.2f} {r['peak_rss_mb']:>12.1f} "
                  f"{r['peak_rss_mb'] - r['base_rss_mb']:>12.1f}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
