"""Export writers by format: get_writer("csv" | "excel" | "pdf") returns the Writer class.

"excel" is RustXlsxWriter (rustpy-xlsxwriter, the fastest writer that keeps every rule);
XlsxWriterWriter (pure-Python XlsxWriter) writes the same file and stays available."""

from .base import ExportMeta, Writer
from .csv import CsvWriter
from .pdf import PdfWriter
from .xlsx import XlsxWriterWriter
from .xlsx_rust import RustXlsxWriter

WRITERS: dict[str, type[Writer]] = {w.format: w for w in (RustXlsxWriter, CsvWriter, PdfWriter)}


def get_writer(export_format: str) -> type[Writer]:
    return WRITERS[export_format]


__all__ = ["WRITERS", "ExportMeta", "RustXlsxWriter", "Writer", "XlsxWriterWriter", "get_writer"]
