"""Export writers by format: get_writer("csv" | "excel" | "pdf") returns the Writer class."""

from .base import ExportMeta, Writer
from .csv import CsvWriter
from .pdf import PdfWriter
from .xlsx import XlsxWriter

WRITERS: dict[str, type[Writer]] = {w.format: w for w in (XlsxWriter, CsvWriter, PdfWriter)}


def get_writer(export_format: str) -> type[Writer]:
    return WRITERS[export_format]


__all__ = ["ExportMeta", "Writer", "get_writer", "WRITERS"]
