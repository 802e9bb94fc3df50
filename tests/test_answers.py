"""The extractive answerer (the default) on the sample letter: facts, citations, refusals, follow-ups."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from tests_support import LITE_ONE_PROCESS, REPO

from kb.answer.answerer import Answerer
from kb.answer.tuning import Tuning

pytestmark = pytest.mark.slow  # answers with e5 over a built knowledge base and runs the CLI

REQUIRED_ANSWER_KEYS = {"question", "answer", "refused", "citations", "passages", "notices", "timings_ms"}
REQUIRED_CITATION_KEYS = {"n", "text", "title", "doc_number", "date", "pages", "section", "source", "chunk_id", "sentences"}
REQUIRED_PASSAGE_KEYS = {"rank", "score", "text", "title", "doc_number", "pages", "section", "source", "chunk_id"}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def answerer(letter_kb):
    """The sample letter, in each store."""
    answerer = Answerer.open(letter_kb)
    yield answerer
    answerer.close()


@pytest.mark.parametrize("question, facts", [
    ("专利质押贷款出了坏账谁兜底？", ["风险池基金"]),
    ("发明专利被侵权有保险吗？", ["发明专利被侵权保险"]),
    ("有几家企业通过专利质押拿到了银行贷款？", ["2家企业"]),
    ("2018年支持了多少个高价值专利组合培育项目？", ["31个"]),
    ("政府重点培育了几家运营机构，培育多久？", ["8家", "三年"]),
    ("宁波有哪些知识产权联盟？", ["模具知识产权联盟", "涉外知识产权联盟"]),
    ("知识产权运营基金打算怎么支持项目？", ["股权投资"]),
    ("哪所学校的知识产权人才项目拿过经费补助？", ["浙江万里学院"]),
])
def test_answers_state_the_fact_and_cite_passages_that_hold_it(answerer, question, facts):
    result = answerer.answer(question)
    assert not result.refused, result.flags
    body = result.answer.split("\n\n来源：")[0]
    for fact in facts:
        assert fact in body
        assert any(fact in c.text for c in result.citations), f"no citation holds {fact}"
    assert re.search(r"\[\d\]", body) and len(body) <= 400
    for citation in result.citations:
        assert f"[{citation.n}]" in body
        for start, end in citation.spans:  # every highlighted sentence is quoted in the answer
            assert squeeze(citation.text[start:end]).rstrip("；;，,：:。")[:20] in squeeze(body)
    assert "来源：\n[1] 《关于市政协十五届三次会议第130号提案的答复》（甬市监函〔2019〕25号）" in result.answer
    assert "第1页" not in result.answer  # a text file has no pages


@pytest.mark.parametrize("question", [
    "宁波专利质押贷款的贴息比例是多少？",  # the topic is there, the ratio is not
    "买发明专利被侵权保险，政府保费能补贴多少钱？",  # the scheme exists, no amount
    "那个风险池基金管理办法是哪天开始施行的？",  # no date given
    "杭州对专利质押贷款有没有贴息？",  # another city
    "深圳的知识产权侵权保险补贴标准是怎样的？",
    "灵活就业人员社保怎么交？",  # off topic
    "帮我写一首关于春天的诗。",
])
def test_questions_the_documents_do_not_answer_are_refused(answerer, question):
    result = answerer.answer(question)
    assert result.refused and result.citations == []
    assert result.answer == answerer.prompts.refusal and "知识库中没有找到" in result.answer
    assert len(result.passages) >= 10, "staff still get the closest passages"
    assert any(f.startswith("refused:") for f in result.flags)


@pytest.mark.parametrize("question, expected", [
    ("这个回复函的文号是多少？", "发文字号：甬市监函〔2019〕25号"),
    ("这份答复是哪个单位发出来的？", "发文机关：宁波市市场监督管理局"),
    ("这封答复落款是哪一天？", "成文日期：2019年7月22日"),
    ("这个文件是什么时候印发的？", "印发日期：2019年7月24日"),
    ("对这个答复有疑问，联系人是谁？", "联系人：吴春莉，联系电话：55330646"),
])
def test_questions_about_the_document_itself_come_from_its_metadata(answerer, question, expected):
    result = answerer.answer(question)
    assert expected in result.answer and not result.refused
    citation = result.citations[0]
    value = expected.split("：", 1)[1].split("，")[0]
    assert squeeze(value) in squeeze(citation.text), "the cited passage states the value"


def test_follow_up_questions_carry_the_conversation(answerer):
    history = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"},
               {"role": "assistant", "content": "制订出台了《宁波市知识产权质押融资风险池基金管理办法（暂行）》。[1]"}]
    insurance = answerer.answer("那保险呢？", history=history)
    assert not insurance.refused and "保险" in insurance.answer.split("\n\n")[0]
    assert "专利质押贷款" in insurance.standalone_question
    issuer = answerer.answer("这个文件是哪个部门发的？", history=history)
    assert "宁波市市场监督管理局" in issuer.answer
    fresh = answerer.answer("宁波有哪些知识产权联盟？", history=history)
    assert fresh.standalone_question == "宁波有哪些知识产权联盟？"  # a complete question is not rewritten


def test_the_answerer_hands_its_tuning_to_every_step(answerer):
    """Answerer(tuning=…): the retrieval depth, the extractive thresholds and the follow-up rule read it
    (tests/test_extractive.py and tests/test_intent.py check the values themselves, without e5)."""
    history = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"}]
    default = answerer.answer("发明专利被侵权有保险吗？")
    assert not default.refused and len(default.passages) == 10
    # one term, and a topic of its own (a place): a follow-up by follow_up_max_terms alone
    assert "专利质押贷款" in answerer.answer("宁波？", history=history).standalone_question
    tuning = Tuning(min_retrieved=12, min_coverage=1.01, follow_up_max_terms=0)
    # the rules veto (decision = "rules"); with the learned decision (the default) the rule is one feature
    tuned = Answerer(answerer.generation, answerer.settings.replace(decision="rules"), answerer.prompts, tuning=tuning)
    learned = Answerer(answerer.generation, answerer.settings, answerer.prompts, tuning=tuning)
    try:
        assert tuned.extractive.tuning is tuned.tuning
        result = tuned.answer("发明专利被侵权有保险吗？")
        assert result.refused and len(result.passages) == 12
        assert result.flags[0].startswith("refused: the passages do not cover the question")
        assert tuned.answer("宁波？", history=history).standalone_question == "宁波？"
        weighed = learned.answer("发明专利被侵权有保险吗？")  # the model answers over the rule or refuses with its words
        assert learned.extractive.decision is not None
        assert any(f.startswith(("answered over the rule", "refused: the passages do not cover the question"))
                   and "(p " in f for f in weighed.flags), weighed.flags
    finally:
        tuned.close()
        learned.close()


def test_a_gradio_style_history_with_content_parts_works(answerer):
    history = [{"role": "user", "content": [{"type": "text", "text": "专利质押贷款出了坏账谁兜底？"}]}]
    assert "专利质押贷款" in answerer.answer("那保险呢？", history=history).standalone_question


@pytest.mark.parametrize("question, notice", [("", "请输入问题"), ("   ", "请输入问题"), ("专利" * 400, "问题过长")])
def test_empty_or_oversized_questions_get_a_notice_not_an_error(answerer, question, notice):
    result = answerer.answer(question)
    assert result.refused and notice in result.notices[0] and result.passages == []


def test_answer_json_contract(answerer):
    data = answerer.answer("发明专利被侵权有保险吗？").to_json()
    assert REQUIRED_ANSWER_KEYS <= set(data)
    assert data["citations"] and all(REQUIRED_CITATION_KEYS <= set(c) for c in data["citations"])
    assert len(data["passages"]) >= 10 and all(REQUIRED_PASSAGE_KEYS <= set(p) for p in data["passages"])
    assert [p["rank"] for p in data["passages"]] == list(range(1, len(data["passages"]) + 1))
    assert set(data["timings_ms"]) >= {"retrieve", "answer", "total"} and data["timings_ms"]["total"] > 0
    assert isinstance(data["citations"][0]["sentences"][0], int)
    json.dumps(data, ensure_ascii=False)


def _ask_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kb", "ask", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ}, timeout=120)


def test_ask_command(answerer, capsys):
    if answerer.settings.store.store == "milvus":
        pytest.skip(LITE_ONE_PROCESS)
    kb_dir = str(answerer.settings.store.kb_dir)
    out = _ask_cli("发明专利被侵权有保险吗？", "--json", "--kb", kb_dir)  # the entry point, as a user runs it
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert REQUIRED_ANSWER_KEYS <= set(data) and "发明专利被侵权保险" in data["answer"]
    from kb.__main__ import main  # the other cases in this process: a process each costs seconds of imports

    assert main(["ask", "杭州对专利质押贷款有没有贴息？", "--kb", kb_dir]) == 0
    text = capsys.readouterr().out
    assert "知识库中没有找到" in text and "最接近的段落" in text
    assert main(["ask", "专利", "--kb", kb_dir + "-missing"]) == 2
    assert "python -m ingest" in capsys.readouterr().err
