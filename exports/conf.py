"""The exports app's view of the settings: the only exports module that imports
django.conf.settings. Read at call time, so override_settings() applies in tests."""

from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def max_export_threads() -> int:
    return max(1, settings.MAX_EXPORT_THREADS)


def max_worker_threads() -> int:
    return max(1, settings.MAX_WORKER_THREADS)


MAX_BATCH_SIZE = 50_000  # a batch is held whole (and on SQLite read as one JSON document)


def batch_size() -> int:
    """Rows per batch, 1 to MAX_BATCH_SIZE; read on every call so override_settings() applies
    in tests."""
    return min(max(1, settings.BATCH_SIZE), MAX_BATCH_SIZE)


def file_retention_days() -> int:
    return max(0, settings.FILE_RETENTION_DAYS)


def export_queue_limit() -> int:
    return max(1, settings.EXPORT_QUEUE_LIMIT)


def max_active_per_user() -> int:
    return max(1, settings.EXPORT_MAX_ACTIVE_PER_USER)


RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
              "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def export_start_rate() -> tuple[int, int]:
    """EXPORT_START_RATE as (starts, window seconds): "60/min", "10/30s", "500/day"."""
    raw = str(settings.EXPORT_START_RATE).strip().lower()
    count, _, unit = raw.partition("/")
    digits = "".join(ch for ch in unit if ch.isdigit())
    name = unit[len(digits):].rstrip("s") or "s"
    if not count.strip().isdigit() or int(count) < 1 or name not in RATE_UNITS:
        raise ImproperlyConfigured(
            f"EXPORT_START_RATE must look like '60/min' (starts/unit, unit one of "
            f"s, min, hour, day); got {settings.EXPORT_START_RATE!r}.")
    return int(count), int(digits or 1) * RATE_UNITS[name]


def max_rows() -> int:
    return max(1, settings.EXPORT_MAX_ROWS)


def pdf_max_rows() -> int:
    return max(1, settings.EXPORT_PDF_MAX_ROWS)


def export_backend() -> str:
    return settings.EXPORT_BACKEND


def csv_bom() -> bool:
    return bool(settings.EXPORT_CSV_BOM)


def time_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def export_dir() -> Path:
    """EXPORT_DIR, created when missing."""
    path = Path(settings.EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_tmp_dir() -> Path:
    """EXPORT_TMP_DIR, created when missing: writers' scratch files, never in EXPORT_DIR."""
    path = Path(settings.EXPORT_TMP_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def heartbeat_seconds() -> float:
    return max(0.05, float(settings.EXPORT_HEARTBEAT_S))


def graceful_seconds() -> float:
    return max(0.0, float(settings.EXPORT_GRACEFUL_S))


def time_limit_seconds() -> float:
    return max(0.01, float(settings.EXPORT_TIME_LIMIT_S))


def min_free_bytes() -> int:
    return max(0, settings.EXPORT_MIN_FREE_BYTES)
