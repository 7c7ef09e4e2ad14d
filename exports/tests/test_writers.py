"""Writers, read back with independent readers: csv, openpyxl and python-calamine, pypdf."""

import csv
import io
import random
import re
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import arabic_reshaper
import openpyxl
import pytest
from django.test import SimpleTestCase
from pypdf import PdfReader
from python_calamine import CalamineWorkbook

from exports.dates import rows_as_form
from exports.models import DATE_COLUMN, EXPORT_FIELDS, EXPORT_HEADERS
from exports.writers import ExportMeta, fonts, get_writer
from exports.writers.csv import FORMULA_START, CsvWriter
from exports.writers.pdf import PdfWriter
from exports.writers.xlsx import XlsxWriterWriter
from exports.writers.xlsx_rust import RustXlsxWriter

ARABIC_NAME = "شركة سوناطراك"
FORMULAS = (
    '=HYPERLINK("http://x","y")',
    "+33 cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-2+3",
    "\tcmd",
    "\rcmd",
)
WHEN = datetime(2024, 3, 9, 14, 5, 7)


def make_row(index: int = 0, **values) -> tuple:
    """A row in EXPORT_FIELDS order: plain defaults, overridden by field name."""
    row = {field: f"c{col}-{index}" for col, field in enumerate(EXPORT_FIELDS)}
    row["creation_date"] = WHEN
    row.update(values)
    return tuple(row[field] for field in EXPORT_FIELDS)


def hostile_rows() -> list[tuple]:
    rows = [
        make_row(
            1,
            dot="Béjaïa",
            customer_full_name='Sarl "El Baraka", Oran',
            offer_name="a,b",
        ),
        make_row(
            2, dot="Aïn Témouchent", customer_full_name=ARABIC_NAME, actel_code="00123"
        ),
        make_row(
            3, customer_l1_desc="line one\nline two", state="", creation_date=None
        ),
        make_row(4, customer_l2_desc="a=b stays", customer_l3_desc="'already quoted"),
    ]
    rows += [
        make_row(10 + i, customer_full_name=text, offer_type=text)
        for i, text in enumerate(FORMULAS)
    ]
    return rows


def squeeze(text: str) -> str:
    """Text without whitespace: the PDF wraps long values across lines inside their cell."""
    return "".join(text.split())


