"""Answer or refuse: a calibrated decision over answer-level facts, in place of the hand rules' vetoes.

The extractive answerer's refusal rules (kb/answer/extractive.py: the best sentence covers too little of
the question; no passage is close and little is covered; the asked-for amount, date… is in none of the
best sentences) are kept as *features* of a logistic regression, beside what they were computed from and
what else an answer shows: coverage of the question by the best sentence, by the answer and by the top
passage, score margins, the e5 similarities, whether the chosen sentences hold the kind of fact asked for,
the kinds asked, place and year mismatches, the retrieval scores. Its output is the probability that the
passages answer the question; under the threshold (chosen on cross-validation for a false-refusal rate of
at most 3 %) the answer is refused, and the rules' own words still say why (Draft.reason and flags).

The model is `kb/resources/decision.json` (coefficients, the features' means and scales, the threshold
and how it was trained), written by `python -m eval train-decision` (eval/train_decision.py,
docs/decision.md) and read at start-up when the setting `decision` is "learned" and retrieval is hybrid (the
mode it was trained in: BM25 or e5 alone give other scores, and no e5 similarity). Pure numpy at run time.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

MODEL_RESOURCE = "decision.json"  # in kb/resources, versioned with the code that computes its features

# The kinds of question the decision knows (kb/answer/intent.py), one feature each
ASKED = ("money", "ratio", "date", "duration", "count", "number", "list", "steps", "yesno", "name")

# Every feature, in the model's order. Rules are 0/1; coverages are IDF-weighted shares of the question's terms.
FEATURES: tuple[str, ...] = (
    "rule_low_coverage",     # the best sentence covers less than min_coverage (today's veto)
    "rule_off_topic",        # no passage close in e5 and little covered (today's veto)
    "rule_value_missing",    # the asked-for kind of fact is in none of the best sentences (today's veto)
    "best_coverage",         # coverage of the question by the best sentence (heading counted in part)
    "top_coverage",          # the highest coverage of any candidate sentence
    "second_coverage",       # the second-best sentence's coverage
    "answer_coverage",       # coverage by the whole answer text
    "passage_coverage",      # coverage by the best sentence's passage as a whole (text, title, headings)
    "best_score",            # the answerer's score of the best sentence (coverage, e5, value bonus, rank)
    "score_margin",          # best score minus the second's
    "best_dense",            # e5 similarity of the question and the best sentence
    "closest_dense",         # the best e5 similarity of any retrieved passage (0 when dense retrieval did not run)
    "second_score_ratio",    # the second passage's retrieval score over the first's (the scale differs by ranker)
    "best_rank",             # rank of the best sentence's passage (1 = first)
    "wanted",                # how many kinds of fact (amount, date…) the question asks for
    "best_holds",            # share of the asked-for kinds the best sentence states (1 when none is asked)
    "answer_holds",          # share of them the answer states
    "value_relative",        # coverage of the best sentence stating an asked-for kind, over the top coverage
    "question_terms",        # the question's distinct terms (log)
    "year_mismatch",         # the question names a year that the best passage's document does not
    "place_mismatch",        # the question names a place that the best passage's document does not
    "stale",                 # the best passage's document is no longer in force
    "article",               # the best passage is an article of a law
    "top_score",             # the first passage's retrieval score (the learned ranker's is in (0, 1))
    "place_local",           # the question names a place and the best passage's document is of that place
    "place_unserved",        # it names a place and no passage read is from a document of that place
    "day_missing",           # it asks for a day (哪天, 截止日期…) and the answer states none (a year is not a day)
    "support_from_law",      # it asks about support (补贴, 奖励, 资助…) and the best passage is an article of a law
    *(f"asks_{kind}" for kind in ASKED),
)


def vector(facts: dict[str, float]) -> np.ndarray:
    """The features in the model's order (a missing one is a defect: KeyError)."""
    return np.array([float(facts[name]) for name in FEATURES])


@dataclass(frozen=True)
class DecisionModel:
    """A standardised logistic regression: p = σ(coef · (x − mean) / scale + intercept)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float  # answer when p ≥ threshold
    trained: str = ""  # what it was trained on, and when (for the flags and docs)

    def probability(self, x: np.ndarray) -> float:
        z = float(np.dot(self.coef, (x - np.asarray(self.mean)) / np.asarray(self.scale))) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_json(self) -> str:
        """Rounded to 6 decimals: the same data gives the same file (sums over sets differ in the last bits)."""
        def r(values) -> list[float]:
            return [round(float(v), 6) for v in values]

        return json.dumps({"features": list(self.features), "mean": r(self.mean), "scale": r(self.scale),
                           "coef": r(self.coef), "intercept": round(self.intercept, 6),
                           "threshold": round(self.threshold, 6), "trained": self.trained},
                          ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DecisionModel:
        data = json.loads(text)
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["coef"]),
                   float(data["intercept"]), float(data["threshold"]), data.get("trained", ""))

    @classmethod
    def load(cls, path: Path | None = None) -> DecisionModel | None:
        """The model at `path`, or the packaged kb/resources/decision.json. None when the file is absent or
        was trained on other features (then the rules decide, as before)."""
        if path is None:
            resource = resources.files("kb").joinpath("resources", MODEL_RESOURCE)
            if not resource.is_file():
                return None
            text = resource.read_text(encoding="utf-8")
        else:
            if not Path(path).is_file():
                return None
            text = Path(path).read_text(encoding="utf-8")
        model = cls.from_json(text)
        return model if model.features == FEATURES else None
