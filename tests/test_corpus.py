"""Acceptance on the real documents: the bundled reply letter and the shared PDFs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests_support import REPLY_LETTER

from ingest.build import build
from ingest.clean import is_page_number
from kb.core.settings import Settings
from kb.store.generations import open_kb

pytestmark = pytest.mark.slow  # builds a knowledge base of the shared PDFs (e5, OCR)

REPO = Path(__file__).resolve().parents[1]
PDF_PAGES = {
    "anhui-2024-budget-report-excerpt.pdf": 2, "guangdong-2024-budget-report-excerpt.pdf": 5,
    "guizhou-2024-budget-report-excerpt.pdf": 2, "huaian-hongze-2023-gov-info-report.pdf": 5,
    "huaian-hongze-2024-gov-info-report.pdf": 5, "ningxia-2024-budget-report-excerpt.pdf": 4,
}


@pytest.fixture(scope="module")
def corpus_kb(tmp_path_factory, shared_corpus, embed_cache):
    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("kb"), embed_cache=embed_cache)
    report = build([REPLY_LETTER, shared_corpus / "pdf"], settings, progress=False)
    assert not report.failed, report.summary()
    return open_kb(settings.store.kb_dir)


def _doc(kb, name):
    return next(d for d in kb.documents() if d.file_name == name)


def test_reply_letter_in_the_kb(corpus_kb):
    doc = corpus_kb.document(_doc(corpus_kb, "nbamr-2019-25-reply-to-proposal-130.txt").doc_id)
    assert (doc.meta.doc_number, doc.meta.issuer, doc.meta.date, doc.meta.addressee) == (
        "甬市监函〔2019〕25号", "宁波市市场监督管理局", "2019-07-22", "刘正义委员")
    for phrase in ["专利价值评估系统", "充分发挥"]:
        assert phrase in doc.text
    assert sum("专利价值评估系统" in c.text for c in doc.chunks) == 1
    assert sum("充分发挥专利无形资产价值" in c.text for c in doc.chunks) == 1
    leaves = [c.heading_path[-1] for c in doc.chunks if c.heading_path]
    assert [x[:2] for x in leaves if x[1] == "是"] == ["一是", "二是", "三是", "四是", "五是"]
    assert [x[:2] for x in leaves if re.match(r"\d、", x)] == [f"{n}、" for n in range(1, 7)]


def test_all_six_pdfs_ingest_with_pages_and_no_page_numbers(corpus_kb):
    for name, pages in PDF_PAGES.items():
        doc = corpus_kb.document(_doc(corpus_kb, name).doc_id)
        assert doc.page_count == pages, name
        assert doc.chunks, name
        assert {p for c in doc.chunks for p in c.pages} == set(range(1, pages + 1)), name
        for line in doc.text.split("\n"):
            assert not is_page_number(line), (name, line)
        assert not re.search(r"—\s*\d+\s*—|-\s\d+\s-", doc.text), name
        for c in doc.chunks:
            assert len(c.text) <= 800 + 200  # cap, plus a repeated table header at most


def test_chunks_cite_the_right_pages(corpus_kb):
    doc = corpus_kb.document(_doc(corpus_kb, "huaian-hongze-2023-gov-info-report.pdf").doc_id)
    by_text = lambda s: next(c for c in doc.chunks if s in c.text)  # noqa: E731
    assert by_text("主动公开政府信息1136条").pages == [1]
    assert 2 in by_text("级审核、先审后发").pages and 1 in by_text("级审核、先审后发").pages
    assert by_text("行政事业性收费").pages == [3]
    assert by_text("六、其他需要报告的事项").pages == [5]
    ningxia = corpus_kb.document(_doc(corpus_kb, "ningxia-2024-budget-report-excerpt.pdf").doc_id)
    assert next(c for c in ningxia.chunks if "有待进一步提高" in c.text).pages[0] == 1


def test_no_text_layer_pdf_is_ocrd(corpus_kb):
    doc = corpus_kb.document(_doc(corpus_kb, "guangdong-2024-budget-report-excerpt.pdf").doc_id)
    assert doc.ocr_pages == [1, 2, 3, 4, 5]
    assert "零基预算" in doc.text and len(doc.text) > 2000


def test_pdf_titles_and_types(corpus_kb):
    assert _doc(corpus_kb, "anhui-2024-budget-report-excerpt.pdf").meta.title == \
        "关于安徽省2023年预算执行情况和2024年预算草案的报告"
    hongze = _doc(corpus_kb, "huaian-hongze-2023-gov-info-report.pdf").meta
    assert hongze.title == "洪泽区人民政府2023年政府信息公开工作年度报告" and hongze.doc_type == "报告"
    assert hongze.date is None and hongze.doc_number is None  # absent, not guessed
