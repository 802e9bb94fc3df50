"""The hand-written test sets stay true to their documents (format in eval/testsets/README.md).

`library.jsonl` is checked against the files it was written over: the bundled corpus (`data/corpus/`, the
letter and the policies) and the national IP law library (its `library` folder once bundled, else
`../shared/corpus/library/`). Re-run after a change to cleaning or chunking:
`pytest tests/test_testsets.py -q`.
"""
from __future__ import annotations

import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path

import pytest

from eval.testset import load_testset
from kb.core.text import squeeze

REPO = Path(__file__).resolve().parents[1]
LIBRARY_SET = REPO / "eval" / "testsets" / "library.jsonl"
BUNDLED = REPO / "data" / "corpus"
SHARED_LIBRARY = REPO.parent / "shared" / "corpus" / "library"
SUPPORT_OVERLAP = 0.6  # eval/metrics.py's rule: a common substring of 60% of the evidence
ANSWERABLE_KINDS = {"answerable", "amount", "deadline", "materials", "procedure", "condition", "validity", "place"}
UNANSWERABLE_KINDS = {"fact_missing", "other_place", "term_missing", "off_topic", "other_year"}
INFO_END = "<!-- INFO END -->"
NOT_DOCUMENTS = {"SOURCES.md", "README.md"}  # the library's provenance notes, not ingested


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _corpus_files() -> dict[str, Path]:
    """Every document the library set is asked of, by file name (names are unique across folders)."""
    files = [p for p in BUNDLED.rglob("*") if p.suffix.lower() in (".md", ".txt", ".pdf") and p.name not in NOT_DOCUMENTS]
    if not (BUNDLED / "library").is_dir():
        if not SHARED_LIBRARY.is_dir():
            if os.environ.get("CI"):
                pytest.fail(f"the library is neither in {BUNDLED / 'library'} nor in {SHARED_LIBRARY}")
            pytest.skip(f"the library is not bundled and {SHARED_LIBRARY} is missing")
        files += [p for p in SHARED_LIBRARY.glob("*.md") if p.name not in NOT_DOCUMENTS]
    by_name = {p.name: p for p in files}
    assert len(by_name) == len(files), "two documents share a file name"
    return by_name


@lru_cache(maxsize=None)
def _processed(path: Path) -> tuple[str, tuple[str, ...]]:
    """The document's cleaned text and its chunks' texts, whitespace removed (slow: the whole pipeline)."""
    from ingest.pipeline import process_file

    doc, clean = process_file(path, max_bytes=30 * 2**20, ocr=None)
    return squeeze(clean.text), tuple(squeeze(c.text) for c in doc.chunks)


@lru_cache(maxsize=None)
def _paragraphs(path: Path) -> tuple[str, ...]:
    """A text file's paragraphs (lines), whitespace removed; a LawRefBook dates header is left out."""
    text = path.read_text(encoding="utf-8")
    if INFO_END in text:
        text = text.split(INFO_END, 1)[1]
    return tuple(squeeze(line) for line in text.splitlines() if line.strip())


@lru_cache(maxsize=None)
def _whole(path: Path) -> str:
    return squeeze(path.read_text(encoding="utf-8"))


def _shares_support(text: str, evidence: str) -> bool:
    """eval.metrics.supports over a whole document: some window of 60% of the evidence occurs in it."""
    e = squeeze(evidence)
    size = math.ceil(SUPPORT_OVERLAP * len(e))
    return any(e[i:i + size] in text for i in range(len(e) - size + 1))


def test_library_set_format():
    rows = _rows(LIBRARY_SET)
    assert len(load_testset(LIBRARY_SET)) == len(rows) >= 60  # what `python -m eval run` reads
    assert [r["id"] for r in rows] == [f"l{i:03d}" for i in range(1, len(rows) + 1)]
    for r in rows:
        assert {"id", "question", "answerable", "evidence", "keypoints", "kind", "source"} <= set(r), r["id"]
        assert set(r) <= {"id", "question", "answerable", "evidence", "keypoints", "kind", "source", "region",
                          "history"}, r["id"]
        if r["answerable"]:
            assert r["kind"] in ANSWERABLE_KINDS, r["id"]
            assert 1 <= len(r["evidence"]) <= 3 and 1 <= len(r["keypoints"]) <= 3, r["id"]
            assert all(10 <= len(squeeze(e)) <= 60 for e in r["evidence"]), r["id"]
            for k in r["keypoints"]:
                assert 2 <= len(squeeze(k)) <= 15, (r["id"], k)
                assert any(squeeze(k) in squeeze(e) for e in r["evidence"]), (r["id"], k)
        else:
            assert r["kind"] in UNANSWERABLE_KINDS, r["id"]
            assert r["evidence"] == [] and r["keypoints"] == [], r["id"]
    answerable = [r for r in rows if r["answerable"]]
    assert len(answerable) >= 50 and len(rows) - len(answerable) >= 10
    assert len({r["source"] for r in answerable}) >= 30
    assert set(LIBRARY_ABSENT) == {r["id"] for r in rows if r["kind"] in ("fact_missing", "term_missing",
                                                                          "other_place")}


def _text_files() -> dict[str, Path]:
    return {name: path for name, path in _corpus_files().items() if path.suffix.lower() != ".pdf"}


