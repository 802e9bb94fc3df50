"""`Tuning` (kb/answer/tuning.py) itself, and the values read outside the extractive answerer
(tests/test_extractive.py has those): the citation check's `support` (kb/answer/validation.py) and
the recognition of an LLM's refusal (kb/answer/llm.py). Hand-made passages, a real jieba tokenizer,
a stub LLM client; no e5, no knowledge base."""
from __future__ import annotations

import dataclasses
import math
import re

import pytest
from tests_support import REPO, passage

from kb.answer.llm import LlmStrategy
from kb.answer.prompts import Prompts
from kb.answer.tuning import Tuning
from kb.answer.validation import validate
from kb.core.sentences import sentence_spans

# --- the values themselves

CALIBRATED = {
    "min_retrieved": 10, "home_city_boost": 0.3, "home_province_boost": 0.1, "follow_up_max_terms": 1,
    "idf_floor": 1.0, "single_char_weight": 0.5, "heading_weight": 0.5, "context_weight": 0.3,
    "follow_up_documents": 2, "title_tail": 8, "off_topic_dense": 0.88, "off_topic_coverage": 0.25,
    "dense_weight": 0.5, "dense_candidates": 6, "stale_penalty": 0.05, "max_documents": 3, "value_bonus": 0.25, "rank_bonus": 0.02,
    "passage_weight": 0.8,
    "title_echo": 0.5,
    "min_coverage": 0.1, "value_coverage": 0.2, "value_relative": 0.9, "value_window": 8,
    "keep_ratio": 0.8, "max_sentences": 3, "max_chars": 200, "list_max_chars": 700, "article_max_chars": 250,
    "yesno_paragraph_chars": 200,
    "support": 0.7, "refusal_prefix_chars": 10, "refusal_min_chars": 6,
    "llm_max_dropped": 0.5, "llm_coverage_margin": 0.25,
}


def test_the_defaults_are_the_calibrated_values():
    """A default changed by accident changes answers: these are the values bench/answers.py measured."""
    assert dataclasses.asdict(Tuning()) == CALIBRATED
    for field in dataclasses.fields(Tuning):
        assert type(getattr(Tuning(), field.name)) is type(CALIBRATED[field.name]), field.name


def test_tuning_is_frozen_and_comparable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Tuning().min_coverage = 0.2  # type: ignore[misc]
    assert Tuning(min_coverage=0.2) == dataclasses.replace(Tuning(), min_coverage=0.2) != Tuning()


def test_every_value_says_what_it_does():
    """Each field of the dataclass has its own comment right above it."""
    lines = (REPO / "kb" / "answer" / "tuning.py").read_text(encoding="utf-8").splitlines()
    for field in dataclasses.fields(Tuning):
        at = next(i for i, line in enumerate(lines) if re.match(rf"\s+{field.name}: ", line))
        assert lines[at - 1].strip().startswith("#"), f"{field.name} has no comment"


# --- validation: a cited passage supports a sentence holding `support` of its terms

# One passage of three sentences (its title, issuer and number share no term with the claims
# below), one of two. Content terms are the words of two characters or more.
SUBSIDY = passage(1, "对投保专利保险的企业给予保费补贴。按实际缴纳保费的60%给予补贴。每家企业每年最高补贴12万元。")
DEADLINE = passage(2, "企业应于每年3月31日前提交申请。逾期不予受理。")
PASSAGES = [SUBSIDY, DEADLINE]
FIRST = sentence_spans(SUBSIDY.text)[0]

# (id, answer, the share of its terms the citation holds — the boundary, supported at 0.7,
#  sentences of [1] highlighted at the boundary)
SUPPORT = [
    # 8 of 专利 专利保险 企业 保费 保费补贴 保险 投保 获得 补贴 are in the first sentence (not 获得)
    ("a close paraphrase", "企业投保专利保险可以获得保费补贴。[1]", 8 / 9, True, [FIRST]),
    # 全额 承担 政府 are not in the passage: 6 of 9
    ("a sentence adding a claim", "企业投保专利保险后由政府全额承担保费。[1]", 6 / 9, False, [FIRST]),
    # 政府 统一 采购 are not: 3 of 6
    ("half of it", "专利保险由政府统一采购。[1]", 3 / 6, False, [FIRST]),
    # 5 of 7 in the first sentence, 6 of 7 (not 获得) in the passage as a whole: nothing single to highlight
    ("drawn from the whole passage", "投保企业最高可获得保费补贴。[1]", 6 / 7, True, []),
    # with its figure 12, stated by the passage: 13 of 15 in the whole passage (not 比例, 获得)
    ("with a figure", "投保专利保险的企业按实际缴纳保费的比例获得补贴，每年最高12万元。[1]", 13 / 15, True, []),
    # cited together: 13 of 14 in the two passages (not 获得), neither passage alone holds 70%
    ("two passages together", "企业投保专利保险获得保费补贴，应于每年3月31日前提交申请。[1][2]", 13 / 14, True, None),
]


