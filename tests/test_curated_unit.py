"""Curated answers (kb/curated) without models: flags per reason, import checks, the exchange formats."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from kb.core.errors import KbError
from kb.curated.exchange import read_entries, write_entries
from kb.curated.records import (
    FLAG_CHANGED,
    FLAG_DELETED,
    FLAG_EXPIRED,
    FLAG_REVIEW_DUE,
    FLAG_SUPERSEDED,
    CuratedEntry,
    CuratedSource,
    DocumentFacts,
    squeeze,
)
from kb.curated.sources import entry_flags
from kb.curated.store import CuratedStore

LETTER = "nbamr-2019-25-reply-to-proposal-130.txt"
QUOTE = "制订出台了《宁波市知识产权质押融资风险池基金管理办法（暂行）》"
TEXT = "二是推动知识产权运用工作。制订出台了《宁波市知识产权质押融资风险池\n基金管理办法（暂行）》，目前已有2家企业。"


def docs(status: str = "未知", text: str = TEXT, file: str = LETTER) -> dict[str, DocumentFacts]:
    return {file: DocumentFacts(file, squeeze(text), status, "关于第130号提案的答复")}


def entry(**changes) -> CuratedEntry:
    base = CuratedEntry(question="宁波有知识产权质押融资风险池吗？", variants=("风险池基金是什么",),
                        answer="有，见《宁波市知识产权质押融资风险池基金管理办法（暂行）》。",
                        sources=(CuratedSource.make(LETTER, QUOTE),), approved_by="张三", approved_at="2026-12-01")
    return replace(base, **changes)


def test_a_quote_found_across_a_line_break_holds():
    assert entry_flags(entry(), docs(), "2026-12-06") == ()


def test_flag_changed_when_the_quoted_text_is_gone():
    assert entry_flags(entry(), docs(text=TEXT.replace("风险池", "风险补偿")), "2026-12-06") == (FLAG_CHANGED,)


def test_flag_deleted_when_the_document_is_gone():
    assert entry_flags(entry(), docs(file="other.txt"), "2026-12-06") == (FLAG_DELETED,)


def test_flag_expired():
    assert entry_flags(entry(), docs(status="已过期"), "2026-12-06") == (FLAG_EXPIRED,)


@pytest.mark.parametrize("status", ["已被取代", "已废止"])
def test_flag_superseded(status):
    assert entry_flags(entry(), docs(status=status), "2026-12-06") == (FLAG_SUPERSEDED,)


@pytest.mark.parametrize("status", ["现行有效", "未知", "尚未施行"])
def test_statuses_that_do_not_stale_an_entry(status):
    assert entry_flags(entry(), docs(status=status), "2026-12-06") == ()


def test_review_date_reached():
    assert entry_flags(entry(review_date="2026-12-06"), docs(), "2026-12-06") == (FLAG_REVIEW_DUE,)
    assert entry_flags(entry(review_date="2026-12-07"), docs(), "2026-12-06") == ()


def test_import_refuses_a_quote_not_in_the_document_with_its_line(tmp_path):
    good = entry().to_json()
    bad = {**good, "sources": [{"file": LETTER, "quote": "本市设立了专利保险补贴"}]}
    missing = {**good, "sources": [{"file": "nowhere.txt", "quote": QUOTE}]}
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in (good, bad, missing)) + "\n", encoding="utf-8")
    with pytest.raises(KbError) as caught:
        read_entries(path, docs(), "2026-12-06")
    message = str(caught.value)
    assert "line 2: quote not found" in message and "line 3: no document named nowhere.txt" in message
    assert "line 1" not in message


def test_import_needs_a_source_and_an_approver(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"question": "问", "answer": "答", "sources": []}) + "\n", encoding="utf-8")
    with pytest.raises(KbError, match="line 1: missing approved_by, sources"):
        read_entries(path, docs(), "2026-12-06")


@pytest.mark.parametrize("suffix", [".jsonl", ".xlsx"])
def test_export_import_round_trips_exactly(tmp_path, suffix):
    store = CuratedStore(tmp_path / "a.sqlite")
    store.add_many([entry(), entry(question="风险池有多少家企业用过？", variants=(), review_date="2027-06-30",
                                   answer="目前已有2家企业。\n（第二行）",
                                   sources=(CuratedSource.make(LETTER, QUOTE), CuratedSource.make(LETTER, "目前已有2家企业")))])
    first = tmp_path / f"first{suffix}"
    write_entries(store.entries(), first)
    again = CuratedStore(tmp_path / "b.sqlite")
    again.add_many(read_entries(first, docs(), "2026-12-06"))
    second = tmp_path / f"second{suffix}"
    write_entries(again.entries(), second)
    assert [e.to_json() for e in again.entries()] == [e.to_json() for e in store.entries()]
    if suffix == ".jsonl":
        assert first.read_bytes() == second.read_bytes()
    else:
        from openpyxl import load_workbook

        rows = [list(load_workbook(p).active.values) for p in (first, second)]
        assert rows[0] == rows[1] and len(rows[0]) == 3


def test_store_keeps_hits_and_deletes(tmp_path):
    store = CuratedStore(tmp_path / "c.sqlite")
    assert store.entries() == [] and not (tmp_path / "c.sqlite").exists()  # reading creates nothing
    eid = store.add(entry())
    store.count_hit(eid, [LETTER, LETTER])
    store.count_hit(None, [LETTER])
    assert store.get(eid).hits == 1 and store.document_hits() == {LETTER: 2}
    assert store.delete(eid) and store.entries() == []


def test_gap_log_keeps_questions_for_the_retention_period(tmp_path):
    import datetime as dt

    from kb.curated.gaps import GapLog

    log = GapLog(tmp_path / "gaps.sqlite")
    now = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    log.record("旧问题", "refused", when=now - dt.timedelta(days=181))
    log.record("新问题", "voted_down", when=now - dt.timedelta(days=179))
    assert log.purge(180, now) == 1
    assert [(q.question, q.reason) for q in log.questions()] == [("新问题", "voted_down")]
