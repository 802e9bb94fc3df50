"""The answer path's stages (kb/answer/stages.py), each alone on a hand-built Turn: a hand-made
catalogue, a recording fake search, fake strategies. No e5, no knowledge base on disk."""
from __future__ import annotations

from dataclasses import replace

import pytest
from tests_support import passage

from kb.answer.compose import Draft, refusal
from kb.answer.intent import analyse
from kb.answer.llm import FirstToken
from kb.answer.scope import NOTICE_NATIONAL_ONLY, NOTICE_NO_PLACE, NOTICE_OTHER_YEAR, Scope
from kb.answer.stages import (
    NOTICE_LLM_FAILED,
    NOTICE_LLM_NOT_USED,
    ChooseStage,
    ComposeStage,
    CondenseStage,
    DraftStage,
    RetrieveStage,
    ScopeStage,
    Turn,
)
from kb.answer.tuning import Tuning
from kb.core.errors import LlmError
from kb.core.places import Places
from kb.core.profile import DocumentProfile
from kb.core.records import Chunk, Document, DocumentMeta
from kb.search.filters import Filters
from kb.store.catalogue import Catalogue

REFUSAL_TEXT = "知识库中没有找到能回答这个问题的内容。"
LETTER = "关于市政协十六届三次会议第130号提案的答复"
RISK_POOL = "我市设立了知识产权质押融资风险池基金，对贷款损失给予补偿。"


def _doc(doc_id: str, title: str, region: tuple[str, ...], level: str = "地方性法规", date: str | None = None,
         status: str = "现行有效", doc_number: str | None = None) -> Document:
    return Document(doc_id=doc_id, source_path=f"/c/{doc_id}", file_name=f"{doc_id}.md", kind="md", content_hash="h",
                    meta=DocumentMeta(title=title, date=date, doc_number=doc_number), text=title, page_count=1,
                    profile=DocumentProfile(level=level, region=region, status=status))


DOCS = [
    _doc("law", "中华人民共和国专利法", ("全国",), level="法律"),
    _doc("nb", "宁波市专利管理条例", ("浙江省", "宁波市")),
    _doc("letter", LETTER, ("浙江省", "宁波市"), level="答复", date="2019-07-22", doc_number="甬市监函〔2019〕25号"),
]
LETTER_TEXT = "宁波市市场监督管理局 甬市监函〔2019〕25号 关于市政协十六届三次会议第130号提案的答复"
CHUNKS = [Chunk(chunk_id="letter-0001", doc_id="letter", ordinal=0, heading_path=[], pages=[1], start=0,
                end=len(LETTER_TEXT), text=LETTER_TEXT, search_text=LETTER_TEXT, sentences=[(0, len(LETTER_TEXT))])]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue(DOCS, CHUNKS)


@pytest.fixture(scope="module")
def places() -> Places:
    return Places()


class FakeSearch:
    """Records each search; answers from a table (text -> passages), else the default passages."""

    def __init__(self, passages=(), table=None):
        self.calls: list[tuple[str, Filters | None]] = []
        self.passages, self.table = list(passages), table or {}

    def __call__(self, text, filters):
        self.calls.append((text, filters))
        return list(self.table.get(text, self.passages))


class FakeCondenser:
    """An LlmStrategy's condense side: a fixed rewrite, or an LlmError."""

    def __init__(self, rewrite: str = "", error: LlmError | None = None, keeps: bool = True):
        self.rewrite, self.error, self.keeps = rewrite, error, keeps

    def condense(self, question, history):
        if self.error:
            raise self.error
        return self.rewrite

    def keeps_terms(self, question, condensed):
        return self.keeps


class FakeExtractive:
    """The ExtractiveAnswerer's `answer`: records what it was given, answers with a fixed draft."""

    def __init__(self, draft: Draft):
        self.draft, self.calls = draft, []

    def answer(self, question, intent, passages, context="", check_places=True):
        self.calls.append({"question": question, "passages": passages, "context": context})
        return replace(self.draft, flags=list(self.draft.flags))


