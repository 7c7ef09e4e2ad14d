"""The interface every export writer keeps: stream rows into one file, in order, with memory
that does not grow with the row count."""

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import dates
from ..models import EXPORT_HEADERS


@dataclass(frozen=True)
class ExportMeta:
    """What a writer may print around the rows (title page, PDF header, document properties)."""

    title: str = "Corporate park export"
    filters_label: str = "all records"  # e.g. "DOT: Adrar, Oran; limit: 100"
    generated_at: datetime | None = None  # aware, in TIME_ZONE
    row_count: int = 0  # rows the file will hold, known before the first batch
    headers: tuple[str, ...] = EXPORT_HEADERS


class Writer:
    """Streams rows into one file. Subclasses set the attributes and write_rows().

    Rows arrive as sequences (tuples or lists) in EXPORT_FIELDS order: text as str ("" for
    empty), creation_date already local time of TIME_ZONE in the writer's `date_form`
    (dates.py: TEXT is "YYYY-MM-DD HH:MM:SS" or "" for none, SERIAL an Excel serial number or
    None), converted by the database query itself. dates.rows_as_form() makes such rows from
    naive local datetimes (the tests do). The runner calls prepare() on the processing pool
    (it must be pure and thread-safe), then write_rows() with its result, in order, on the
    export thread, and close() once. On failure it calls abort() instead.
    """

    format = ""  # the export_format value: "csv", "excel", "pdf"
    extension = ""  # ".csv", ".xlsx", ".pdf"
    content_type = ""  # sent as-is by the download view
    date_form = dates.TEXT  # how the rows carry creation_date (dates.TEXT or dates.SERIAL)

    def __init__(self, path: Path, meta: ExportMeta):
        self.path = Path(path)
        self.meta = meta

    def prepare(self, rows: list[tuple]) -> object:
        """Turn a batch into what write_rows() takes (any type: the runner passes it through
        untouched). Runs on a processing-pool thread."""
        return rows

    def write_rows(self, rows) -> None:
        raise NotImplementedError(f"{type(self).__name__}.write_rows() must be implemented")

    def close(self) -> None:
        """Finish the file and make it durable (flush and fsync)."""
        raise NotImplementedError(f"{type(self).__name__}.close() must be implemented")

    def abort(self) -> None:
        """Release open handles without finishing; the runner removes the file."""


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path: a writer whose library closes its own handle, or
    the export folder after a rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
