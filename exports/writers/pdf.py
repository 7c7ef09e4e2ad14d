"""PDF writer: A4 landscape, a title with the filters and generation time, the table header on
every page, "Page i / n" in every footer, and cells wrapped so no value is cut or overflows."""

import re
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Frame,
    LongTable,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import LayoutError

from ..models import DATE_COLUMN
from . import fonts
from .base import ExportMeta, Writer, fsync_path

AUTHOR = "Corporate park export service"
PAGE_WIDTH, PAGE_HEIGHT = landscape(A4)
MARGIN = 10 * mm
FOOTER_HEIGHT = 6 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
FONT_SIZE, LEADING = 6.5, 8
PAD_X, PAD_Y = 2, 1.5
# Relative column widths, in EXPORT_FIELDS order; the date column fits "2024-01-31 23:59:59".
_WEIGHTS = (6, 5, 5.5, 8, 5.5, 8, 5.5, 8, 5.5, 5.5, 8, 6, 9.5, 5, 9)
COLUMN_WIDTHS = tuple(FRAME_WIDTH * w / sum(_WEIGHTS) for w in _WEIGHTS)
# Room for text inside a cell; a hair less than exact so Paragraph never re-wraps our lines.
_TEXT_WIDTHS = tuple(w - 2 * PAD_X - 0.5 for w in COLUMN_WIDTHS)
# A PDF line cannot hold these; tabs and carriage returns become spaces and newlines.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NEEDS_CARE = re.compile(
    r"[\x00-\x1f\x7f\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"
)

_TABLE_STYLE = TableStyle(
    [
        ("FONTNAME", (0, 0), (-1, -1), fonts.LATIN_FONT),
        ("FONTSIZE", (0, 0), (-1, -1), FONT_SIZE),
        ("LEADING", (0, 0), (-1, -1), LEADING),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD_X),
        ("RIGHTPADDING", (0, 0), (-1, -1), PAD_X),
        ("TOPPADDING", (0, 0), (-1, -1), PAD_Y),
        ("BOTTOMPADDING", (0, 0), (-1, -1), PAD_Y),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ]
)
_HEADER_STYLE = TableStyle(
    [("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#d9e1f2"))], parent=_TABLE_STYLE
)
_CELL = ParagraphStyle(
    "cell", fontName=fonts.LATIN_FONT, fontSize=FONT_SIZE, leading=LEADING
)
_CELL_RTL = ParagraphStyle("cell-rtl", parent=_CELL, alignment=TA_RIGHT)
_TITLE = ParagraphStyle(
    "title", fontName=fonts.LATIN_FONT, fontSize=14, leading=18, spaceAfter=2
)
_SUBTITLE = ParagraphStyle(
    "subtitle", fontName=fonts.LATIN_FONT, fontSize=8, leading=11, alignment=TA_LEFT
)


class _RtlCell(str):
    """Paragraph markup for a cell holding Arabic; write_rows() turns it into a Paragraph."""

    right = False