class FakeLlm:
    """An LlmStrategy's `events`: the reply's pieces, a FirstToken first; an LlmError after `fail_after`."""

    def __init__(self, pieces=(), draft: Draft | None = None, fail_after: int | None = None):
        self.pieces, self.draft, self.fail_after = list(pieces), draft, fail_after
        self.asked: list[tuple[str, list]] = []
        self.closed = False

    def events(self, question, passages):
        self.asked.append((question, passages))
        try:
            yield FirstToken(12.5)
            for i, piece in enumerate(self.pieces):
                if self.fail_after is not None and i >= self.fail_after:
                    raise LlmError("超时")
                yield piece
            return self.draft
        finally:
            self.closed = True


def _answered(text: str, *passages) -> Draft:
    return Draft(text, [(p, [0], [(0, len(p.text))]) for p in passages])


# --- condense


@pytest.fixture()
def condense(tokenizer, places):
    def make(llm=None):
        return CondenseStage(tokenizer, places, title_words={"专利", "质押"}, tuning=Tuning(), llm=llm)
    return make


HISTORY = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"},
           {"role": "assistant", "content": "风险池基金给予补偿。"}]


def test_condense_leaves_a_first_question_as_it_is(condense):
    turn = condense().run(Turn("专利质押贷款出了坏账谁兜底？"))
    assert turn.standalone == turn.carried == "专利质押贷款出了坏账谁兜底？"
    assert turn.notices == () and turn.flags == ()


def test_condense_carries_the_previous_question_along_for_a_follow_up(condense):
    turn = condense().run(Turn("那保险呢？", HISTORY))
    assert turn.standalone == turn.carried == "专利质押贷款出了坏账谁兜底？ 那保险呢？"


def test_condense_keeps_a_question_with_a_topic_of_its_own(condense):
    question = "宁波市专利管理条例什么时候施行？"
    assert condense().run(Turn(question, HISTORY)).standalone == question


def test_condense_uses_the_llm_rewrite_that_keeps_the_follow_ups_terms(condense):
    turn = condense(FakeCondenser("专利质押贷款有保险吗？")).run(Turn("那保险呢？", HISTORY))
    assert turn.standalone == "专利质押贷款有保险吗？"
    assert turn.carried == "专利质押贷款出了坏账谁兜底？ 那保险呢？"  # what the extractive answer reads


def test_condense_flags_and_drops_a_rewrite_that_lost_the_follow_ups_terms(condense):
    turn = condense(FakeCondenser("坏账由谁承担？", keeps=False)).run(Turn("那保险呢？", HISTORY))
    assert turn.standalone == turn.carried == "专利质押贷款出了坏账谁兜底？ 那保险呢？"
    assert turn.flags == ("condensed question dropped the follow-up's terms, not used: 坏账由谁承担？",)


def test_condense_failure_is_one_notice_and_the_carried_question(condense):
    stage = condense(FakeCondenser(error=LlmError("超时")))
    turn = stage.run(Turn("那保险呢？", HISTORY))
    assert turn.standalone == "专利质押贷款出了坏账谁兜底？ 那保险呢？"
    assert turn.notices == (NOTICE_LLM_FAILED.format(reason="超时"),)
    assert stage.run(replace(turn, standalone="")).notices == turn.notices  # never twice


# --- scope


def test_scope_selects_the_documents_of_the_place_the_question_names(catalogue, places):
    search = FakeSearch()
    turn = ScopeStage(catalogue, places, search, Tuning()).run(
        Turn("宁波的企业专利质押有补贴吗？", standalone="宁波的企业专利质押有补贴吗？"))
    assert turn.scope.filters.region == ("浙江省", "宁波市") and not turn.scope.refusal
    assert search.calls == []  # a first question: no conversation to look up


def test_scope_says_when_only_national_documents_apply(catalogue, places):
    turn = ScopeStage(catalogue, places, FakeSearch(), Tuning()).run(
        Turn("北京的企业有补贴吗？", standalone="北京的企业有补贴吗？", notices=("earlier",)))
    assert not turn.scope.refusal and turn.scope.filters.region == ("北京市",)
    assert turn.notices == ("earlier", NOTICE_NATIONAL_ONLY.format(place="北京市"))


