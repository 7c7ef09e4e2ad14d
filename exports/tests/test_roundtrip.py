"""From the database to the file: records built to hurt, stored, exported in each format by the
real runner (the query's date conversion, the batch reads on the pool, the writers), and read
back by independent readers (csv, openpyxl, python-calamine, pypdf): equal to the database."""

import csv
from datetime import UTC, datetime

import openpyxl
from pypdf import PdfReader
from python_calamine import CalamineWorkbook
from django.test import TransactionTestCase, override_settings

from exports import runner
from exports.models import EXPORT_FIELDS, EXPORT_HEADERS, CorporateParkRecord, ExportTask
from exports.tests.factories import make_records
from exports.tests.test_runner import ExportDirMixin
from exports.tests.test_writers import excel_unescape

WHEN = datetime(2024, 6, 1, 23, 30, 5, 678000, tzinfo=UTC)  # 2024-06-02 00:30:05.678 in Algiers
LOCAL = datetime(2024, 6, 2, 0, 30, 5, 678000)
FORMULAS = ('=HYPERLINK("http://x","y")', "+33 cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
            "\tcmd", "\rcmd")
HURTING = [
    {"dot": "Béjaïa", "customer_full_name": 'Sarl "El Baraka", Oran', "offer_name": "a,b"},
    {"dot": "Aïn Témouchent", "customer_full_name": "شركة سوناطراك", "actel_code": "00123"},
    {"customer_l1_desc": "line one\nline two", "state": "", "customer_l2_code": "007"},
    {"customer_l2_desc": "a=b stays", "customer_l3_desc": "'already quoted"},
    {"customer_l3_desc": "unit\x1fseparator", "offer_type": "x,\x1f=y"},
    *({"customer_full_name": text, "offer_type": text} for text in FORMULAS),
]


@override_settings(TIME_ZONE="Africa/Algiers")
class RoundTripTests(ExportDirMixin, TransactionTestCase):
    def setUp(self):
        super().setUp()
        for i, values in enumerate(HURTING):
            make_records(1, start=i, creation_date=WHEN, **values)
        self.stored = [list(row) for row in CorporateParkRecord.objects.order_by("pk")
                       .values_list(*EXPORT_FIELDS)]
        self.date = EXPORT_FIELDS.index("creation_date")

    def export(self, export_format: str) -> ExportTask:
        task = self.new_task(export_format)
        with override_settings(BATCH_SIZE=3):  # several batches, read ahead on the pool
            self.assertEqual(runner.run_claimed(task.id), ExportTask.Status.COMPLETED)
        task.refresh_from_db()
        self.assertEqual(task.row_count, len(HURTING))
        return task

    def expected(self, text, date) -> list[list]:
        return [[date if col == self.date else text(value) for col, value in enumerate(row)]
                for row in self.stored]

    def test_csv_reads_back_exactly_with_only_the_documented_quote(self):
        task = self.export("csv")
        with open(task.file_path, encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle))
        neutral = lambda v: "'" + v if v.startswith(("=", "+", "-", "@", "\t", "\r")) else v  # noqa: E731
        self.assertEqual(lines[0], list(EXPORT_HEADERS))
        self.assertEqual(lines[1:], self.expected(neutral, "2024-06-02 00:30:05"))

    def test_xlsx_reads_back_exactly_in_openpyxl_and_calamine(self):
        task = self.export("excel")
        sheet = openpyxl.load_workbook(task.file_path).active
        cells = list(sheet.iter_rows(min_row=2))
        clean = lambda v: v.replace("\x1f", "")  # noqa: E731 - XML forbids it: dropped
        expected = self.expected(lambda v: clean(v) or None, LOCAL)
        # openpyxl leaves the _x000D_ escape of a carriage return as it is; Excel decodes it.
        read = [[excel_unescape(c.value) if isinstance(c.value, str) else c.value for c in row]
                for row in cells]
        self.assertEqual(read, expected)
        self.assertTrue(all(row[self.date].is_date for row in cells))
        self.assertTrue(all(c.data_type == "s" for row in cells for c in row
                            if c.value is not None and not c.is_date))
        values = CalamineWorkbook.from_path(task.file_path).get_sheet_by_index(0).to_python()
        self.assertEqual(values[1:], self.expected(clean, LOCAL))

    def test_pdf_holds_every_row(self):
        task = self.export("pdf")
        text = "".join(page.extract_text() for page in PdfReader(task.file_path).pages)
        flat = "".join(text.split())
        for needle in ("Béjaïa", "00123", "007", "2024-06-0200:30:05", "'alreadyquoted",
                       '=HYPERLINK("http://x","y")', "@SUM(1+1)"):
            self.assertIn(needle, flat)
