"""RustXlsxWriter, the XLSX writer registered for "excel": rustpy-xlsxwriter (rust_xlsxwriter
underneath) in constant-memory mode, several times faster than XlsxWriter. It takes the rows
of each sheet as an iterator it pulls from, so it runs on a thread of its own, fed batch by
batch through a small queue: memory stays flat whatever the row count. The rules of the file
are those of xlsx.py.
"""

import queue
import re
import threading
import zipfile
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from xml.sax.saxutils import escape

import rustpy_xlsxwriter

from ..models import DATE_COLUMN
from .base import ExportMeta, fsync_path

from .xlsx import (
    _FORBIDDEN, AUTHOR, DATE_FORMAT, _utc_naive, _XlsxWriterBase,
    XlsxWriterWriter,
)

class RustXlsxWriter(_XlsxWriterBase):
    """rustpy-xlsxwriter on a feeding thread.

    rustpy-xlsxwriter writes a whole workbook in one call, write_worksheets(), whose sheets are
    (name, iterator of dicts) pairs it pulls rows from one at a time, streaming each sheet to an
    unnamed temporary file (constant-memory mode) and zipping them at the end with the GIL
    released. The call runs on a thread of this writer, started by the first batch (whose rows
    size the columns); write_rows() hands it each batch through a queue of queue_batches, so
    at most a few batches are held whatever the row count. The sheets are named when the call
    starts, so their number comes from meta.row_count (known before the first batch): rows
    beyond that many full sheets are refused.

    Cells: text as inline strings (never a formula, number or link: rustpy writes a str as a
    string), dates as Excel serial numbers with DATE_FORMAT (milliseconds kept), "" and None
    as no cell. The document properties rustpy cannot set are written into the finished file
    (its core.xml, the last entries of the zip, replaced in place).

    `tmpdir` is accepted for the interface and not used: rust_xlsxwriter spools each sheet to
    an unnamed file in the process's temporary directory (TMPDIR, /tmp by default), which the
    system frees when the writer ends, even on a crash. Expect about 1 GB per million rows
    there until the file is zipped.
    """

    queue_batches = 2
    _END = object()  # no more rows: finish the workbook
    _ABORT = object()  # stop without a file

    def __init__(self, path: Path, meta: ExportMeta, *, tmpdir: Path | None = None):
        super().__init__(path, meta)
        self._tmpdir = tmpdir
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_batches)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._rows = 0
        self._sheet_count = max(1, -(-meta.row_count // self.max_rows_per_sheet))

    def prepare(self, rows: list[tuple]) -> list[dict]:
        """Clean text for XML and make the records rustpy takes (dicts keyed by header, in
        column order), off the export thread; dates come as Excel serial numbers."""
        d = DATE_COLUMN
        # One scan of the batch's text (C-level join and search); rows are cleaned only if
        # it finds something.
        if _FORBIDDEN.search(
            "\n".join(chain.from_iterable(row[:d] for row in rows))
        ) or _FORBIDDEN.search(
            "\n".join(chain.from_iterable(row[d + 1 :] for row in rows))
        ):
            rows = [
                tuple(v if i == d else _FORBIDDEN.sub("", v) for i, v in enumerate(row))
                for row in rows
            ]
        headers = self.meta.headers
        return [dict(zip(headers, row)) for row in rows]

    def write_rows(self, rows: list[dict]) -> None:
        if not rows:
            return
        capacity = self._sheet_count * self.max_rows_per_sheet
        if self._rows + len(rows) > capacity:
            raise ValueError(
                f"The export has more rows than the {self.meta.row_count} counted "
                f"({capacity} fit in its {self._sheet_count} sheet(s))."
            )
        if self._thread is None:
            self._start(rows)
        self._rows += len(rows)
        self._put(rows)

    def close(self) -> None:
        if self._thread is None:
            # No row at all: the header-only workbook, exactly (rustpy takes its header from
            # the first record and would add a blank row under it).
            XlsxWriterWriter(self.path, self.meta, tmpdir=self._tmpdir).close()
            return
        self._put(self._END)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        _replace_core_properties(self.path, _core_properties(self.meta))
        fsync_path(self.path)

    def abort(self) -> None:
        if self._thread is None:
            return
        try:  # make room, then wake the feeding thread with the abort marker
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(self._ABORT)
        except queue.Full:  # pragma: no cover - only this thread puts
            pass
        self._thread.join()

    # -- the feeding thread ------------------------------------------------------------

    def _start(self, first: list[dict]) -> None:
        widths = self._estimate_widths(map(dict.values, first))
        records = self._records()
        sheets = [
            (self._sheet_name(n), self._sheet_rows(records))
            for n in range(1, self._sheet_count + 1)
        ]
        self._thread = threading.Thread(
            target=self._run,
            args=(sheets, widths),
            name=f"xlsx {self.path.name}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, sheets: list, widths: list[float]) -> None:
        try:
            rustpy_xlsxwriter.write_worksheets(
                sheets,
                str(self.path),
                bold_headers=True,
                freeze_panes={"general": {"row": 1, "col": 0}},
                autofilter={"general": True},
                column_widths={"general": widths},
                float_format=DATE_FORMAT,  # the only floats are dates
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the export thread by _put()/close()
            self._failure = _with_errno(exc)

    def _records(self):
        """Every row, batch after batch, as the export thread queues them."""
        while True:
            batch = self._queue.get()
            if batch is self._END:
                return
            if batch is self._ABORT:
                raise _Aborted()
            yield from batch

    def _sheet_rows(self, records):
        """The next max_rows_per_sheet records: one sheet's rows."""
        first = next(records, None)
        # A planned sheet left without rows (fewer rows than counted) still gets its header.
        yield dict.fromkeys(self.meta.headers) if first is None else first
        if first is not None:
            yield from islice(records, self.max_rows_per_sheet - 1)

    def _put(self, item) -> None:
        while True:
            if not self._thread.is_alive():
                if self._failure is not None:
                    raise self._failure
                if item is self._END:
                    return  # every planned sheet is full: the workbook is already written
                raise RuntimeError("The XLSX writer stopped before the last row.")
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


class _Aborted(Exception):
    """Raised inside rustpy's row iteration to stop it; never leaves the writer."""


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _with_errno(exc: BaseException) -> BaseException:
    """rustpy raises OSError("... (os error 28)") without errno; restore it, so that a full
    disk is reported as one."""
    if isinstance(exc, OSError) and exc.errno is None:
        found = _OS_ERROR.search(str(exc))
        if found:
            return OSError(int(found[1]), str(exc))
    return exc


def _core_properties(meta: ExportMeta) -> bytes:
    def text(value: str) -> str:
        return escape(_FORBIDDEN.sub("", value))

    created = _utc_naive(meta.generated_at or datetime.now(UTC))
    stamp = f"{created:%Y-%m-%dT%H:%M:%SZ}"
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{text(meta.title)}</dc:title>"
        f"<dc:subject>{text(meta.filters_label)}</dc:subject>"
        f"<dc:creator>{text(AUTHOR)}</dc:creator>"
        f"<cp:lastModifiedBy>{text(AUTHOR)}</cp:lastModifiedBy>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
        "</cp:coreProperties>"
    ).encode()


def _replace_core_properties(path: Path, core: bytes) -> None:
    """Put `core` in place of docProps/core.xml in a finished workbook.

    rust_xlsxwriter writes docProps/core.xml and docProps/app.xml last, so only those few
    hundred bytes are rewritten: the entries from core.xml on are written again (core.xml new,
    the others as they were), then the central directory; the sheets are not touched and the
    zip keeps no stale entry.
    """
    name = "docProps/core.xml"
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as book:
        entries = sorted(book.infolist(), key=lambda info: info.header_offset)
        start = book.getinfo(name).header_offset
        tail = [info for info in entries if info.header_offset >= start]
        contents = [
            (info, core if info.filename == name else book.read(info)) for info in tail
        ]
        for info in tail:
            book.filelist.remove(info)
            del book.NameToInfo[info.filename]
        book.start_dir = start  # the next entry is written where core.xml began
        for info, data in contents:
            fresh = zipfile.ZipInfo(info.filename, info.date_time)
            fresh.compress_type = zipfile.ZIP_DEFLATED
            book.writestr(fresh, data)