def test_scope_refuses_a_place_no_document_applies_to_and_says_so(places):
    local = Catalogue([d for d in DOCS if d.doc_id != "law"], [])
    turn = ScopeStage(local, places, FakeSearch(), Tuning()).run(
        Turn("北京的企业有补贴吗？", standalone="北京的企业有补贴吗？", notices=("earlier",)))
    assert turn.scope.refusal == "no document applies to 北京市"
    assert turn.notices == ("earlier", NOTICE_NO_PLACE.format(place="北京市"))


def test_scope_keeps_a_follow_up_with_the_documents_of_the_previous_question(catalogue, places):
    found = [passage(1, RISK_POOL, doc_id="letter"), passage(2, "专利法条文", doc_id="law")]
    search = FakeSearch(found)
    history = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"}]
    turn = ScopeStage(catalogue, places, search, Tuning()).run(
        Turn("要交什么材料？", history, standalone="专利质押贷款出了坏账谁兜底？ 要交什么材料？"))
    assert [text for text, _ in search.calls] == ["专利质押贷款出了坏账谁兜底？"]
    assert set(turn.scope.filters.files) <= {"letter", "law"} and "letter" in turn.scope.filters.files


def test_scope_off_passes_the_filters_as_given(catalogue, places):
    filters = Filters(doc_types=("答复",))
    turn = ScopeStage(catalogue, places, FakeSearch(), Tuning(), aware=False).run(
        Turn("北京的企业有补贴吗？", filters=filters, standalone="北京的企业有补贴吗？"))
    assert turn.scope == Scope(filters) and turn.notices == ()


# --- retrieve


def test_retrieve_searches_the_standalone_question_in_its_scope(catalogue):
    scoped = Filters(files=("letter",))
    search = FakeSearch([passage(1, RISK_POOL, doc_id="letter")])
    turn = RetrieveStage(catalogue, search).run(Turn("谁兜底？", standalone="谁兜底？", carried="谁兜底？",
                                                     scope=Scope(scoped)))
    assert search.calls == [("谁兜底？", scoped)]
    assert [p.text for p in turn.passages] == [RISK_POOL] and turn.own is None and not turn.other_year


def test_retrieve_for_a_place_refused_searches_everywhere(catalogue):
    given, scoped = Filters(doc_types=("答复",)), Filters(region=("北京市",))
    search = FakeSearch([passage(1, RISK_POOL, doc_id="letter")])
    turn = RetrieveStage(catalogue, search).run(Turn("北京呢", filters=given, standalone="北京呢", carried="北京的",
                                                     scope=Scope(scoped, refusal="no document applies")))
    assert search.calls == [("北京呢", given)]  # the closest passages of anywhere, and no second search
    assert turn.own is None


def test_retrieve_searches_the_carried_question_apart_for_the_extractive_draft(catalogue):
    search = FakeSearch(table={"condensed": [passage(1, "甲", doc_id="law")],
                               "carried": [passage(1, RISK_POOL, doc_id="letter")]})
    turn = RetrieveStage(catalogue, search).run(Turn("q", standalone="condensed", carried="carried"))
    assert [text for text, _ in search.calls] == ["condensed", "carried"]
    assert [p.doc_id for p in turn.passages] == ["law"] and [p.doc_id for p in turn.own] == ["letter"]


def test_retrieve_ranks_the_askers_places_own_documents_first(catalogue):
    """Asked from 宁波 (the asker's region, not the home place), 宁波's rule comes before the national one on the
    same matter when their scores are close (tests/test_scope.py has the boosts); with no place, the search's order."""
    national = replace(passage(1, "全国的规定", score=1.0, doc_id="law"), profile=DocumentProfile(region=("全国",)))
    city = replace(passage(2, "宁波的规定", score=0.9, doc_id="nb"), profile=DocumentProfile(region=("浙江省", "宁波市")))
    ningbo = ("浙江省", "宁波市")
    asked = Turn("q", region="宁波市", standalone="q", carried="q", scope=Scope(Filters(region=ningbo), ningbo))
    assert [p.doc_id for p in RetrieveStage(catalogue, FakeSearch([national, city])).run(asked).passages] == ["nb", "law"]
    anywhere = Turn("q", standalone="q", carried="q", scope=Scope(None))
    assert [p.doc_id for p in RetrieveStage(catalogue, FakeSearch([national, city])).run(anywhere).passages] == ["law", "nb"]


