"""A knowledge base of many overlapping documents (the bundled corpus): answers right for the
asker's place, the documents in force, and the document the conversation is about."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests_support import REPO

from kb.core.profile import STATUS_EXPIRED, STATUS_IN_FORCE
from kb.search.filters import Filters

pytestmark = pytest.mark.slow

NANSHA_MEASURES = "nansha-2017-sci-tech-innovation-support-measures.txt"
BEIJING = "beijing-patent-regulation-2013.md"


def _sources(answer) -> set[str]:
    return {c.source for c in answer.citations}


def test_every_document_has_a_profile(policies_answerer):
    docs = {d.file_name: d.profile for d in policies_answerer.generation.catalogue.documents.values()}
    assert len(docs) == 18
    assert docs["natl-patent-law-2020.md"].level == "法律" and docs["natl-patent-law-2020.md"].region == ("全国",)
    assert docs["ningbo-patent-regulation-2012.md"].region == ("浙江省", "宁波市")
    assert docs[NANSHA_MEASURES].status == STATUS_EXPIRED and docs[NANSHA_MEASURES].effective_until == "2021-12-31"
    assert docs["zhejiang-patent-regulation-2015.md"].status == STATUS_IN_FORCE


def test_a_ningbo_question_never_cites_another_citys_regulation(policies_answerer):
    answer = policies_answerer.answer("宁波的企业专利质押贷款有什么支持？")
    assert not answer.refused
    regions = {tuple(p.profile.region) for p in answer.passages}
    assert regions <= {("全国",), ("浙江省",), ("浙江省", "宁波市")}, regions
    assert BEIJING not in {p.source for p in answer.passages}


def test_the_askers_region_selects_documents_when_the_question_names_none(policies_answerer):
    ningbo = policies_answerer.answer("专利质押贷款有什么支持？", region="宁波市")
    beijing = policies_answerer.answer("专利质押贷款有什么支持？", region="北京市")
    assert all(p.profile.region[:2] in (("全国",), ("浙江省",), ("浙江省", "宁波市")) for p in ningbo.passages)
    assert BEIJING in {p.source for p in beijing.passages}
    assert BEIJING not in {p.source for p in ningbo.passages}


def test_without_scope_awareness_the_place_is_ignored(policies_answerer):
    """The evaluation's "no scope" ablation (scope_aware = false) really switches place selection and
    validity notices off: the same question then reaches Beijing's regulation and gets no notice."""
    from kb.answer.answerer import Answerer

    settings = policies_answerer.settings.replace(scope_aware=False)
    blind = Answerer(policies_answerer.generation, settings, policies_answerer.prompts, llm=None,
                     tuning=policies_answerer.tuning)
    question = "专利质押贷款有什么支持？"
    assert BEIJING not in {p.source for p in policies_answerer.answer(question, region="宁波市").passages}
    assert BEIJING in {p.source for p in blind.answer(question, region="宁波市").passages}
    expired = blind.answer("南沙对新认定的国家高新技术企业奖励多少钱？")
    assert NANSHA_MEASURES in _sources(expired) and not any("可能已失效" in n for n in expired.notices)


def test_a_national_law_is_cited_for_any_place(policies_answerer):
    for place in ("宁波市", "北京市", "广州市南沙区"):
        answer = policies_answerer.answer("专利侵权的赔偿数额怎么确定？", region=place)
        assert "natl-patent-law-2020.md" in _sources(answer), (place, answer.answer)


def test_a_place_no_document_applies_to_is_refused_naming_it(letter_settings):
    """With only the Ningbo letter, a Hangzhou question has no document that applies."""
    from kb.answer.answerer import Answerer

    answerer = Answerer.open(letter_settings)
    answer = answerer.answer("杭州对专利质押贷款有没有贴息？")
    assert answer.refused and any("杭州市" in n for n in answer.notices)
    answerer.close()


def test_an_answer_resting_on_an_expired_document_carries_a_notice(policies_answerer):
    answer = policies_answerer.answer("南沙对新认定的国家高新技术企业奖励多少钱？")
    assert not answer.refused and NANSHA_MEASURES in _sources(answer), answer.answer
    assert any("有效期至2021年12月31日" in n and "可能已失效" in n for n in answer.notices), answer.notices
    cited = next(c for c in answer.citations if c.source == NANSHA_MEASURES)
    assert cited.to_json()["status"] == STATUS_EXPIRED


def test_only_documents_in_force(policies_answerer):
    passages = policies_answerer.retriever.search("高新技术企业奖励", k=10, filters=Filters(statuses=(STATUS_IN_FORCE,)))
    assert passages and NANSHA_MEASURES not in {p.source for p in passages}
    laws = policies_answerer.retriever.search("专利权质押", k=10, filters=Filters(levels=("法律",)))
    assert laws and {p.profile.level for p in laws} == {"法律"}


