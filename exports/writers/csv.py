"""CSV writer: UTF-8 with a BOM, RFC 4180 quoting, a header row, dates as
YYYY-MM-DD HH:MM:SS, and formula-looking text neutralised with a leading quote (OWASP)."""

import csv
import io
import os
from itertools import chain
from operator import itemgetter
from pathlib import Path

from .base import ExportMeta, Writer

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(FORMULA_START)
_first_char = itemgetter(slice(0, 1))  # "" for "", so empty cells need no special case


def _neutralise(row: list) -> list:
    # A leading quote keeps spreadsheets from running the text as a formula.
    return ["'" + v if v.startswith(FORMULA_START) else v for v in row]


class CsvWriter(Writer):
    format = "csv"
    extension = ".csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, path: Path, meta: ExportMeta, *, bom: bool = True):
        super().__init__(path, meta)
        # Binary: prepare() encodes whole batches on the pool, this thread only appends bytes.
        self._file = open(self.path, "wb")  # noqa: SIM115 - held open until close()
        header = io.StringIO()
        csv.writer(header, lineterminator="\r\n").writerow(meta.headers)
        self._file.write(header.getvalue().encode("utf-8-sig" if bom else "utf-8"))

    def prepare(self, rows: list[tuple]) -> bytes:
        """Encode a batch to CSV bytes. Pure: a fresh csv.writer over a local buffer per call.

        Every cell is text already (the date comes as "YYYY-MM-DD HH:MM:SS" from the query),
        so the common batch goes through csv.writer.writerows in one C call; the one pass that
        looks for formula-looking text is a C-level scan of first characters, and only rows
        it flags are rewritten cell by cell.
        """
        is_plain = _FORMULA_CHARS.isdisjoint
        if not is_plain(map(_first_char, chain.from_iterable(rows))):
            rows = [row if is_plain(map(_first_char, row)) else _neutralise(row)
                    for row in rows]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        return buffer.getvalue().encode("utf-8")

    def write_rows(self, rows: bytes) -> None:
        self._file.write(rows)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
