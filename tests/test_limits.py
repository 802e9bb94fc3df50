"""What one file may cost to load: PDF pages and OCR'd pages, DOCX unpacked size and element count,
a time budget per file, and cancelling between pages (ingest/loaders.py Limits)."""
from __future__ import annotations

import resource
import time
import zipfile
from pathlib import Path

import pytest

from ingest.loaders import Limits, load
from kb.core.errors import LoadError

MAX = 30 * 2**20

CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
                 '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
                 'document.main+xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def write_docx(path: Path, paragraphs: int, text: str = "") -> Path:
    """A DOCX of `paragraphs` paragraphs, document.xml streamed into the zip (3 million pack small)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        with z.open("word/document.xml", "w") as doc:
            doc.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W}"><w:body>'.encode())
            para = (f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" if text else "<w:p/>").encode()
            block = para * 10_000
            for _ in range(paragraphs // 10_000):
                doc.write(block)
            doc.write(para * (paragraphs % 10_000))
            doc.write(b"</w:body></w:document>")
    return path


def write_blank_pdf(path: Path, pages: int) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


class BlankOcr:
    """An OCR engine that reads nothing, and counts the pages it was given."""

    def __init__(self, seconds: float = 0.0):
        self.pages, self.seconds = 0, seconds

    def read_pdf_page(self, path, index):
        self.pages += 1
        time.sleep(self.seconds)
        return ""


def test_a_docx_of_three_million_empty_paragraphs_is_refused_fast(tmp_path):
    bomb = write_docx(tmp_path / "bomb.docx", 3_000_000)
    assert bomb.stat().st_size < 200_000  # packs small
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(LoadError, match="too many elements.*max_docx_paragraphs"):
        load(bomb, max_bytes=MAX)
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 100_000  # KB: no parse tree was built


def test_docx_limits_are_settings(tmp_path):
    small = write_docx(tmp_path / "small.docx", 50, text="专利质押融资风险补偿。")
    assert "专利质押融资风险补偿" in load(small, max_bytes=MAX).text
    with pytest.raises(LoadError, match="too many elements"):
        load(small, max_bytes=MAX, limits=Limits(max_docx_paragraphs=49))
    with pytest.raises(LoadError, match="too large unpacked"):
        load(small, max_bytes=MAX, limits=Limits(max_docx_unpacked_mb=0.001))


def test_a_pdf_of_many_blank_pages_is_refused_before_reading(tmp_path):
    pdf = write_blank_pdf(tmp_path / "blank.pdf", 600)
    ocr = BlankOcr()
    with pytest.raises(LoadError, match="600 PDF pages exceed the limit of 500"):
        load(pdf, max_bytes=MAX, ocr=ocr)
    assert ocr.pages == 0


def test_blank_pages_count_against_the_ocr_limit(tmp_path):
    pdf = write_blank_pdf(tmp_path / "blank.pdf", 80)
    ocr = BlankOcr()
    with pytest.raises(LoadError, match="more than 50 pages without a text layer"):
        load(pdf, max_bytes=MAX, ocr=ocr)
    assert ocr.pages == 50
    ocr = BlankOcr()
    with pytest.raises(LoadError, match="no text found"):  # under the limit: read, and nothing found
        load(write_blank_pdf(tmp_path / "few.pdf", 5), max_bytes=MAX, ocr=ocr)
    assert ocr.pages == 5


def test_time_budget_and_cancel_between_pages(tmp_path):
    pdf = write_blank_pdf(tmp_path / "blank.pdf", 40)
    ocr = BlankOcr(seconds=0.05)
    with pytest.raises(LoadError, match="time budget exceeded.*max_file_seconds"):
        load(pdf, max_bytes=MAX, ocr=ocr, limits=Limits(max_file_seconds=0.3))
    assert ocr.pages < 15
    ocr, asked = BlankOcr(), []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(LoadError, match="cancelled"):
        load(pdf, max_bytes=MAX, ocr=ocr, limits=Limits(should_stop=stop))
    assert ocr.pages == 3