def test_library_set_evidence_is_in_one_paragraph_of_its_documents():
    """Each evidence string lies inside one paragraph of a document, at least one of them the `source`; any
    Markdown or text document that supports an evidence string (eval.metrics' 60% rule) holds one verbatim,
    so that only the documents listed count as hits (the PDF is checked in the slow test below)."""
    files = _text_files()
    problems: list[str] = []
    for r in _rows(LIBRARY_SET):
        if r["source"]:
            assert r["source"] in files, (r["id"], r["source"])
        if not r["answerable"]:
            continue
        holders = {name for name, path in files.items()
                   if any(squeeze(e) in p for e in r["evidence"] for p in _paragraphs(path))}
        for e in r["evidence"]:
            if not any(squeeze(e) in p for path in files.values() for p in _paragraphs(path)):
                problems.append(f"{r['id']}: evidence not inside one paragraph of any document: {e}")
        if r["source"] not in holders:
            problems.append(f"{r['id']}: no evidence from its source {r['source']}")
        for name, path in files.items():
            if name not in holders and any(_shares_support(_whole(path), e) for e in r["evidence"]):
                problems.append(f"{r['id']}: {name} also supports the evidence and is not listed")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_library_set_evidence_lies_in_one_chunk():
    """As ingested (`process_file`, every file of the knowledge base, the PDF included): each evidence string
    lies inside one chunk of every document that holds it, and no other document supports it. Re-run after a
    change to cleaning or chunking."""
    files = _corpus_files()
    problems: list[str] = []
    for r in _rows(LIBRARY_SET):
        if not r["answerable"]:
            continue
        holders = set()
        for e in r["evidence"]:
            se = squeeze(e)
            for name, path in files.items():
                text, chunks = _processed(path)
                if se in text:
                    holders.add(name)
                    if not any(se in c for c in chunks):
                        problems.append(f"{r['id']}: evidence across chunks of {name}: {e}")
        if r["source"] not in holders:
            problems.append(f"{r['id']}: no evidence in the cleaned text of {r['source']}")
        for name, path in files.items():
            if name not in holders and any(_shares_support(_processed(path)[0], e) for e in r["evidence"]):
                problems.append(f"{r['id']}: {name} (as ingested) also supports the evidence")
    assert not problems, "\n".join(problems)


def test_library_set_unanswerable_terms_are_absent():
    """What an unanswerable question asks for occurs nowhere: for `fact_missing`, not in the document the
    topic comes from; for `term_missing` and `other_place`, in no document of the knowledge base."""
    files = _text_files()
    rows = {r["id"]: r for r in _rows(LIBRARY_SET)}
    for qid, terms in LIBRARY_ABSENT.items():
        r = rows[qid]
        assert not r["answerable"], qid
        scope = [files[r["source"]]] if r["kind"] == "fact_missing" else list(files.values())
        for term in terms:
            holders = [p.name for p in scope if term in _whole(p)]
            assert not holders, (qid, term, holders)


def test_library_set_asks_later_versions():
    """Of a title in two versions, the answerable questions are sourced from the later file, and some are."""
    dated = re.compile(r"^(?P<stem>.+)\((?P<date>\d{4}-\d{2}-\d{2})\)\.md$")
    versions: dict[str, list[str]] = {}
    for name in _corpus_files():
        if m := dated.match(name):
            versions.setdefault(m["stem"], []).append(m["date"])
    twice = {stem: max(dates) for stem, dates in versions.items() if len(dates) > 1}
    later = 0
    for r in _rows(LIBRARY_SET):
        if r["answerable"] and (m := dated.match(r["source"])) and m["stem"] in twice:
            assert m["date"] == twice[m["stem"]], (r["id"], r["source"])
            later += 1
    assert len(twice) >= 5 and later >= 6


# What each unanswerable question asks for, which no document states: a term that a document answering
# it would contain. A document added to the corpus that does state it fails the test above.
LIBRARY_ABSENT: dict[str, list[str]] = {
    "l064": ["苏州"], "l065": ["成都"], "l066": ["武汉", "东湖"], "l067": ["天津"], "l068": ["南京"],
    "l069": ["数据知识产权"], "l070": ["人工智能生成", "AI"],
    "l071": ["元"],  # 国防专利条例: the 补偿费 "由国防专利机构确定", no figure at all
    "l072": ["万元"],  # 宁波市科技创新促进条例 names 奖励 but no amount
    "l073": ["减缴比例", "减缴百分之", "减缴的比例"],  # 实施细则 2023: 减缴 "按照规定", no rate
    "l074": ["元", "每日"],  # 知识产权海关保护条例: 仓储、保管费 paid by the right holder, no rate
}


def test_whole_document_support_is_the_metric_s_rule():
    """The fast check above applies eval.metrics.supports to whole documents by windows: the same verdicts."""
    from eval.metrics import supports

    evidence = "应当自收到商标异议材料副本之日起30日内答辩"
    for passage in ("被异议人应当自收到商标异议材料副本之日起30日内答辩。",  # contains it
                    "应当自收到商标异议材料副本之日起",  # 16 of 22 characters in common
                    "自收到商标异议材料",  # 9 of 22
                    "与此无关的一段话"):
        assert _shares_support(squeeze(passage), evidence) == supports(passage, evidence), passage