class _NumberedCanvas(Canvas):
    """Holds each finished page until save(), when the page count is known, so every footer
    can say "Page i / n" in plain text (a forward-referenced form would extract as two lines)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._held_pages: list[dict] = []

    def showPage(self) -> None:
        # One string per held page instead of thousands of small ones: the same stream
        # (Canvas joins the page's code with newlines too) at a fraction of the memory.
        self._code = ["\n".join(self._code)]
        state = {k: v for k, v in self.__dict__.items() if k != "_held_pages"}
        self._held_pages.append(state)
        self._startPage()

    def save(self) -> None:
        held, self._held_pages = self._held_pages, []
        total = len(held)
        for number in range(1, total + 1):
            # Let each page go once it is written.
            state, held[number - 1] = held[number - 1], None
            self.__dict__.update(state)
            self.setFont(fonts.LATIN_FONT, 7)
            self.drawRightString(
                PAGE_WIDTH - MARGIN, MARGIN, f"Page {number} / {total}"
            )
            Canvas.showPage(self)
        super().save()


_latin_width = partial(
    pdfmetrics.stringWidth, fontName=fonts.LATIN_FONT, fontSize=FONT_SIZE
)


def _plain(value: str, col: int) -> str:
    """A Latin cell as a plain string, wrapped by us: Table draws plain strings line by line,
    far faster than Paragraphs, but would let a too-long line run out of its cell."""
    width = _TEXT_WIDTHS[col]
    if "\n" not in value and _latin_width(value) <= width:
        return value
    return "\n".join(fonts.wrap(value, width, _latin_width))


def _careful(value: str, col: int) -> str:
    value = _CONTROL.sub(
        "", value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    )
    if not fonts.has_arabic(value):
        return _plain(value, col)
    cell = _RtlCell(fonts.rtl_markup(value, _TEXT_WIDTHS[col], FONT_SIZE))
    cell.right = fonts.is_rtl(value)
    return cell


def _prepare_row(row: tuple) -> list[str]:
    cells = list(row)
    date = cells[DATE_COLUMN]  # "YYYY-MM-DD HH:MM:SS" from the query (Writer.date_form)
    cells[DATE_COLUMN] = ""
    # One scan per row; the per-cell checks run only on rows that hold controls or Arabic.
    careful = _NEEDS_CARE.search("".join(cells)) is not None
    convert = _careful if careful else _plain
    cells = [convert(value, col) if value else "" for col, value in enumerate(cells)]
    cells[DATE_COLUMN] = date or ""
    return cells


def _flowable_cells(row: list[str]) -> list:
    return [
        Paragraph(cell, _CELL_RTL if cell.right else _CELL)
        if isinstance(cell, _RtlCell)
        else cell
        for cell in row
    ]


class PdfWriter(Writer):
    format = "pdf"
    extension = ".pdf"
    content_type = "application/pdf"

    def __init__(self, path: Path, meta: ExportMeta):
        super().__init__(path, meta)
        fonts.register_fonts()
        # ReportLab writes nothing to disk before save(), so there is no handle to release.
        self._canvas = _NumberedCanvas(
            str(self.path),
            pagesize=(PAGE_WIDTH, PAGE_HEIGHT),
            pageCompression=1,
            initialFontName=fonts.LATIN_FONT,  # else every page names an unused Helvetica
            initialFontSize=FONT_SIZE,
        )
        self._canvas.setTitle(meta.title)
        self._canvas.setAuthor(AUTHOR)
        self._canvas.setSubject(meta.filters_label)
        labels = [_plain(label, col) for col, label in enumerate(meta.headers)]
        self._header = Table([labels], colWidths=COLUMN_WIDTHS, style=_HEADER_STYLE)
        self._start_page(self._title_flowables(meta))

    def _title_flowables(self, meta: ExportMeta) -> list[Flowable]:
        generated = meta.generated_at or datetime.now().astimezone()
        lines = (
            f"Filters: {meta.filters_label}",
            f"Generated: {generated:%Y-%m-%d %H:%M:%S %Z}".rstrip(),
            f"Rows: {meta.row_count}",
        )
        return (
            [Paragraph(_markup(meta.title, FRAME_WIDTH, 14), _TITLE)]
            + [Paragraph(_markup(line, FRAME_WIDTH, 8), _SUBTITLE) for line in lines]
            + [Spacer(1, 3 * mm)]
        )

    def _start_page(self, before_header: Iterable[Flowable] = ()) -> None:
        self._frame = Frame(
            MARGIN,
            MARGIN + FOOTER_HEIGHT,
            FRAME_WIDTH,
            PAGE_HEIGHT - 2 * MARGIN - FOOTER_HEIGHT,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        for flowable in (*before_header, self._header):
            if not self._frame.add(flowable, self._canvas, trySplit=1):
                raise LayoutError("The title and table header do not fit on a page.")
        self._page_has_rows = False

    def _new_page(self) -> None:
        self._canvas.showPage()
        self._start_page()

    def _flow(self, table: Table) -> None:
        """Place a table, splitting it across as many pages as it needs."""
        pending = [table]
        while pending:
            part = pending.pop()
            if self._frame.add(part, self._canvas, trySplit=1):
                self._page_has_rows = True
                continue
            pieces = self._frame.split(part, self._canvas)
            if pieces:
                head, *rest = pieces
                if not self._frame.add(head, self._canvas, trySplit=1):
                    raise LayoutError(
                        "A table piece did not fit where ReportLab split it."
                    )
                pending.extend(reversed(rest))
            elif not self._page_has_rows:
                raise LayoutError("A row is too tall for an empty page.")
            else:
                pending.append(part)
            self._new_page()

    def prepare(self, rows: list[tuple]) -> list[list[str]]:
        """Format dates, shape Arabic and pre-wrap every cell, on the processing pool."""
        return [_prepare_row(row) for row in rows]

    def write_rows(self, rows: list[list[str]]) -> None:
        if rows:
            # LongTable stops measuring rows once a page is full, so splitting a batch
            # across pages costs a page of rows, not the whole batch, each time.
            self._flow(
                LongTable(
                    [_flowable_cells(row) for row in rows],
                    colWidths=COLUMN_WIDTHS,
                    style=_TABLE_STYLE,
                    splitInRow=1,
                )
            )

    def close(self) -> None:
        self._canvas.showPage()
        self._canvas.save()
        fsync_path(self.path)

    def abort(self) -> None:
        self._canvas = None


def _markup(text: str, width: float, size: float) -> str:
    """Paragraph markup for a title line: escaped, Arabic shaped when there is any."""
    if fonts.has_arabic(text):
        return fonts.rtl_markup(text, width, size)
    return escape(text)