def test_retrieve_runs_no_search_for_given_passages(catalogue):
    search = FakeSearch()
    given = [passage(1, RISK_POOL, doc_id="letter")]
    turn = RetrieveStage(catalogue, search).run(Turn("q", given=given, standalone="condensed", carried="carried"))
    assert search.calls == [] and turn.passages == given and turn.own is None


def test_retrieve_drops_dated_documents_of_another_year_and_says_so(catalogue):
    search = FakeSearch([passage(1, RISK_POOL, doc_id="letter")])  # the 2019 letter, which never names 2021
    turn = RetrieveStage(catalogue, search).run(Turn("2021年贴息多少？", standalone="2021年贴息多少？",
                                                     carried="2021年贴息多少？"))
    assert turn.passages == [] and turn.other_year == "2021"
    assert turn.notices == (NOTICE_OTHER_YEAR.format(year="2021"),)
    assert turn.refusal == "no document covers 2021"
    laws = RetrieveStage(catalogue, FakeSearch([passage(1, "第一条", doc_id="law")])).run(
        Turn("2021年贴息多少？", standalone="2021年贴息多少？", carried="2021年贴息多少？"))
    assert len(laws.passages) == 1 and not laws.other_year  # a law applies in any year


# --- draft


def _draft_stage(catalogue, extractive, llm=None) -> DraftStage:
    return DraftStage(extractive, catalogue, answer_passages=5, llm=llm)


def _drain(gen):
    pieces = []
    while True:
        try:
            pieces.append(next(gen))
        except StopIteration as done:
            return pieces, done.value


def test_draft_of_a_scope_refusal_is_that_refusal_and_asks_nobody(catalogue):
    extractive, llm = FakeExtractive(_answered("x")), FakeLlm()
    stage = _draft_stage(catalogue, extractive, llm)
    pieces, turn = _drain(stage.run(Turn("北京呢", scope=Scope(None, refusal="no document applies to 北京市"))))
    assert pieces == [] and turn.extractive.refused and turn.extractive.reason == "no document applies to 北京市"
    assert extractive.calls == [] and llm.asked == [] and turn.llm is None


def test_draft_answers_what_the_document_states_from_its_metadata(catalogue):
    p = passage(1, LETTER_TEXT, doc_id="letter")
    extractive = FakeExtractive(_answered("x"))
    _, turn = _drain(_draft_stage(catalogue, extractive, FakeLlm()).run(
        Turn("这份答复的文号是多少？", standalone="这份答复的文号是多少？", passages=[p])))
    assert turn.extractive.text == f"《{LETTER}》的发文字号：甬市监函〔2019〕25号。[1]"
    assert extractive.calls == [] and turn.llm is None


def test_draft_extractive_reads_the_carried_question_and_its_passages(catalogue):
    mine, own = [passage(1, "甲", doc_id="law")], [passage(1, RISK_POOL, doc_id="letter")]
    extractive = FakeExtractive(_answered(RISK_POOL + "[1]", own[0]))
    _, turn = _drain(_draft_stage(catalogue, extractive).run(
        Turn("那保险呢？", standalone="condensed", carried="previous 那保险呢？", passages=mine, own=own)))
    assert extractive.calls == [{"question": "那保险呢？", "passages": own, "context": "previous 那保险呢？"}]
    assert turn.extractive.text == RISK_POOL + "[1]" and turn.llm is None
    assert turn.intent == analyse("那保险呢？")


def test_draft_streams_the_llms_sentences_and_keeps_both_drafts(catalogue):
    passages = [passage(i, f"第{i}段", doc_id="letter") for i in range(1, 8)]
    llm_draft = _answered("甲。[1]乙。[2]", passages[0], passages[1])
    llm = FakeLlm(["甲。[1]", "乙。[2]"], llm_draft)
    pieces, turn = _drain(_draft_stage(catalogue, FakeExtractive(_answered("丙")), llm).run(
        Turn("q", standalone="standalone q", carried="q", passages=passages)))
    assert pieces == ["甲。[1]", "乙。[2]"] and turn.llm == llm_draft and turn.extractive.text == "丙"
    assert llm.asked == [("standalone q", passages[:5])]  # the standalone question, answer_passages of them
    assert turn.timings["llm_first_token"] == 12.5 and turn.timings["llm"] >= 0


