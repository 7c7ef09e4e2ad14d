"""CSV writer: UTF-8 with BOM, RFC 4180 quoting, formula-looking text neutralised."""

import csv
import os

from .base import ExportMeta, Writer

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        # OWASP: a leading quote keeps spreadsheets from running the text as a formula.
        return "'" + value if value.startswith(FORMULA_START) else value
    if hasattr(value, "strftime"):
        return value.strftime(DATE_FORMAT)
    return str(value)


class CsvWriter(Writer):
    format = "csv"
    extension = ".csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, path, meta: ExportMeta, *, bom: bool = True):
        super().__init__(path, meta)
        self._file = open(self.path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\r\n")
        self._csv.writerow(meta.headers)

    def prepare(self, rows):
        return [[_cell(v) for v in row] for row in rows]

    def write_rows(self, rows) -> None:
        self._csv.writerows(rows)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