def excel_unescape(value: str) -> str:
    """Decode _xHHHH_ escapes as Excel does (openpyxl leaves them; calamine decodes them)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), value)


def column_width(sheet, index: int) -> float:
    """Width of a 1-based column; Excel files group equal neighbours into one <col> range."""
    return next(
        d.width for d in sheet.column_dimensions.values() if d.min <= index <= d.max
    )


def as_pypdf_reads_rtl(text: str) -> str:
    """What pypdf extracts from an Arabic phrase drawn shaped and right to left: it turns each
    right-to-left glyph run back into reading order but leaves the words where they were drawn,
    so the words come back reversed (drawn unshaped or left to right, this would not match)."""
    return " ".join(reversed(arabic_reshaper.reshape(text).split()))


def form(writer, rows: list[tuple]) -> list[tuple]:
    """Rows of make_row() (naive local datetimes) as the query hands them to this writer."""
    return rows_as_form(rows, DATE_COLUMN, writer.date_form)


def ready(writer, rows: list[tuple]):
    """What the runner hands write_rows(): the writer's prepare() of the query's rows."""
    return writer.prepare(form(writer, rows))


def write(
    writer_class, path: Path, rows: list[tuple], batch: int = 3, **kwargs
) -> Path:
    """Drive a writer the way the runner does: prepare, write_rows per batch, then close."""
    meta = ExportMeta(
        filters_label="DOT: Adrar, Oran; limit: 100",
        generated_at=datetime(2026, 12, 4, 15, 30, tzinfo=ZoneInfo("Africa/Algiers")),
        row_count=len(rows),
    )
    writer = writer_class(path, meta, **kwargs)
    for start in range(0, len(rows), batch):
        writer.write_rows(ready(writer, rows[start : start + batch]))
    writer.close()
    return path


class _WriterTestCase(SimpleTestCase):
    """SimpleTestCase refuses database queries: writers must never make one."""

    @pytest.fixture(autouse=True)
    def _pytest_fixtures(self, tmp_path, monkeypatch):
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch


class GetWriterTests(_WriterTestCase):
    def test_formats_map_to_writers_with_their_file_types(self):
        assert (
            get_writer("csv") is CsvWriter
            and CsvWriter.content_type == "text/csv; charset=utf-8"
        )
        assert (
            get_writer("excel") is RustXlsxWriter
            and RustXlsxWriter.extension == ".xlsx"
        )
        assert (
            XlsxWriterWriter.format == "excel" and XlsxWriterWriter.extension == ".xlsx"
        )
        assert (
            get_writer("pdf") is PdfWriter
            and PdfWriter.content_type == "application/pdf"
        )


class CsvWriterTests(_WriterTestCase):
    def read(self, path: Path) -> list[list[str]]:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))

    @staticmethod
    def reference(rows: list[tuple]) -> bytes:
        """csv.writer itself over the neutralised cells: what the column scan must equal."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(
            ["'" + v if v.startswith(FORMULA_START) else v for v in row] for row in rows)
        return buffer.getvalue().encode("utf-8")

    def test_batches_encode_exactly_as_csv_writer_does(self):
        # Cells drawn from the characters that matter (quotes, commas, line breaks, formula
        # starts, the scan's own separator, NUL, non-ASCII), at random positions and lengths.
        alphabet = ['"', ",", "\r", "\n", "=", "+", "-", "@", "\t", "'", "\x1f", "\x00",
                    " ", "a", "0", "é", "ش"]
        rng = random.Random(20261204)
        writer = CsvWriter(self.tmp_path / "x.csv", ExportMeta())
        for trial in range(300):
            width, count = rng.randint(1, 6), rng.randint(1, 40)
            plain = trial % 3 == 0  # some batches with almost nothing to do
            rows = [tuple("".join(rng.choice(alphabet[-4:] if plain else alphabet)
                                  for _ in range(rng.choice((0, 1, 2, 5))))
                          for _ in range(width)) for _ in range(count)]
            assert writer.prepare(rows) == self.reference(rows), rows
        rows = hostile_rows()
        text = form(writer, rows)
        assert writer.prepare(text) == self.reference(text)
        assert writer.prepare([]) == b""
        writer.abort()

    def test_values_round_trip_with_quote_only_on_formula_text(self):
        rows = hostile_rows()
        lines = self.read(write(CsvWriter, self.tmp_path / "x.csv", rows))
        assert lines[0] == list(EXPORT_HEADERS)
        expected = [
            [
                ""
                if v is None
                else v.strftime("%Y-%m-%d %H:%M:%S")
                if col == DATE_COLUMN
                else "'" + v
                if v in FORMULAS
                else v
                for col, v in enumerate(row)
            ]
            for row in rows
        ]
        assert lines[1:] == expected
        assert (
            lines[2][1] == "00123"
            and lines[4][EXPORT_FIELDS.index("customer_l2_desc")] == "a=b stays"
        )

    def test_file_has_bom_crlf_and_rfc4180_quoting(self):
        path = write(
            CsvWriter,
            self.tmp_path / "x.csv",
            [make_row(customer_full_name='Sarl "X", Oran')],
        )
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbfDOT,Actel Code,")
        assert raw.count(b"\xef\xbb\xbf") == 1  # one BOM, not one per batch
        assert b'"Sarl ""X"", Oran"' in raw and raw.endswith(b"\r\n")

    def test_bom_can_be_left_out(self):
        path = write(CsvWriter, self.tmp_path / "x.csv", [make_row()], bom=False)
        assert path.read_bytes().startswith(b"DOT,")

    def test_dates_drop_microseconds(self):
        path = write(
            CsvWriter,
            self.tmp_path / "x.csv",
            [make_row(creation_date=datetime(2024, 1, 2, 3, 4, 5, 678))],
        )
        assert self.read(path)[1][DATE_COLUMN] == "2024-01-02 03:04:05"

    def test_empty_export_has_header_only(self):
        assert self.read(write(CsvWriter, self.tmp_path / "x.csv", [])) == [
            list(EXPORT_HEADERS)
        ]

    def test_prepare_is_thread_safe_and_leaves_input_alone(self):
        writer = CsvWriter(self.tmp_path / "x.csv", ExportMeta())
        batches = [form(writer, hostile_rows() * 50) for _ in range(8)]
        copies = [list(batch) for batch in batches]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(writer.prepare, batches))
        assert all(
            result == writer.prepare(batch) for result, batch in zip(results, batches)
        )
        assert batches == copies
        writer.abort()


