"""The knowledge-gap report (kb/curated/gaps.py) with e5: a synthetic log of 200 refused questions made from 8
known needs is grouped back into exactly those 8; the export opens in openpyxl; the app logs a refused
question (and nothing about who asked) and reports it with the closest passages."""
from __future__ import annotations

import itertools
import sqlite3

import numpy as np
import pytest

from gap_groups import FRAMES, GROUPS

pytestmark = pytest.mark.slow


def synthetic_log():
    from kb.curated.gaps import GapQuestion

    log, truth = [], {}
    for g, (name, asks) in enumerate(GROUPS.items()):
        for i, (ask, frame) in enumerate(itertools.product(asks, FRAMES)):
            text = frame.format(ask)
            log.append(GapQuestion(text, "refused", f"2026-11-{1 + (i + g) % 28:02d}T09:00:00"))
            truth[text] = name
    return log, truth


def test_200_refused_questions_group_back_into_their_needs(tmp_path):
    from openpyxl import load_workbook

    from kb.core.settings import Settings
    from kb.curated.gaps import group_questions, write_gap_report
    from kb.search.generation import SearchModels

    log, truth = synthetic_log()
    assert len(log) == 200
    embedder = SearchModels.load(Settings()).embedder
    groups = group_questions(log, lambda texts: np.stack([embedder.encode_query(t) for t in texts]))
    found = sorted(sorted({truth[q.question] for q in g.questions}) for g in groups)
    assert found == sorted([name] for name in GROUPS)  # each group one need, each need one group
    assert all(g.count == 25 and len(g.examples) == 25 for g in groups)
    assert groups[0].first_seen <= groups[0].last_seen and groups[0].reasons == {"refused": 25}

    path = write_gap_report(groups, tmp_path / "gaps.xlsx")
    rows = list(load_workbook(path).active.values)
    assert len(rows) == 9 and rows[0][:3] == ("序号", "次数", "代表问题") and rows[1][1] == 25


def test_the_app_logs_refused_questions_without_who_asked(letter_settings, copy_kb):
    from web.service import KnowledgeService

    settings = copy_kb(letter_settings, admin_password="gap-pw")
    service = KnowledgeService(settings)
    try:
        refused = service.ask("杭州对专利质押贷款有没有贴息？")
        assert refused.refused
        answered = service.ask("专利质押贷款出了坏账谁兜底？")
        assert not answered.refused and answered.confidence is not None
        service.log_vote_down("宁波的风险池基金规模有多大？")
        with sqlite3.connect(settings.store.kb_dir / "gaps.sqlite") as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(questions)")]
            logged = db.execute("SELECT question, reason FROM questions").fetchall()
        assert columns == ["id", "time", "question", "reason", "score"]  # no client, no session, no answer
        assert ("杭州对专利质押贷款有没有贴息？", "refused") in logged
        assert ("宁波的风险池基金规模有多大？", "voted_down") in logged
        assert ("专利质押贷款出了坏账谁兜底？", "refused") not in logged

        groups = service.gap_report("gap-pw")
        assert sum(g.count for g in groups) == len(logged)
        assert all(g.passages for g in groups)  # the closest passages, with their sources
        draft = service.gap_draft(groups[0])
        assert draft["question"] == groups[0].representative and draft["sources"]
    finally:
        service.close()
