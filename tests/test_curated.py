"""Curated answers (标准口径) on real knowledge bases and e5: `python -m kb curated import`, then `kb ask`
of a paraphrase is answered with the entry; re-ingesting the letter with the quoted sentence changed flags
it and it is no longer served. And the matcher on its test set: no wrong entry is served."""
from __future__ import annotations

import json
import shutil

import pytest

from tests_support import BUNDLED_CORPUS, REPLY_LETTER

pytestmark = pytest.mark.slow

LETTER = REPLY_LETTER.name
SENTENCE = "制订出台了《宁波市知识产权质押融资风险池基金管理办法（暂行）》，目前已有2家企业通过专利质押获得了银行贷款。"
ENTRY = {"question": "宁波对知识产权质押融资有什么风险补偿政策？", "variants": ["知识产权质押融资风险池基金是什么？"],
         "answer": "我市已制订出台《宁波市知识产权质押融资风险池基金管理办法（暂行）》，通过风险池基金支持企业以专利质押获得银行贷款。",
         "sources": [{"file": LETTER, "quote": SENTENCE}], "approved_by": "知识产权处"}
PARAPHRASE = "宁波有知识产权质押融资风险补偿吗"


def _cli(capsys, *argv: str) -> str:
    from kb.__main__ import main

    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_import_then_ask_a_paraphrase_then_change_the_source(letter_settings, copy_kb, tmp_path, capsys, monkeypatch):
    from ingest.build import build
    from ingest.pipeline import source_key

    settings = copy_kb(letter_settings)
    kb = str(settings.store.kb_dir)
    monkeypatch.setenv("IPKB_EMBED_CACHE", str(settings.embed_cache_path))
    entries = tmp_path / "curated.jsonl"
    entries.write_text(json.dumps(ENTRY, ensure_ascii=False) + "\n", encoding="utf-8")
    assert "imported 1 entries: 1" in _cli(capsys, "curated", "import", str(entries), "--kb", kb)

    answer = json.loads(_cli(capsys, "ask", PARAPHRASE, "--json", "--kb", kb))
    assert answer["curated"]["id"] == 1 and answer["curated"]["approved_by"] == "知识产权处"
    assert answer["body"].startswith("【标准口径】我市已制订出台") and not answer["refused"]
    assert "审定：知识产权处" in answer["body"] and answer["citations"]  # then the passages as usual
    other = json.loads(_cli(capsys, "ask", "宁波市知识产权学院培养什么人才？", "--json", "--kb", kb))
    assert other["curated"] is None and "标准口径" not in other["body"]

    # the letter re-ingested with the quoted sentence changed: flagged 待复核, no longer served
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / LETTER).write_text(REPLY_LETTER.read_text(encoding="utf-8").replace(
        "目前已有2家企业通过专利质押", "目前已有5家企业通过专利质押"), encoding="utf-8")
    report = build([changed], settings.replace(corpus=[changed]), progress=False,
                   exclude={source_key(p) for p in settings.ingest.corpus[0].iterdir()})  # replaced
    assert not report.failed
    answer = json.loads(_cli(capsys, "ask", PARAPHRASE, "--json", "--kb", kb))
    assert answer["curated"] is None and not answer["body"].startswith("【标准口径】")
    assert any("待复核" in n and "已变更" in n for n in answer["notices"])
    listed = json.loads(_cli(capsys, "curated", "list", "--json", "--kb", kb))
    assert listed[0]["flags"] == ["changed"]


def test_deleted_source_flags_the_entry(letter_settings, copy_kb, tmp_path, capsys):
    from ingest.build import build
    from ingest.pipeline import source_key

    settings = copy_kb(letter_settings)
    kb = str(settings.store.kb_dir)
    entries = tmp_path / "curated.jsonl"
    entries.write_text(json.dumps(ENTRY, ensure_ascii=False) + "\n", encoding="utf-8")
    _cli(capsys, "curated", "import", str(entries), "--kb", kb)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(BUNDLED_CORPUS / "policies" / "natl-trademark-law-2019.md", other)
    assert not build([other], settings.replace(corpus=[other]), progress=False,
                     exclude={source_key(p) for p in settings.ingest.corpus[0].iterdir()}).failed
    listed = json.loads(_cli(capsys, "curated", "list", "--json", "--kb", kb))
    assert listed[0]["flags"] == ["deleted"]


def test_no_wrong_entry_is_served_on_the_test_set():
    """eval/testsets/curated.jsonl: each paraphrase gets its own entry or none, no near-miss gets one (with all
    entries in the store, as the answer path matches them); the share of paraphrases matched is in docs/curated.md."""
    from eval.curated import DEFAULT_TESTSET, curve, load_testset
    from kb.answer.curated_gate import curated_gate
    from kb.core.settings import Settings
    from kb.curated.matcher import DEFAULT_THRESHOLD, CuratedMatcher
    from kb.search.generation import SearchModels

    models = SearchModels.load(Settings())
    entries, cases = load_testset(DEFAULT_TESTSET)
    matcher = CuratedMatcher(models.queries.encode, compatible=curated_gate(models.tokenizer.places))
    below, at = curve(entries, cases, matcher, [DEFAULT_THRESHOLD - 0.005, DEFAULT_THRESHOLD])
    assert at.wrong == 0
    assert at.matched >= 0.4  # the share reported in docs/curated.md (44%)
    assert below.wrong > 0  # the threshold is the calibrated one, not an arbitrary high one


def test_the_test_set_quotes_are_in_the_bundled_documents():
    from ingest.pipeline import process_file
    from kb.curated.exchange import check_quotes, entry_from_json
    from kb.curated.records import DocumentFacts, squeeze

    rows = [json.loads(line) for line in (BUNDLED_CORPUS.parent.parent / "eval" / "testsets" / "curated.jsonl")
            .read_text(encoding="utf-8").splitlines() if line.strip()]
    files = {s["file"] for r in rows for s in r["entry"]["sources"]}
    docs = {}
    for name in files:
        path = BUNDLED_CORPUS / name if (BUNDLED_CORPUS / name).exists() else BUNDLED_CORPUS / "policies" / name
        doc, _ = process_file(path, max_bytes=10**8, ocr=None)
        docs[name] = DocumentFacts(name, squeeze(doc.text), "现行有效")
    for row in rows:
        assert check_quotes(entry_from_json(row["entry"], "2026-12-06"), docs) == [], row["id"]