class _XlsxRules:
    """Every rule of the XLSX file, for each engine (the subclasses below set writer_class)."""

    writer_class: type

    def test_cells_equal_input_and_text_is_never_a_formula(self):
        rows = hostile_rows() + [make_row(20, customer_full_name="<r><b>x</r>")]
        sheet = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", rows)
        ).active
        read = list(sheet.iter_rows(min_row=2))
        assert len(read) == len(rows)
        for cells, row in zip(read, rows):
            for col, (cell, value) in enumerate(zip(cells, row)):
                if value in ("", None):
                    # Empty text and missing dates are left as blank cells.
                    assert cell.value is None
                else:
                    read = (
                        excel_unescape(cell.value)
                        if isinstance(cell.value, str)
                        else cell.value
                    )
                    assert read == value, (col, value)
                    assert cell.data_type == ("d" if col == DATE_COLUMN else "s")

    def test_calamine_reads_the_same_values(self):
        rows = hostile_rows() + [make_row(20, customer_full_name="a\r\nb _x0041_")]
        path = write(self.writer_class, self.tmp_path / "x.xlsx", rows)
        values = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        assert values[0] == list(EXPORT_HEADERS)
        assert values[1:] == [["" if v is None else v for v in row] for row in rows]

    def test_forbidden_control_characters_are_removed(self):
        path = write(
            self.writer_class,
            self.tmp_path / "x.xlsx",
            [make_row(customer_full_name="bell\x07 and\x00nul\ufffe\ud800")],
        )
        assert openpyxl.load_workbook(path).active["O2"].value == "bell andnul"

    def test_dates_are_date_cells(self):
        when = datetime(1999, 12, 31, 23, 59, 59)
        cell = openpyxl.load_workbook(
            write(
                self.writer_class,
                self.tmp_path / "x.xlsx",
                [make_row(creation_date=when)],
            )
        ).active["M2"]
        assert cell.is_date and cell.value == when
        assert cell.number_format == "yyyy-mm-dd hh:mm:ss"

    def test_header_is_bold_frozen_and_filtered(self):
        sheet = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", hostile_rows())
        ).active
        assert [c.value for c in sheet[1]] == list(EXPORT_HEADERS)
        assert all(c.font.b for c in sheet[1])
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:O{len(hostile_rows()) + 1}"

    def test_columns_are_sized_to_content_within_a_cap(self):
        rows = [make_row(customer_full_name="x" * 120, dot="Adrar")]
        sheet = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", rows)
        ).active
        # Capped at 50; the width read back is Excel's, with its padding.
        assert 50 <= column_width(sheet, 15) <= 51
        assert len("yyyy-mm-dd hh:mm:ss") <= column_width(sheet, DATE_COLUMN + 1) < 30
        assert len("DOT") < column_width(sheet, 1) < 12

    def test_rows_continue_on_further_sheets_each_with_header(self):
        self.monkeypatch.setattr(self.writer_class, "max_rows_per_sheet", 3)
        rows = [make_row(i) for i in range(7)]
        book = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", rows, batch=2)
        )
        assert book.sheetnames == [
            "Corporate park",
            "Corporate park (2)",
            "Corporate park (3)",
        ]
        data = []
        for sheet, count in zip(book.worksheets, (3, 3, 1)):
            values = [[c.value for c in r] for r in sheet.iter_rows()]
            assert values[0] == list(EXPORT_HEADERS) and len(values) == count + 1
            assert (
                sheet.freeze_panes == "A2"
                and sheet.auto_filter.ref == f"A1:O{count + 1}"
            )
            data += values[1:]
        assert data == [list(row) for row in rows]

    def test_empty_export_has_header_only(self):
        sheet = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", [])
        ).active
        assert [[c.value for c in r] for r in sheet.iter_rows()] == [
            list(EXPORT_HEADERS)
        ]

    def test_document_properties(self):
        props = openpyxl.load_workbook(
            write(self.writer_class, self.tmp_path / "x.xlsx", [make_row()])
        ).properties
        assert props.title == "Corporate park export"
        assert props.creator == "Corporate park export service"

    def test_close_and_abort_leave_no_temporary_files(self):
        write(self.writer_class, self.tmp_path / "done.xlsx", [make_row()])
        aborted = self.writer_class(self.tmp_path / "gone.xlsx", ExportMeta())
        aborted.write_rows(ready(aborted, [make_row()]))
        aborted.abort()
        assert sorted(p.name for p in self.tmp_path.iterdir()) == ["done.xlsx"]

    def test_document_properties_name_filters_and_generation_time(self):
        path = write(self.writer_class, self.tmp_path / "x.xlsx", [make_row()])
        props = openpyxl.load_workbook(path).properties
        assert props.subject == "DOT: Adrar, Oran; limit: 100"
        assert props.created == datetime(
            2026, 12, 4, 14, 30
        )  # 15:30 in Algiers, in UTC
        with zipfile.ZipFile(path) as book:
            names = [info.filename for info in book.infolist()]
            assert book.testzip() is None and len(names) == len(set(names))

    def test_dates_keep_milliseconds(self):
        when = datetime(2024, 1, 2, 3, 4, 5, 678000)
        path = write(
            self.writer_class, self.tmp_path / "x.xlsx", [make_row(creation_date=when)]
        )
        assert openpyxl.load_workbook(path).active["M2"].value == when
        values = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        assert values[1][DATE_COLUMN] == when


