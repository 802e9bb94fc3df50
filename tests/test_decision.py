"""The answer-or-refuse decision (kb/answer/decision.py) and its trainer's pure parts (eval/train_decision.py):
hand-made models over hand-made passages (a real jieba tokenizer, stub IDF, no e5, no knowledge base)."""
from __future__ import annotations

import numpy as np
import pytest
from tests_support import passage

from eval.testset import Question
from eval.train_decision import DECLINED, Case, figures, parse_set, rules_outcome, threshold_for
from kb.answer.decision import FEATURES, DecisionModel, vector
from kb.answer.extractive import ExtractiveAnswerer
from kb.answer.intent import analyse

SUBSIDY = [passage(1, "对投保专利保险的企业给予保费补贴。每家企业每年最高补贴12万元。", heading=("补贴标准",))]
RATIO_Q = "专利保险的保费补贴比例是多少？"  # the passages state a cap, no ratio: the rules refuse
CAP_Q = "专利保险每家企业每年最高补贴多少钱？"  # the cap answers


def model(threshold: float, weights: dict[str, float] | None = None, intercept: float = 0.0) -> DecisionModel:
    """A model reading only `weights` (standardised with mean 0 and scale 1: the raw features)."""
    n = len(FEATURES)
    coef = tuple((weights or {}).get(name, 0.0) for name in FEATURES)
    return DecisionModel(FEATURES, (0.0,) * n, (1.0,) * n, coef, intercept, threshold, "hand-made")


def answer(tokenizer, question: str, decision: DecisionModel | None):
    return ExtractiveAnswerer(tokenizer, lambda term: 1.0, decision=decision).answer(question, analyse(question), SUBSIDY)


# --- the model

def test_the_probability_is_the_logistic_of_the_standardised_features():
    m = DecisionModel(FEATURES, (1.0,) * len(FEATURES), (2.0,) * len(FEATURES),
                      (0.5,) + (0.0,) * (len(FEATURES) - 1), -1.0, 0.5)
    x = np.full(len(FEATURES), 5.0)  # (5 - 1) / 2 × 0.5 - 1 = 0
    assert m.probability(x) == pytest.approx(0.5)
    assert m.probability(np.full(len(FEATURES), 1e9)) == pytest.approx(1.0)  # no overflow


def test_a_model_round_trips_and_one_trained_on_other_features_is_not_loaded(tmp_path):
    m = model(0.4, {"best_coverage": 2.0}, 0.3)  # values of at most 6 decimals: the file keeps 6
    path = tmp_path / "decision.json"
    path.write_text(m.to_json(), encoding="utf-8")
    assert DecisionModel.load(path) == m
    other = DecisionModel(("best_coverage",), (0.0,), (1.0,), (1.0,), 0.0, 0.5)
    path.write_text(other.to_json(), encoding="utf-8")
    assert DecisionModel.load(path) is None
    assert DecisionModel.load(tmp_path / "missing.json") is None


def test_the_packaged_model_reads_todays_features():
    """Changing FEATURES without `python -m eval train-decision` leaves the packaged model unread: this fails."""
    packaged = DecisionModel.load()
    assert packaged is not None and 0.0 < packaged.threshold < 1.0
    assert vector({name: 0.0 for name in FEATURES}).shape == (len(FEATURES),)


# --- the decision in the extractive answerer

def test_the_rules_veto_without_a_model(tokenizer):
    draft = answer(tokenizer, RATIO_Q, None)
    assert draft.refused and draft.reason == "the passages never state the asked-for ratio"


def test_a_model_that_answers_overrules_the_veto_and_flags_it(tokenizer):
    draft = answer(tokenizer, RATIO_Q, model(0.5, intercept=5.0))  # p = σ(5) ≈ 0.99
    assert not draft.refused and "保费补贴" in draft.text  # what the passages say, quoted
    assert draft.flags == ["answered over the rule (p 0.99): the passages never state the asked-for ratio"]


def test_a_model_that_refuses_says_why_in_the_rules_words(tokenizer):
    vetoed = answer(tokenizer, RATIO_Q, model(0.5, intercept=-5.0))
    assert vetoed.refused and vetoed.reason == "the passages never state the asked-for ratio (p 0.01 < 0.50)"
    plain = answer(tokenizer, CAP_Q, model(0.5, intercept=-5.0))  # no rule vetoes: the model alone refuses
    assert plain.refused and plain.reason == "the passages do not answer the question (p 0.01 < 0.50)"


