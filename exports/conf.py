"""The exports app's view of the settings: the only exports module that imports
django.conf.settings. Read at call time, so override_settings() applies in tests."""

from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings


def max_export_threads() -> int:
    return max(1, settings.MAX_EXPORT_THREADS)


def max_worker_threads() -> int:
    return max(1, settings.MAX_WORKER_THREADS)


def batch_size() -> int:
    """Rows per batch; read on every call so override_settings() applies in tests."""
    return max(1, settings.BATCH_SIZE)


def file_retention_days() -> int:
    return max(0, settings.FILE_RETENTION_DAYS)


def export_queue_limit() -> int:
    return max(1, settings.EXPORT_QUEUE_LIMIT)


def max_active_per_user() -> int:
    return max(1, settings.EXPORT_MAX_ACTIVE_PER_USER)


def export_start_rate() -> str:
    return settings.EXPORT_START_RATE


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
