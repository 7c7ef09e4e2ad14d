"""CSV writer: UTF-8 with a BOM, RFC 4180 quoting, a header row, dates as
YYYY-MM-DD HH:MM:SS, and formula-looking text neutralised with a leading quote (OWASP).

The bytes are exactly those of csv.writer (QUOTE_MINIMAL, doubled quotes, CRLF) over the
neutralised cells, but a batch is encoded column by column: each column is joined into one
string and searched for what needs care (a quote, comma or line break to quote; a formula
start to neutralise) with C-level string searches, and only the cells found are rewritten in
Python. Most cells need nothing, so the per-cell work of csv.writer is skipped; the tests
hold the result to csv.writer's on rows built to hurt.
"""

import csv
import io
import os
import re
from pathlib import Path

from .base import ExportMeta, Writer

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_IF = ('"', ",", "\r", "\n")  # what makes csv.writer (QUOTE_MINIMAL) quote a cell
_QUOTED_SET = frozenset(_QUOTED_IF)
_SEP = "\x1f"  # joins a column's cells for the scan; a cell holding it gets checked alone
_QUOTED_RE = re.compile(r'[",\r\n]')
_FORMULA_RE = re.compile(r"\x1f[=+\-@\t\r]")  # a cell after the first starting a formula


def csv_cell(value: str) -> str:
    """One cell as csv.writer writes it, formula-looking text neutralised first."""
    if value.startswith(FORMULA_START):
        value = "'" + value  # a leading quote keeps spreadsheets from running it
    if not _QUOTED_SET.isdisjoint(value):
        value = '"' + value.replace('"', '""') + '"'
    return value


def encode_rows(rows: list[tuple]) -> str:
    """CSV lines of rows of text cells (each line ends with CRLF)."""
    if not rows:
        return ""
    columns = list(zip(*rows))
    for index, column in enumerate(columns):
        cells = _cells_needing_care(column)
        if cells:
            columns[index] = column = list(column)
            for cell in cells:
                column[cell] = csv_cell(column[cell])
    if len(columns) == 1:  # csv.writer writes a lone empty cell as "" (not an empty line)
        columns[0] = [cell or '""' for cell in columns[0]]
    lines = list(map(",".join, zip(*columns)))
    lines.append("")
    return "\r\n".join(lines)


def _cells_needing_care(column: tuple) -> list[int] | range:
    """Positions of the cells csv_cell() would change, from one scan of the joined column."""
    text = _SEP.join(column)
    quoting = any(char in text for char in _QUOTED_IF)
    formula = text.startswith(FORMULA_START) or _FORMULA_RE.search(text) is not None
    if not (quoting or formula):
        return []
    if text.count(_SEP) != len(column) - 1:  # a cell holds the separator: check them all
        return range(len(column))
    starts = [m.start() for m in _QUOTED_RE.finditer(text)] if quoting else []
    if formula:
        starts += [m.start() + 1 for m in _FORMULA_RE.finditer(text)]
        if text.startswith(FORMULA_START):
            starts.append(0)
        starts.sort()
    found: list[int] = []
    cell = position = 0
    for start in starts:  # the cell of each position: separators counted since the last one
        cell += text.count(_SEP, position, start)
        position = start
        if not found or found[-1] != cell:
            found.append(cell)
    return found


class CsvWriter(Writer):
    format = "csv"
    extension = ".csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, path: Path, meta: ExportMeta, *, bom: bool = True):
        super().__init__(path, meta)
        # Binary: prepare() encodes whole batches, this thread only appends bytes.
        self._file = open(self.path, "wb")  # noqa: SIM115 - held open until close()
        header = io.StringIO()
        csv.writer(header, lineterminator="\r\n").writerow(meta.headers)
        self._file.write(header.getvalue().encode("utf-8-sig" if bom else "utf-8"))

    def prepare(self, rows: list[tuple]) -> bytes:
        """Encode a batch to CSV bytes. Pure: it keeps no state between calls.

        Every cell is text (the date comes as "YYYY-MM-DD HH:MM:SS" from the query).
        """
        return encode_rows(rows).encode("utf-8")

    def write_rows(self, rows: bytes) -> None:
        self._file.write(rows)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
