"""The PDF's two fonts, Noto Sans and Noto Sans Arabic from the fontpkg pip packages: finding and
registering them with ReportLab once per process, and laying text out in them (measuring,
line wrapping, and shaping Arabic into right-to-left visual order)."""

import re
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import arabic_reshaper
import fontpkg_noto_sans
import fontpkg_noto_sans_arabic
from bidi import get_display
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

LATIN_FONT = "NotoSans"
ARABIC_FONT = "NotoSansArabic"
_FILES = {
    LATIN_FONT: fontpkg_noto_sans.ROOT / "files" / "NotoSans[wdth,wght].ttf",
    ARABIC_FONT: fontpkg_noto_sans_arabic.ROOT
    / "files"
    / "NotoSansArabic[wdth,wght].ttf",
}
# Arabic letters, supplements and presentation forms (what arabic_reshaper produces).
ARABIC = re.compile(
    r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"
)
_ARABIC_RUNS = re.compile(
    r"([\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]+)"
)

_lock = threading.Lock()  # export threads may build their first PDF at the same moment
_registered = False


def font_path(name: str) -> Path:
    return _FILES[name]


def register_fonts() -> None:
    """Register both fonts with ReportLab, once per process, whatever the thread."""
    global _registered
    if _registered:
        return
    with _lock:
        if not _registered:
            for name, path in _FILES.items():
                pdfmetrics.registerFont(TTFont(name, str(path)))
            _registered = True


def has_arabic(text: str) -> bool:
    return ARABIC.search(text) is not None


def is_rtl(text: str) -> bool:
    """True when the first strongly directional character is right-to-left (bidi rule P2)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def width_of(text: str, size: float) -> float:
    """Width of text drawn with Arabic runs in the Arabic font and the rest in Noto Sans."""
    total = 0.0
    for index, run in enumerate(_ARABIC_RUNS.split(text)):
        if run:
            font = ARABIC_FONT if index % 2 else LATIN_FONT
            total += pdfmetrics.stringWidth(run, font, size)
    return total


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break text into lines no wider than width: at newlines, then at spaces, and inside a
    word only when the word alone is too wide. Every character is kept, in order."""
    lines: list[str] = []
    space = measure(" ")
    for paragraph in text.split("\n"):
        if measure(paragraph) <= width:
            lines.append(paragraph)
            continue
        line, line_width = None, 0.0
        for word in paragraph.split(" "):
            word_width = measure(word)
            if line is not None and line_width + space + word_width <= width:
                line, line_width = f"{line} {word}", line_width + space + word_width
                continue
            if line is not None:
                lines.append(line)
            while word_width > width and len(word) > 1:
                cut = _fitting_prefix(word, width, measure)
                lines.append(word[:cut])
                word = word[cut:]
                word_width = measure(word)
            line, line_width = word, word_width
        lines.append(line or "")
    return lines


def _fitting_prefix(word: str, width: float, measure: Callable[[str], float]) -> int:
    used = 0.0
    for index, char in enumerate(word):
        used += measure(char)
        if used > width:
            return max(1, index)  # at least one character, or the loop would never end
    return len(word)


def rtl_markup(text: str, width: float, size: float) -> str:
    """Paragraph markup for text holding Arabic: shaped, wrapped in logical order (so the first
    words stay on the first line), each line reordered for display, Arabic runs in the
    Arabic font, everything else in Noto Sans, XML escaped."""
    shaped = arabic_reshaper.reshape(text)
    lines = wrap(shaped, width, lambda s: width_of(s, size))
    # One base direction for the whole value, or a wrapped line that happens to start with
    # Arabic would flip its neighbours round.
    base = "R" if is_rtl(text) else "L"
    return "<br/>".join(_font_runs(get_display(line, base_dir=base)) for line in lines)


def _font_runs(visual: str) -> str:
    parts = _ARABIC_RUNS.split(visual)
    return "".join(
        f'<font name="{ARABIC_FONT}">{escape(part)}</font>'
        if index % 2
        else escape(part)
        for index, part in enumerate(parts)
        if part
    )
