"""Hostile PDFs cost the app neither its memory nor unbounded time (ingest/sandbox.py, ingest/ocr.py).

Two attacks, made here byte by byte: a page image that inflates to gigabytes (a Flate bomb), and a blank
page declared 14,400 pt square that, rendered for OCR at scale 2, is a 3.3 GB bitmap. Each must fail
its own file with a reason, quickly, while the parent process's memory stays where it was.
"""
from __future__ import annotations

import resource
import shutil
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from tests_support import REPLY_LETTER

from ingest.loaders import Limits
from ingest.ocr import MAX_RENDER_PIXELS, render_scale
from ingest.sandbox import PdfSandbox
from kb.core.errors import LoadError


def write_pdf(path: Path, page: bytes, extra: list[bytes] = ()) -> Path:
    """A one-page PDF: objects 1-3 are catalogue, pages and `page`; `extra` are objects 4, 5, …"""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page, *extra]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def stream(data: bytes, header: bytes = b"") -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (header, len(data)) + data + b"\nendstream"


def flate_bomb(path: Path, side: int = 40_000) -> Path:
    """A page whose only content is a side x side RGB image of zeros: 3 * side² bytes from a small file."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (3 * side)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >>"
            b" /Contents 4 0 R >>")
    image = stream(data, b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                         b"/BitsPerComponent 8 /Filter /FlateDecode" % (side, side))
    return write_pdf(path, page, [stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q"), image])


def huge_blank_page(path: Path) -> Path:
    return write_pdf(path, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R >>",
                     [stream(b"q Q")])


@pytest.mark.parametrize("width, height, scale, expected", [
    (595, 842, 2.0, 2.0),  # A4 at the default scale: untouched
    (842, 1191, 2.0, 2.0),  # A3: 4.0 million pixels, untouched
    (595, 842, 1.0, 1.0),  # a lower configured scale stays
    (14_400, 14_400, 2.0, (MAX_RENDER_PIXELS / 14_400 ** 2) ** 0.5),  # the largest page PDF allows
    (0, 0, 2.0, 2.0),  # a degenerate page size does not divide by zero
])
def test_render_scale_caps_the_bitmap(width, height, scale, expected):
    assert render_scale(width, height, scale) == pytest.approx(expected)
    if width and height:
        assert (width * render_scale(width, height, scale)) * (height * render_scale(width, height, scale)) \
            <= MAX_RENDER_PIXELS * 1.0001


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.slow
def test_hostile_pdfs_fail_their_file_without_touching_the_parents_memory(tmp_path, shared_corpus):
    bomb = flate_bomb(tmp_path / "bomb.pdf")
    blank = huge_blank_page(tmp_path / "blank.pdf")
    assert bomb.stat().st_size < 10 * 1024 * 1024
    before = _peak_rss_mb()
    # a ceiling below what the bomb inflates to (4.8 GB), above what one normal OCR'd page needs
    with PdfSandbox(memory_mb=2500, ocr_scale=2.0) as sandbox:
        for hostile in (bomb, blank):
            started = time.monotonic()
            with pytest.raises(LoadError) as failed:
                sandbox.load(hostile, max_bytes=30 << 20, limits=Limits())
            assert time.monotonic() - started < 120, f"{hostile.name} took too long"
            assert "Traceback" not in str(failed.value)
        # the reader comes back for the next file: a real PDF with a text layer still loads
        good = sandbox.load(shared_corpus / "pdf" / "huaian-hongze-2024-gov-info-report.pdf", max_bytes=30 << 20,
                            limits=Limits())
        assert len(good.text) > 1000
    assert _peak_rss_mb() - before < 500


@pytest.mark.slow
def test_cancel_kills_the_reader_at_once(tmp_path):
    blank = huge_blank_page(tmp_path / "blank.pdf")
    asked = time.monotonic() + 1.0
    limits = replace(Limits(), should_stop=lambda: time.monotonic() > asked)
    with PdfSandbox(memory_mb=2500, ocr_scale=2.0) as sandbox:
        with pytest.raises(LoadError, match="cancelled"):
            sandbox.load(blank, max_bytes=30 << 20, limits=limits)
        assert time.monotonic() - asked < 5


@pytest.mark.slow
def test_a_build_with_a_bomb_indexes_the_other_files(tmp_path, embed_cache):
    from ingest.build import build
    from kb.core.settings import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPLY_LETTER, corpus)
    flate_bomb(corpus / "bomb.pdf")
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_cache=embed_cache, max_parse_memory_mb=2500)
    report = build([corpus], settings, progress=False)
    assert [Path(r.path).name for r in report.failed] == ["bomb.pdf"]
    assert report.count("ok") == 1