class RustXlsxWriterTests(_XlsxRules, _WriterTestCase):
    writer_class = RustXlsxWriter

    def writer(self, name: str, rows: int) -> RustXlsxWriter:
        return RustXlsxWriter(self.tmp_path / name, ExportMeta(row_count=rows))

    def test_abort_mid_stream_stops_the_writer_thread(self):
        writer = self.writer("gone.xlsx", 10_000)
        for start in range(0, 5_000, 500):
            writer.write_rows(ready(writer, [make_row(i) for i in range(start, start + 500)])
            )
        thread = writer._thread
        writer.abort()
        assert not thread.is_alive()
        assert list(self.tmp_path.iterdir()) == []

    def test_more_rows_than_the_planned_sheets_hold_are_refused(self):
        self.monkeypatch.setattr(RustXlsxWriter, "max_rows_per_sheet", 3)
        writer = self.writer("x.xlsx", 5)  # two sheets: six rows at most
        writer.write_rows(ready(writer, [make_row(i) for i in range(4)]))
        with pytest.raises(ValueError, match="more rows than the 5 counted"):
            writer.write_rows(ready(writer, [make_row(i) for i in range(3)]))
        writer.abort()

    def test_rows_filling_the_last_sheet_exactly(self):
        self.monkeypatch.setattr(RustXlsxWriter, "max_rows_per_sheet", 3)
        rows = [make_row(i) for i in range(6)]
        book = openpyxl.load_workbook(
            write(RustXlsxWriter, self.tmp_path / "x.xlsx", rows)
        )
        assert [s.auto_filter.ref for s in book.worksheets] == ["A1:O4", "A1:O4"]
        data = [
            [c.value for c in r]
            for s in book.worksheets
            for r in s.iter_rows(min_row=2)
        ]
        assert data == [list(row) for row in rows]

    def test_fewer_rows_than_counted_still_give_a_valid_workbook(self):
        self.monkeypatch.setattr(RustXlsxWriter, "max_rows_per_sheet", 3)
        writer = self.writer("x.xlsx", 7)  # three sheets planned, two rows come
        writer.write_rows(ready(writer, [make_row(0), make_row(1)]))
        writer.close()
        book = openpyxl.load_workbook(self.tmp_path / "x.xlsx")
        assert [s.max_row for s in book.worksheets] == [3, 1, 1]
        assert all(
            [c.value for c in s[1]] == list(EXPORT_HEADERS) for s in book.worksheets
        )

    def test_write_failure_is_raised_with_its_errno(self):
        writer = RustXlsxWriter(
            self.tmp_path / "missing" / "x.xlsx", ExportMeta(row_count=1)
        )
        writer.write_rows(ready(writer, [make_row()]))
        with pytest.raises(FileNotFoundError):
            writer.close()
        writer.abort()

    def test_prepare_is_thread_safe_and_leaves_input_alone(self):
        writer = self.writer("x.xlsx", 0)
        batches = [form(writer, hostile_rows() * 50) for _ in range(8)]
        copies = [list(batch) for batch in batches]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(writer.prepare, batches))
        assert all(
            result == writer.prepare(batch) for result, batch in zip(results, batches)
        )
        assert batches == copies
        writer.abort()


class XlsxWriterWriterTests(_XlsxRules, _WriterTestCase):
    writer_class = XlsxWriterWriter