def test_a_follow_up_about_this_document_stays_with_it(policies_answerer):
    first = policies_answerer.answer("发明专利被侵权有保险吗？", region="宁波市")
    assert first.citations
    history = [{"role": "user", "content": "发明专利被侵权有保险吗？"}, {"role": "assistant", "content": first.answer}]
    follow = policies_answerer.answer("这份文件是哪个部门发的？", history=history)
    assert {p.doc_id for p in follow.passages} == {first.citations[0].doc_id}


def test_a_follow_up_that_names_no_topic_leans_on_the_previous_question(policies_answerer):
    history = [{"role": "user", "content": "南沙专利质押融资贴息申请要准备什么材料？"}]
    follow = policies_answerer.answer("材料要交几份？有没有装订要求？", history=history, region="广州市南沙区")
    assert "一式两份" in follow.answer and "装订成册" in follow.answer, follow.answer
    # (asked alone by a 南沙 asker, the learned ranker finds the same guide's 一式两份 too: only one 南沙
    # document speaks of materials, so that is no longer a question about nothing)


def test_a_procedure_is_quoted_whole_and_in_order(policies_answerer):
    answer = policies_answerer.answer("在南沙申请专利质押融资贴息，整个办理流程是怎么走的？")
    steps = ["1.企业申报", "2.部门核查", "3.审定", "4.公示与拨付奖励资金", "5.事后抽查"]
    assert [answer.body.index(s) for s in steps] == sorted(answer.body.index(s) for s in steps), answer.body
    assert all(f"\n{s}" in answer.body for s in steps[1:])  # one step per line


def test_a_short_article_is_quoted_whole(policies_answerer):
    answer = policies_answerer.answer("注册商标到期忘了续展怎么办？")
    assert "六个月的宽展期" in answer.body and "注销其注册商标" in answer.body, answer.body


# (question, what the answer must state): the figure, date or event asked for, where the documents
# state it in the sentence next to the one that matches, or in words the question does not use
ASKED_FOR_FACTS = [
    # 河南 第六条 (over article_max_chars): the deadline sentence first, the sum in the next one
    ("我们是国有企业，员工发明专利授权后奖金最少发多少、多久内发？", ["三个月内", "三千元"]),
    # the guide's cap covers the colloquial question no better than any sentence does: it still counts
    ("南沙专利质押贷款贴息，一家企业最多能补多少钱？", ["贴息金额不超过100万元"]),
    # "什么时候" is answered by the event the right arises on (民法典 第四百四十四条), not a calendar date
    ("以专利权出质的，质权什么时候设立？", ["质权自办理出质登记时设立"]),
    # the cap in the row after the one that names the award (山西 示范区 政策清单)
    ("示范区的企业拿到国内发明专利授权，一件能奖多少钱？", ["1.5万元/件"]),
]


@pytest.mark.parametrize("question, facts", ASKED_FOR_FACTS, ids=[q for q, _ in ASKED_FOR_FACTS])
def test_the_answer_quotes_the_sentence_with_the_asked_for_fact(policies_answerer, question, facts):
    answer = policies_answerer.answer(question)
    assert not answer.refused, answer.flags
    for fact in facts:
        assert fact in answer.body, answer.body


def test_a_subject_no_document_mentions_is_named(policies_answerer):
    answer = policies_answerer.answer("南沙有没有商标质押融资贴息？")
    assert answer.refused or "未提及“商标质押”" in answer.answer, answer.answer


def test_a_year_the_documents_do_not_cover_is_refused(policies_answerer):
    answer = policies_answerer.answer("南沙2020年度专利质押融资贴息什么时候受理申请？")
    assert answer.refused and any("2020年" in n for n in answer.notices), answer.answer


def test_cli_and_json_carry_the_profile_fields(policies_settings):
    out = subprocess.run([sys.executable, "-m", "kb", "search", "专利侵权赔偿", "--json", "--k", "3",
                          "--kb", str(policies_settings.store.kb_dir), "--status", "现行有效", "--region", "宁波"],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "IPKB_EMBED_CACHE": str(policies_settings.embed_cache_path)})
    assert out.returncode == 0, out.stderr
    passages = json.loads(out.stdout)["passages"]
    assert passages
    for p in passages:
        assert {"level", "region", "effective_from", "effective_until", "status"} <= set(p)
        assert p["status"] == "现行有效" and p["region"][:2] in (["全国"], ["浙江省"], ["浙江省", "宁波市"])