def test_draft_without_passages_does_not_ask_the_llm(catalogue):
    llm = FakeLlm(["甲"], _answered("甲"))
    _, turn = _drain(_draft_stage(catalogue, FakeExtractive(refusal("nothing")), llm).run(
        Turn("q", standalone="q", carried="q", passages=[])))
    assert llm.asked == [] and turn.llm is None and turn.extractive.refused


def test_draft_llm_failure_is_a_notice_and_no_llm_draft(catalogue):
    llm = FakeLlm(["甲。[1]", "乙。[2]"], fail_after=1)
    pieces, turn = _drain(_draft_stage(catalogue, FakeExtractive(_answered("丙")), llm).run(
        Turn("q", standalone="q", carried="q", passages=[passage(1, "甲", doc_id="letter")])))
    assert pieces == ["甲。[1]"] and turn.llm is None and turn.extractive.text == "丙"
    assert turn.notices == (NOTICE_LLM_FAILED.format(reason="超时"),)
    assert "llm" in turn.timings and llm.closed


def test_draft_closes_the_llms_stream_when_the_reader_leaves(catalogue):
    llm = FakeLlm(["甲。[1]", "乙。[2]"], _answered("甲"))
    stream = _draft_stage(catalogue, FakeExtractive(_answered("丙")), llm).run(
        Turn("q", standalone="q", carried="q", passages=[passage(1, "甲", doc_id="letter")]))
    assert next(stream) == "甲。[1]"
    stream.close()
    assert llm.closed


# --- choose


def _choose(coverage=lambda question, text: 1.0, **tuning) -> ChooseStage:
    return ChooseStage(coverage, Tuning(**tuning))


def _both(llm: Draft, extractive: Draft, question: str = "专利质押贷款有补贴吗？", **fields) -> Turn:
    return Turn(question, standalone=question, intent=analyse(question), llm=llm, extractive=extractive, **fields)


def test_choose_without_an_llm_keeps_the_extractive_draft_and_its_passages():
    own, theirs = [passage(1, RISK_POOL, doc_id="letter")], [passage(1, "甲", doc_id="law")]
    extractive = _answered(RISK_POOL + "[1]", own[0])
    turn = _choose().run(Turn("q", extractive=extractive, passages=theirs, own=own))
    assert turn.draft is extractive and turn.by == "extractive" and turn.passages == own and turn.notices == ()


def test_choose_keeps_an_llm_answer_as_good_as_the_extractive_one():
    p = passage(1, RISK_POOL, doc_id="letter")
    llm = replace(_answered("风险池基金给予补偿。[1]", p), supported=1)
    turn = _choose().run(_both(llm, _answered(RISK_POOL + "[1]", p), passages=[p], own=[passage(1, "乙")]))
    assert turn.draft is llm and turn.by == "llm" and turn.notices == () and turn.passages == [p]


@pytest.mark.parametrize("llm, why", [
    (replace(refusal("withheld"), withheld=True, dropped=2), "未能通过引文核对"),
    (refusal("the LLM found no answer"), "是未找到答案，但知识库原文中有相关内容"),
    (replace(_answered("甲。[1]"), supported=1, dropped=2), "有多句没有原文依据"),
])
def test_choose_falls_back_to_the_extractive_draft_with_a_notice(llm, why):
    extractive = _answered(RISK_POOL + "[1]", passage(1, RISK_POOL))
    before = list(extractive.flags)
    turn = _choose().run(_both(llm, extractive, notices=("earlier",)))
    assert turn.by == "extractive" and turn.draft.text == extractive.text
    assert turn.notices == ("earlier", NOTICE_LLM_NOT_USED.format(why=why))
    assert turn.draft.flags[0].startswith(f"LLM answer not used ({why}): ")
    assert extractive.flags == before  # the stage returns new drafts, it does not fill the old


def test_choose_falls_back_when_the_llm_misses_the_asked_for_fact():
    question = "专利质押贷款贴息比例是多少？"
    turn = _choose().run(_both(replace(_answered("给予贴息。[1]"), supported=1),
                               _answered("按贷款利息的50%给予贴息。[1]"), question))
    assert turn.by == "extractive" and turn.notices == (NOTICE_LLM_NOT_USED.format(why="缺少问题所问的具体内容"),)


