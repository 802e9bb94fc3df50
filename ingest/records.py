"""Records that exist only during ingestion: a file as loaded, and its cleaned text."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """Raw text of one page as a loader read it (1-based page number)."""

    number: int
    text: str
    ocr: bool = False  # True when the text came from OCR, not a text layer


@dataclass(frozen=True)
class RawDocument:
    """One source file as loaded, before cleaning."""

    path: str
    kind: str  # pdf, docx, txt, md, html
    pages: list[Page]
    encoding: str | None = None  # detected encoding for text formats
    file_title: str | None = None  # title stored in the file's own properties, if any
    header: str | None = None  # a LawRefBook file's header of dated lines (before <!-- INFO END -->)

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.pages)


@dataclass(frozen=True)
class CleanText:
    """Cleaned text of a document plus where each page starts in it."""

    text: str
    page_starts: list[tuple[int, int]]  # (offset in text, page number), ascending

    def page_at(self, offset: int) -> int:
        page = self.page_starts[0][1] if self.page_starts else 1
        for start, number in self.page_starts:
            if start > offset:
                break
            page = number
        return page

    def pages_between(self, start: int, end: int) -> list[int]:
        """Page numbers covered by text[start:end]."""
        first, last = self.page_at(start), self.page_at(max(start, end - 1))
        return [n for _, n in self.page_starts if first <= n <= last] or [first]
