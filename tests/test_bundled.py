"""The bundled knowledge base as `make run` serves it: the letter, the 17 policies and the national law
library (data/corpus, 109 documents), answered for its home place (ipkb.toml: 宁波) first."""
from __future__ import annotations

import pytest
from tests_support import BUNDLED_CORPUS, REPO_CONFIG

from kb.core.errors import SettingsError
from kb.core.settings import load_settings

pytestmark = pytest.mark.slow

LETTER = "nbamr-2019-25-reply-to-proposal-130.txt"
BEIJING = "beijing-patent-regulation-2013.md"


@pytest.fixture(scope="module")
def bundled(bundled_settings):
    from kb.answer.answerer import Answerer

    answerer = Answerer.open(bundled_settings)
    yield answerer
    answerer.close()


def test_the_bundled_corpus_holds_the_law_library(bundled):
    docs = bundled.generation.catalogue.documents
    library = sorted(p.name for p in (BUNDLED_CORPUS / "library").iterdir())
    assert len(library) == 91
    assert {d.file_name for d in docs.values()} >= set(library)
    assert len(docs) == 18 + 91


def test_the_demo_deployment_is_at_home_in_ningbo():
    assert load_settings(env={}, config_file=REPO_CONFIG).answer.home_region == "浙江省宁波市"


@pytest.mark.parametrize("question", ["专利质押贷款出了坏账谁兜底？", "拿专利去银行贷款出了坏账谁兜底"])
def test_bad_debts_of_patent_loans_are_answered_from_ningbos_risk_pool(bundled, question):
    """The app's first example question: the reply letter's 风险池基金 passage, not 北京's 第四十二条 or the
    实施细则's fee payments by bank transfer."""
    answer = bundled.answer(question)
    assert not answer.refused, answer.flags
    assert answer.citations[0].source == LETTER and "风险池" in answer.citations[0].text, answer.body
    assert "风险池" in answer.body


def test_without_a_home_place_the_bad_debt_question_reaches_other_places(bundled):
    """The home place is what decides: without it, the same question is not scoped to 宁波."""
    from kb.answer.answerer import Answerer

    homeless = Answerer(bundled.generation, bundled.settings.replace(home_region=""), bundled.prompts,
                        tuning=bundled.tuning)
    assert homeless.asker_region("") == ("", False)
    assert bundled.asker_region("") == ("浙江省宁波市", True)
    assert bundled.asker_region("北京市") == ("北京市", False)


def test_a_place_the_question_names_wins_over_the_home_place(bundled):
    answer = bundled.answer("北京的专利权人有哪些促进措施？")
    assert not answer.refused
    assert BEIJING in {c.source for c in answer.citations}


def test_a_question_only_another_places_documents_answer_falls_back_to_them(bundled):
    """Home first, not home only: 中关村 (no place of the division table) is in no document of 宁波, 浙江 or
    the nation; 北京's regulations on 中关村 answer (the 中关村 regulation, or the 2024 北京国际科技创新中心建设条例's
    article on 中关村's 先行先试, which the answer quotes since it weighs the passage's retrieval score)."""
    answer = bundled.answer("中关村示范区的企业可以享受哪些先行先试政策？")
    assert not answer.refused, answer.flags
    assert answer.citations[0].profile.region == ("北京市",), [c.source for c in answer.citations]
    assert {c.profile.region for c in answer.citations} == {("北京市",)}, [c.source for c in answer.citations]
    assert "中关村" in answer.body and "先行先试" in answer.body, answer.body


def test_the_home_place_is_no_notice_and_no_refusal(bundled):
    answer = bundled.answer("发明专利被侵权有保险吗？")
    assert not any("宁波" in n for n in answer.notices), answer.notices
    assert not answer.refused


def test_an_unknown_home_place_stops_start_up(bundled):
    from kb.answer.answerer import Answerer

    with pytest.raises(SettingsError, match="home_region"):
        Answerer(bundled.generation, bundled.settings.replace(home_region="不存在市"), bundled.prompts)


@pytest.mark.parametrize("question, stated", [("这份答复是哪个单位发出来的？", "宁波市市场监督管理局"),
                                              ("这封答复落款是哪一天？", "2019年")])
def test_a_fact_of_the_document_itself_lists_the_passage_that_states_it_first(bundled, question, stated):
    """Answered from the letter's metadata: the passage the answer cites, which states the fact, leads the
    passages (the search restricted to the letter ranked its header third or ninth)."""
    answer = bundled.answer(question)
    assert not answer.refused and stated in answer.body, answer.flags
    assert answer.passages[0].chunk_id == answer.citations[0].chunk_id
    assert [p.rank for p in answer.passages] == list(range(1, len(answer.passages) + 1))