@pytest.mark.parametrize("threshold, refused", [(0.49, False), (0.51, True)])
def test_the_rule_is_a_feature_the_threshold_weighs(tokenizer, threshold, refused):
    """A model that reads only the value rule: p = σ(-0.04) ≈ 0.49 for RATIO_Q, refused above that threshold."""
    draft = answer(tokenizer, RATIO_Q, model(threshold, {"rule_value_missing": -0.04}))
    assert draft.refused is refused
    assert answer(tokenizer, CAP_Q, model(threshold, {"rule_value_missing": -0.04})).refused is (threshold > 0.5)


# --- the trainer's pure parts

def test_the_threshold_refuses_at_most_the_target_share_of_answerable_questions():
    p = np.array([0.05, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] * 10 + [0.01, 0.02])
    y = np.array([1] * 100 + [0, 0])
    t = threshold_for(p, y, 0.03)
    assert (p[y == 1] < t).mean() <= 0.03
    assert t == pytest.approx(0.05)  # 3 of 100 may fall under it: the ten 0.05 must not
    assert threshold_for(np.array([0.3, 0.6]), np.array([1, 1]), 0.5) == 0.6


def _case(answerable: bool, rule: bool, answer: str = "答案。", keypoints: tuple[str, ...] = ()) -> Case:
    x = np.zeros(len(FEATURES))
    x[FEATURES.index("rule_value_missing")] = float(rule)
    return Case("s", Question("q", "问？", answerable, [], list(keypoints)), x, False, answer)


def test_figures_count_as_the_evaluation_does():
    cases = [_case(True, False, "有12万元。", ("12万元",)), _case(True, True, "有12万元。", ("12万元",)),
             _case(False, False, f"{DECLINED}“商标”；相关规定如下：…"), _case(False, False)]
    rules = [rules_outcome(c) for c in cases]
    assert rules[1] == (True, "") and rules[0] == (False, "有12万元。")
    f = figures(cases, rules)
    assert f["false_refusals"] == 1 and f["false_refusal_rate"] == 0.5 and f["keypoint_recall"] == 0.5
    assert f["refusal_recall"] == 0.5  # the "文件中未提及" answer declines, the plain answer does not


def test_a_set_is_named_with_its_test_set_and_corpus():
    spec = parse_set("library=eval/testsets/library.jsonl:data/corpus,../shared/corpus/library")
    assert spec.name == "library" and spec.testset.name == "library.jsonl" and len(spec.corpus) == 2
    with pytest.raises(ValueError):
        parse_set("library=eval/testsets/library.jsonl")


# --- the answer-level facts the decision reads besides the rules

class _Keep:
    """A decision that answers and keeps the facts it was given."""
    threshold = 0.0

    def __init__(self):
        self.x: np.ndarray | None = None

    def probability(self, x: np.ndarray) -> float:
        self.x = x
        return 1.0


def _facts(tokenizer, question: str, passages) -> dict[str, float]:
    from kb.core.places import Places

    keep = _Keep()
    ExtractiveAnswerer(tokenizer, lambda term: 1.0, decision=keep, places_in=Places().places_in).answer(
        question, analyse(question), passages, check_places=False)
    assert keep.x is not None
    return dict(zip(FEATURES, keep.x))


def _of(region: tuple[str, ...], text: str, rank: int = 1):
    from dataclasses import replace

    from kb.core.profile import DocumentProfile

    return replace(passage(rank, text, doc_id=f"doc{rank}"), profile=DocumentProfile(region=region))


def test_a_place_no_passage_is_of_is_unserved_and_one_they_are_of_is_local(tokenizer):
    national = [_of(("全国",), "国家鼓励开展专利权质押贷款业务。")]
    ningbo = [_of(("浙江省", "宁波市"), "对专利权质押贷款给予贴息补助。")]
    q = "四川的企业专利质押贷款有贴息吗？"
    assert _facts(tokenizer, q, national)["place_unserved"] == 1.0
    assert _facts(tokenizer, q, national)["place_local"] == 0.0
    q = "宁波的企业专利质押贷款有贴息吗？"
    assert _facts(tokenizer, q, ningbo)["place_unserved"] == 0.0 and _facts(tokenizer, q, ningbo)["place_local"] == 1.0
    # 海关 is no place of the division table (jieba tags it as one): no place is named
    assert _facts(tokenizer, "海关扣押侵权货物要交担保吗？", national)["place_unserved"] == 0.0


@pytest.mark.parametrize("text, missing", [("申报材料于2018年报送市知识产权局。", 1.0),
                                           ("申报截止日期为2018年7月18日。", 0.0)])
def test_a_day_asked_for_and_only_a_year_stated_is_missing(tokenizer, text, missing):
    facts = _facts(tokenizer, "申报截止日期是哪天？", [_of(("全国",), text)])
    assert facts["day_missing"] == missing
