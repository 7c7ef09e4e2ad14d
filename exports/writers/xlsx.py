"""XLSX writers: a bold frozen header with an autofilter on every sheet, column widths fitted to
the first rows, dates as date cells, every text stored as text, control characters XML forbids
removed, the document's title and author set, and a new sheet past the row limit.

This module holds what both engines share and XlsxWriterWriter, the pure-Python XlsxWriter in
constant_memory mode, kept as the reference and fallback (the empty export is written with
it). RustXlsxWriter, registered for "excel", lives in xlsx_rust.py.
"""

import re
import shutil
import tempfile
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import xlsxwriter

from .. import dates
from ..models import DATE_COLUMN
from .base import ExportMeta, Writer, fsync_path

AUTHOR = "Corporate park export service"
SHEET_NAME = "Corporate park"
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
MAX_COLUMN_WIDTH = 50
WIDTH_SAMPLE_ROWS = 200

# XML 1.0 forbids these characters (and lone surrogates cannot even be encoded); the writers
# would store them as _xHHHH_ escapes that not every reader decodes, so they are dropped.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# In constant_memory mode XlsxWriter copies a string shaped "<r>...</r>" into the XML
# unescaped (it takes it for a rich string), so such text needs the per-cell pass too.
_NEEDS_CARE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|<r>")


def _clean_text(value: str) -> str:
    value = _FORBIDDEN.sub("", value)
    if value.startswith("<r>") and value.endswith("</r>"):
        # Hand XlsxWriter a real one-run rich string, escaped by us, that reads back as value.
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f'<r><t xml:space="preserve">{escaped}</t></r>'
    return value


def _utc_naive(value: datetime) -> datetime:
    """Document dates are stored in UTC ("...Z"); a naive value is taken as UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class _XlsxWriterBase(Writer):
    """What both engines share: file type, dates as serials, sheet names and limit, widths."""

    format = "excel"
    extension = ".xlsx"
    content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    date_form = dates.SERIAL  # written as numbers with DATE_FORMAT: real date cells
    # Excel's 1,048,576 rows less the header; a class attribute so tests can lower it.
    max_rows_per_sheet = 1_048_575

    @staticmethod
    def _sheet_name(number: int) -> str:
        return SHEET_NAME if number == 1 else f"{SHEET_NAME} ({number})"

    def _estimate_widths(self, rows) -> list[float]:
        """Widths from the header and the first rows (sequences in column order)."""
        # Headers get room for the autofilter button drawn over their right end.
        widths = [len(h) + 4 for h in self.meta.headers]
        for row in islice(rows, WIDTH_SAMPLE_ROWS):
            for col, value in enumerate(row):
                if col == DATE_COLUMN:
                    length = len(DATE_FORMAT) if value is not None else 0
                else:
                    length = max(map(len, value.split("\n")))
                widths[col] = max(widths[col], length + 2)
        return [min(w, MAX_COLUMN_WIDTH) for w in widths]


class XlsxWriterWriter(_XlsxWriterBase):
    """XlsxWriter in constant_memory mode: one row in memory, sheets spooled to `tmpdir`."""

    def __init__(self, path: Path, meta: ExportMeta, *, tmpdir: Path | None = None):
        super().__init__(path, meta)
        # constant_memory keeps one row in memory but spools every sheet to temporary files
        # (about twice the sheet's XML, gigabytes for millions of rows), so they go to a
        # directory of our own next to the output, on the same volume, not to a small /tmp.
        self._tmpdir = Path(
            tempfile.mkdtemp(
                prefix=f"{self.path.name}.",
                suffix=".tmp",
                dir=tmpdir or self.path.parent,
            )
        )
        self._book = xlsxwriter.Workbook(
            str(self.path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "tmpdir": str(self._tmpdir),
            },
        )
        self._book.set_properties(self._properties(meta))
        self._bold = self._book.add_format({"bold": True})
        self._date = self._book.add_format({"num_format": DATE_FORMAT})
        self._widths: list[float] | None = None
        self._sheets: list = []
        self._row = 0
        self._add_sheet()

    @staticmethod
    def _properties(meta: ExportMeta) -> dict:
        properties = {
            "title": meta.title,
            "author": AUTHOR,
            "subject": meta.filters_label,
        }
        if meta.generated_at is not None:
            # XlsxWriter prints "created" as UTC ("...Z") without converting it.
            properties["created"] = _utc_naive(meta.generated_at)
        return properties

    def _add_sheet(self) -> None:
        sheet = self._book.add_worksheet(self._sheet_name(len(self._sheets) + 1))
        sheet.freeze_panes(1, 0)
        for col, label in enumerate(self.meta.headers):
            sheet.write_string(0, col, label, self._bold)
        self._sheets.append(sheet)
        self._row = 0  # data rows on this sheet so far; row 0 is the header

    def _finish_sheet(self) -> None:
        # Autofilter and widths are sheet settings, written at close, so they may come last.
        sheet = self._sheets[-1]
        sheet.autofilter(0, 0, self._row, len(self.meta.headers) - 1)
        for col, width in enumerate(self._widths or self._estimate_widths([])):
            sheet.set_column(col, col, width)

    def prepare(self, rows: list[tuple]) -> list[list]:
        """Clean text for XML, off the export thread (dates come as serial numbers)."""
        prepared = []
        for row in rows:
            row = list(row)
            date = row[DATE_COLUMN]
            row[DATE_COLUMN] = ""  # keeps the date out of the text scan below
            if _NEEDS_CARE.search("\n".join(row)):
                row = [_clean_text(v) for v in row]
            row[DATE_COLUMN] = date
            prepared.append(row)
        return prepared

    def write_rows(self, rows: list[list]) -> None:
        if self._widths is None and rows:
            self._widths = self._estimate_widths(rows)
        # Per-cell write_string, never write(): text is never a formula, URL or number.
        # Empty text is left as no cell at all (reads back as None in openpyxl, "" in
        # calamine), the same as a missing date, which keeps the file small.
        limit = self.max_rows_per_sheet
        sheet = self._sheets[-1]
        write_string, write_number, date_format = (
            sheet.write_string,
            sheet.write_number,
            self._date,
        )
        for row in rows:
            if self._row >= limit:
                self._finish_sheet()
                self._add_sheet()
                sheet = self._sheets[-1]
                write_string, write_number = sheet.write_string, sheet.write_number
            self._row += 1
            r = self._row
            for col, value in enumerate(row):
                if col == DATE_COLUMN:
                    if value is not None:
                        write_number(r, col, value, date_format)
                elif value:
                    write_string(r, col, value)

    def close(self) -> None:
        try:
            self._finish_sheet()
            self._book.close()
        finally:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        fsync_path(self.path)

    def abort(self) -> None:
        # Workbook.close() would assemble the whole file only to have it deleted; closing the
        # spooled row data and removing our temp directory is all that must be released.
        for sheet in self._sheets:
            handle = getattr(sheet, "row_data_fh", None)
            if handle is not None:
                handle.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)