def test_choose_falls_back_when_the_llm_covers_less_of_the_question():
    coverage = {"甲。": 0.2, "甲乙丙。": 0.9}
    turn = _choose(lambda question, text: coverage[text]).run(
        _both(replace(_answered("甲。[1]"), supported=1), _answered("甲乙丙。[1]")))
    assert turn.by == "extractive" and turn.notices == (NOTICE_LLM_NOT_USED.format(why="不如原文摘录完整"),)
    close = _choose(lambda question, text: coverage[text], llm_coverage_margin=0.8).run(
        _both(replace(_answered("甲。[1]"), supported=1), _answered("甲乙丙。[1]")))
    assert close.by == "llm"


def test_choose_when_both_refuse_keeps_the_llms_refusal_without_a_notice():
    turn = _choose().run(_both(refusal("the LLM found no answer"), refusal("no passage matches the question")))
    assert turn.by == "llm" and turn.draft.refused and turn.notices == ()
    assert turn.draft.flags == ["extractive answerer refused too: no passage matches the question"]


def test_choose_keeps_the_extractive_refusal_when_the_llm_lacks_the_asked_for_fact():
    question = "专利质押贷款贴息比例是多少？"
    turn = _choose().run(_both(replace(_answered("给予贴息。[1]"), supported=1), refusal("no figure"), question))
    assert turn.by == "extractive" and turn.draft.refused and turn.notices == ()
    assert turn.draft.flags[0].startswith("LLM answer lacks the asked-for ratio")
    answered = _choose().run(_both(replace(_answered("贴息比例为50%。[1]"), supported=1), refusal("no figure"), question))
    assert answered.by == "llm"


# --- compose


@pytest.fixture()
def compose_stage(tokenizer, places):
    return ComposeStage(tokenizer, places, REFUSAL_TEXT, answer_passages=5)


def test_compose_makes_the_answer_with_notices_and_flags(compose_stage):
    p = passage(1, RISK_POOL, doc_id="letter")
    turn = compose_stage.run(Turn("谁兜底？", standalone="专利质押贷款谁兜底？", passages=[p], by="llm",
                                  draft=_answered(RISK_POOL + "[1]", p), notices=("n1",), flags=("f1",)))
    answer = turn.answer
    assert answer.body == RISK_POOL + "[1]" and not answer.refused and answer.answerer == "llm"
    assert answer.standalone_question == "专利质押贷款谁兜底？" and answer.notices == ["n1"] and answer.flags == ["f1"]
    assert [c.n for c in answer.citations] == [1] and answer.sources[0].startswith("[1] 《关于印发若干措施的通知》")


def test_compose_names_the_subject_no_passage_mentions(compose_stage):
    p = passage(1, RISK_POOL, doc_id="letter")
    draft = _answered(RISK_POOL + "[1]", p)
    answer = compose_stage.run(Turn("商标质押可以吗？", passages=[p], draft=draft)).answer
    assert answer.body == "文件中未提及“商标质押”；相关规定如下：" + RISK_POOL + "[1]"
    assert draft.text == RISK_POOL + "[1]"


def test_compose_of_a_refusal_shows_the_refusal_text_and_the_closest_passages(compose_stage):
    p = passage(1, RISK_POOL, doc_id="letter")
    answer = compose_stage.run(Turn("商标质押可以吗？", passages=[p], draft=refusal("no passage"))).answer
    assert answer.refused and answer.body == REFUSAL_TEXT and answer.passages == [p]
    assert answer.flags == ["refused: no passage"]


def test_compose_adds_a_notice_for_a_cited_document_no_longer_in_force(tokenizer, places):
    p = replace(passage(1, RISK_POOL, title="扶持办法"), profile=DocumentProfile(status="已过期", effective_until="2021-12-31"))
    turn = Turn("谁兜底？", passages=[p], draft=_answered(RISK_POOL + "[1]", p))
    notices = ComposeStage(tokenizer, places, REFUSAL_TEXT, 5).run(turn).answer.notices
    assert notices == ["《扶持办法》有效期至2021年12月31日，可能已失效，请以最新文件为准。"]
    assert ComposeStage(tokenizer, places, REFUSAL_TEXT, 5, aware=False).run(turn).answer.notices == []