@pytest.mark.parametrize("answer, share, supported, highlighted", [r[1:] for r in SUPPORT], ids=[r[0] for r in SUPPORT])
def test_support_at_the_calibrated_threshold(tokenizer, answer, share, supported, highlighted):
    checked = validate(answer, PASSAGES, tokenizer)
    assert (checked.supported, checked.unsupported) == ((1, 0) if supported else (0, 1))
    assert bool(checked.flags) is not supported


@pytest.mark.parametrize("answer, share, supported, highlighted", [r[1:] for r in SUPPORT], ids=[r[0] for r in SUPPORT])
def test_support_flips_at_the_measured_share(tokenizer, answer, share, supported, highlighted):
    at = validate(answer, PASSAGES, tokenizer, Tuning(support=share))
    assert (at.supported, at.unsupported, at.flags) == (1, 0, [])
    if highlighted is not None:
        assert at.cited[1][1] == highlighted
    above = validate(answer, PASSAGES, tokenizer, Tuning(support=math.nextafter(share, math.inf)))
    assert (above.supported, above.unsupported) == (0, 1)
    assert above.flags[0].startswith("not supported by the cited passage(s)")


@pytest.mark.parametrize("answer, support, supported", [
    ("对投保专利保险的企业给予保费补贴。[1]", 1.5, True),  # quoted outright: no share needed
    ("按实际缴纳保费的80%给予补贴。[1]", 0.0, False),  # a figure the passage does not state: no share helps
    ("杭州市对投保专利保险的企业给予保费补贴。[1]", 0.0, False),  # nor a place it does not name
])
def test_support_is_not_the_only_check(tokenizer, answer, support, supported):
    assert validate(answer, PASSAGES, tokenizer, Tuning(support=support)).supported == int(supported)


# --- recognising an LLM's refusal: the refusal text, its first refusal_prefix_chars characters, or a
# part of it at least refusal_min_chars long

class StubClient:
    """Streams one fixed reply, as an OpenAI-compatible server would."""

    def __init__(self, reply: str):
        self.reply = reply

    def stream(self, system: str, user: str):
        yield from ([self.reply[:3], self.reply[3:]] if self.reply else [])


PROMPTS = Prompts.load(REPO / "prompts")  # 知识库中没有找到能回答这个问题的内容。建议咨询当地知识产权管理部门，……


def llm_draft(tokenizer, reply: str, tuning: Tuning = Tuning()):
    stream = LlmStrategy(StubClient(reply), PROMPTS, tokenizer, tuning).draft("专利保险有补贴吗？", PASSAGES)
    while True:
        try:
            next(stream)
        except StopIteration as done:
            return done.value


# (id, reply, Tuning fields, recognised as a refusal)
REFUSALS = [
    ("nothing", "", {}, True),
    ("the refusal text", PROMPTS.refusal, {}, True),
    ("its first sentence", "知识库中没有找到能回答这个问题的内容。", {}, True),
    ("inside other words", "抱歉，知识库中没有找到能回答这个问题的内容，请谅解。", {}, True),
    ("a refusal cut off", "知识库中没有找到", {}, True),
    ("six characters of it", "知识库中没有", {}, True),
    ("refusal_min_chars 7", "知识库中没有", {"refusal_min_chars": 7}, False),
    ("four characters of it", "知识库中", {}, False),
    ("refusal_min_chars 4", "知识库中", {"refusal_min_chars": 4}, True),
    ("its first ten characters after a preamble", "以下是回答：知识库中没有找到能回", {}, True),
    ("refusal_prefix_chars 12", "以下是回答：知识库中没有找到能回", {"refusal_prefix_chars": 12}, False),
    ("an answer", "投保专利保险的企业可以获得保费补贴。[1]", {}, False),
]


@pytest.mark.parametrize("reply, fields, refused", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_an_llm_refusal_is_recognised(tokenizer, reply, fields, refused):
    draft = llm_draft(tokenizer, reply, Tuning(**fields))
    assert (draft.refused and draft.reason == "the LLM found no answer") is refused


def test_the_llm_strategy_validates_with_its_tuning(tokenizer):
    """The same LLM answer is shown at the calibrated support and withheld when support asks for more."""
    answer = "企业投保专利保险可以获得保费补贴。[1]"  # holds 8/9 of its terms
    assert not llm_draft(tokenizer, answer).refused
    withheld = llm_draft(tokenizer, answer, Tuning(support=0.9))
    assert withheld.refused and "no sentence supported" in withheld.reason
