"""OCR of PDF pages that have no usable text layer (scans, glyphs drawn as outlines)."""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any, Sequence

_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
# Pixels of one rendered page: an A4 page at scale 2 is 2.0 million, A3 4.0. A page's size is the file's
# to declare (up to 14,400 pt square, 830 million pixels at scale 2: 3.3 GB and 100 s of OCR for a blank
# page), so larger pages are rendered at the scale that fits this many (twice an A3 page at scale 2).
MAX_RENDER_PIXELS = 8_000_000


def render_scale(width_pt: float, height_pt: float, scale: float, max_pixels: int = MAX_RENDER_PIXELS) -> float:
    """The scale to render a page of this size at: `scale`, or less so the bitmap stays within max_pixels."""
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    return min(scale, math.sqrt(max_pixels / area))


class OcrEngine:
    """Chinese OCR of rendered PDF pages with rapidocr-onnxruntime (models ship in the wheel)."""

    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale
        self._rapid: Any = None  # created on first use: loading the ONNX models costs time

    def _engine(self) -> Any:
        if self._rapid is None:
            from rapidocr_onnxruntime import RapidOCR  # heavy import, only when OCR is needed

            self._rapid = RapidOCR()
        return self._rapid

    def read_pdf_page(self, pdf_path: Path, page_index: int) -> str:
        """Render page `page_index` (0-based) and return its text, one visual line per line."""
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            page = pdf[page_index]
            try:
                bitmap = page.render(scale=render_scale(*page.get_size(), self.scale))
                image = bitmap.to_numpy()  # BGR(x), which is what RapidOCR expects for arrays
                bitmap.close()
            finally:
                page.close()
        finally:
            pdf.close()
        # no angle classifier: rendered pages are upright, and it flipped whole lines 180°
        # on the Guangdong PDF, which then came back empty (0.976 -> 0.996 similarity without it)
        results, _elapsed = self._engine()(image, use_cls=False)
        return "\n".join(lines_from_boxes(results))


def _join(fragments: list[str]) -> str:
    out = ""
    for frag in fragments:
        # CJK needs no separator; two Latin/digit runs would otherwise merge into one word
        if out and _ASCII_ALNUM.fullmatch(out[-1]) and _ASCII_ALNUM.fullmatch(frag[0]):
            out += " "
        out += frag
    return out


def lines_from_boxes(results: Sequence[Sequence[Any]] | None) -> list[str]:
    """Turn rapidocr results [(box, text, score), ...] into lines in reading order.

    box is four (x, y) corner points. Boxes whose vertical centres lie within half the
    median box height of a line's centre belong to that line; a line reads left to right.
    """
    items: list[tuple[float, float, float, str]] = []  # (y centre, height, x left, text)
    for box, text, *_ in results or []:
        text = str(text).strip()
        if not text:
            continue
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text))
    if not items:
        return []
    tolerance = statistics.median(h for _, h, _, _ in items) / 2
    items.sort(key=lambda it: (it[0], it[2]))

    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        if lines:
            current = lines[-1]
            centre = sum(it[0] for it in current) / len(current)
            if abs(item[0] - centre) <= tolerance:
                current.append(item)
                continue
        lines.append([item])
    return [_join([it[3] for it in sorted(line, key=lambda it: it[2])]) for line in lines]