class PdfWriterTests(_WriterTestCase):
    def pages(self, path: Path) -> list[str]:
        return [page.extract_text() for page in PdfReader(path).pages]

    def test_pages_are_a4_landscape(self):
        reader = PdfReader(write(PdfWriter, self.tmp_path / "x.pdf", [make_row()]))
        box = reader.pages[0].mediabox
        assert (round(float(box.width), 2), round(float(box.height), 2)) == (
            841.89,
            595.28,
        )

    def test_every_page_has_header_and_page_number(self):
        rows = [make_row(i) for i in range(200)]
        texts = self.pages(write(PdfWriter, self.tmp_path / "x.pdf", rows, batch=50))
        assert len(texts) > 3
        for number, text in enumerate(texts, 1):
            assert f"Page {number} / {len(texts)}" in text
            assert "Actel Code" in text and "Customer Full Name" in text
        body = squeeze("".join(texts))
        assert all(f"c1-{i}c2-{i}" in body for i in range(200))

    def test_title_names_filters_and_generation_time(self):
        text = self.pages(write(PdfWriter, self.tmp_path / "x.pdf", [make_row()]))[0]
        assert "Corporate park export" in text
        assert "DOT: Adrar, Oran; limit: 100" in text
        assert "2026-12-04 15:30:00" in text

    def test_fonts_embedded_are_noto_sans(self):
        reader = PdfReader(write(PdfWriter, self.tmp_path / "x.pdf", hostile_rows()))
        names = {
            str(font["/BaseFont"])
            for font in reader.pages[0]["/Resources"]["/Font"].values()
        }
        assert any("NotoSans-" in name for name in names) and any(
            "NotoSansArabic" in name for name in names
        )
        assert not any("Helvetica" in name for name in names)

    def test_arabic_is_shaped_and_right_to_left(self):
        text = self.pages(
            write(
                PdfWriter,
                self.tmp_path / "x.pdf",
                [make_row(customer_full_name=ARABIC_NAME)],
            )
        )[0]
        shaped = arabic_reshaper.reshape(ARABIC_NAME)
        assert (
            shaped != ARABIC_NAME
        )  # presentation forms: the letters joined as written
        assert as_pypdf_reads_rtl(ARABIC_NAME) in text
        assert shaped not in text and ARABIC_NAME not in text

    def test_accents_special_characters_and_formulas_printed_as_is(self):
        text = squeeze(
            self.pages(write(PdfWriter, self.tmp_path / "x.pdf", hostile_rows()))[0]
        )
        for value in (
            "Béjaïa",
            "Aïn Témouchent",
            "00123",
            "a,b",
            '=HYPERLINK("http://x","y")',
            "@SUM(1+1)",
        ):
            assert squeeze(value) in text
        assert squeeze('Sarl "El Baraka", Oran') in text

    def test_long_values_wrap_without_losing_a_character(self):
        latin = "Entreprise nationale " * 8 + "X" * 90 + " <&>"
        rows = [
            make_row(customer_l3_desc=latin),
            make_row(1, customer_l3_desc=latin + " " + ARABIC_NAME),
        ]
        text = self.pages(write(PdfWriter, self.tmp_path / "x.pdf", rows))[0]
        first, second = text.split("c0-1")
        assert squeeze(latin) in squeeze(first)
        assert squeeze(latin + as_pypdf_reads_rtl(ARABIC_NAME)) in squeeze(second)

    def test_row_taller_than_a_page_continues_on_the_next(self):
        tall = "\n".join(f"line {i:03d}" for i in range(150))
        texts = self.pages(
            write(
                PdfWriter,
                self.tmp_path / "x.pdf",
                [make_row(customer_l1_desc=tall), make_row(9)],
            )
        )
        body = "\n".join(texts)
        assert len(texts) >= 3
        assert all(f"line {i:03d}" in body for i in range(150)) and "c14-9" in body

    def test_empty_export_has_title_and_header(self):
        texts = self.pages(write(PdfWriter, self.tmp_path / "x.pdf", []))
        assert len(texts) == 1
        assert "Corporate park export" in texts[0] and "Customer Full Name" in texts[0]
        assert "Page 1 / 1" in texts[0]

    def test_parallel_exports_in_threads(self):
        rows = hostile_rows() * 10
        with ThreadPoolExecutor(3) as pool:
            paths = list(
                pool.map(
                    lambda i: write(PdfWriter, self.tmp_path / f"{i}.pdf", rows),
                    range(3),
                )
            )
        texts = [self.pages(path) for path in paths]
        assert texts[0] == texts[1] == texts[2] and "Béjaïa" in texts[0][0]


class FontsTests(_WriterTestCase):
    def test_wrap_keeps_every_character_within_the_width(self):
        def measure(text: str) -> float:
            return len(text)

        text = "alpha beta  gamma\n" + "x" * 23 + " end"
        lines = fonts.wrap(text, 10, measure)
        assert all(len(line) <= 10 for line in lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace(
            "\n", ""
        )
        assert lines[:2] == ["alpha beta", " gamma"]

    def test_register_fonts_once_from_many_threads(self):
        barrier = threading.Barrier(4)

        def register():
            barrier.wait()
            fonts.register_fonts()

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(
            fonts.font_path(name).is_file()
            for name in (fonts.LATIN_FONT, fonts.ARABIC_FONT)
        )
        assert fonts.is_rtl(ARABIC_NAME) and not fonts.is_rtl("Oran " + ARABIC_NAME)
