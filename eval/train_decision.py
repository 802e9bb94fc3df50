"""`python -m eval train-decision`: train the answer-or-refuse decision (kb/answer/decision.py) and report
it against the rules it replaces, cross-validated, in one run.

Data: labelled test sets, each asked of its own knowledge base (`NAME=TESTSET:CORPUS[,CORPUS…]`; default
the sample letter's questions over the letter and over the bundled corpus, policies.jsonl over the letter
with the 17 policies and over the bundled corpus, and library.jsonl over the bundled corpus; the bundled
corpus is data/corpus, its law library included). The label is the test set's `answerable`. Each question is answered once by the same
Answerer the app uses, with a recorder in place of the decision that always answers: it keeps the
features and the answer the passages give; the rules' outcome is that answer unless one of the rule
features vetoes it. Questions refused before the decision (scope: a place or year no document covers)
or answered from metadata keep that outcome whatever the model says.

Knowledge bases are built by `python -m ingest` in a subprocess (eval does not import ingest), in --work
(default .decision-work/), each with its embedding cache seeded from data/embed-seed.sqlite.

Report, for each set: false refusals, refusal recall and keypoint recall of the rules and of the learned
decision, (a) 5-fold GroupKFold by question over all sets pooled (the threshold chosen inside each
training fold, on its own inner cross-validation), (b) each set held out, trained on the others. The
shipped model is trained on all sets; its threshold is the highest whose out-of-fold false-refusal rate
(answerable questions that reach the decision) is at most TARGET_FALSE_REFUSALS.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.metrics import keypoint_recall, mean
from eval.testset import Question, load_testset
from eval.train_ranker import build_kb
from kb.answer.answerer import Answerer
from kb.answer.decision import FEATURES, DecisionModel, vector
from kb.core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SEED = 20
FOLDS = 5
TARGET_FALSE_REFUSALS = 0.03
# inverse regularisation: for about 490 questions (about 100 unanswerable) and 39 features. 0.03, 0.1, 0.3, 1 and 3
# tried, with and without balanced class weights (2026-12-06): 0.3 unweighted caught the most unanswerable questions
# with the library's false refusals lowest, cross-validated and with each set held out
C = 0.3
DECLINED = "文件中未提及"  # kb/answer/scope.py NOTICE_UNMENTIONED, as eval/scoring.py counts it
RULES = ("rule_low_coverage", "rule_off_topic", "rule_value_missing")
DEFAULT_SETS = (
    "sample@letter=eval/testsets/sample.jsonl:data/corpus/nbamr-2019-25-reply-to-proposal-130.txt",
    "sample@bundled=eval/testsets/sample.jsonl:data/corpus",
    "policies@policies=eval/testsets/policies.jsonl:data/corpus/nbamr-2019-25-reply-to-proposal-130.txt,data/corpus/policies",
    "policies@bundled=eval/testsets/policies.jsonl:data/corpus",
    "library@bundled=eval/testsets/library.jsonl:data/corpus",
)


def default_sets() -> list[str]:
    return list(DEFAULT_SETS)


@dataclass
class Case:
    """One question of one set: its label, what the rules and a forced answer give, the decision's features."""

    set: str
    question: Question
    features: np.ndarray | None  # None: decided before the decision (scope refusal, metadata answer)
    refused_before: bool  # refused before the decision could answer
    answer: str  # the answer text when answered (the forced answer when the decision was reached)

    @property
    def rules_refuse(self) -> bool:
        if self.features is None:
            return self.refused_before
        return bool(any(self.features[FEATURES.index(r)] for r in RULES))


@dataclass
class SetSpec:
    name: str
    testset: Path
    corpus: list[Path]


def parse_set(text: str) -> SetSpec:
    name, _, rest = text.partition("=")
    testset, _, corpus = rest.partition(":")
    if not name or not testset or not corpus:
        raise ValueError(f"a set is NAME=TESTSET:CORPUS[,CORPUS…], not {text!r}")
    return SetSpec(name, REPO / testset, [REPO / c for c in corpus.split(",")])


@dataclass
class Recorder:
    """Stands in for the DecisionModel: always answers (threshold -inf) and keeps each feature vector."""

    seen: list[np.ndarray] = field(default_factory=list)
    threshold: float = -1.0

    def probability(self, x: np.ndarray) -> float:
        # rounded: e5 in float32 on several threads differs in the 7th decimal from run to run, and the
        # model file should not
        self.seen.append(np.round(x, 4))
        return 1.0


def collect(answerer: Answerer, spec: SetSpec) -> list[Case]:
    recorder = Recorder()
    answerer.extractive.decision = recorder  # type: ignore[assignment]
    cases = []
    for q in load_testset(spec.testset):
        before = len(recorder.seen)
        answer = answerer.answer(q.question, history=q.history, region=q.region)
        reached = len(recorder.seen) > before
        # the LLM is not configured here: the extractive draft is the answer
        cases.append(Case(spec.name, q, recorder.seen[-1] if reached else None,
                          answer.refused and not reached, "" if answer.refused else answer.to_json()["answer"]))
    return cases


# ---- the model

def fit(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    scaler.scale_[scaler.scale_ == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=2000, random_state=SEED).fit(scaler.transform(x), y)
    return scaler, model


def probabilities(fitted, x: np.ndarray) -> np.ndarray:
    scaler, model = fitted
    return model.predict_proba(scaler.transform(x))[:, 1]


def oof(x: np.ndarray, y: np.ndarray, groups: list[str], folds: int = FOLDS) -> np.ndarray:
    """Out-of-fold probabilities, folds grouped by question text."""
    from sklearn.model_selection import GroupKFold

    out = np.zeros(len(y))
    splits = min(folds, len(set(groups)))
    for train, test in GroupKFold(n_splits=splits).split(x, groups=groups):
        out[test] = probabilities(fit(x[train], y[train]), x[test])
    return out


def threshold_for(p: np.ndarray, y: np.ndarray, target: float = TARGET_FALSE_REFUSALS) -> float:
    """The highest threshold refusing at most `target` of the answerable questions (p < threshold refuses)."""
    positives = np.sort(p[y == 1])
    if not len(positives):
        return 0.5
    allowed = int(np.floor(target * len(positives)))  # this many answerable questions may fall under it
    return float(positives[allowed]) if allowed < len(positives) else float(positives[-1])


# ---- scoring

def outcome(case: Case, p: float | None, threshold: float) -> tuple[bool, str]:
    """(refused, answer text) of the learned decision; p None: decided before it."""
    if case.features is None or p is None:
        return case.refused_before, case.answer
    return (True, "") if p < threshold else (False, case.answer)


def figures(cases: list[Case], decided: list[tuple[bool, str]]) -> dict[str, float]:
    """The evaluation's figures (eval/scoring.py): an unanswerable question is also declined by an answer
    that says the documents never mention what was asked ("文件中未提及…")."""
    answerable = [(c, d) for c, d in zip(cases, decided) if c.question.answerable]
    unanswerable = [(c, d) for c, d in zip(cases, decided) if not c.question.answerable]
    return {"questions": len(cases), "false_refusals": sum(d[0] for _, d in answerable),
            "false_refusal_rate": mean([float(d[0]) for _, d in answerable]),
            "refusal_recall": mean([float(d[0] or d[1].startswith(DECLINED)) for _, d in unanswerable]),
            "keypoint_recall": mean([0.0 if d[0] else keypoint_recall(d[1], c.question.keypoints) for c, d in answerable])}


def rules_outcome(case: Case) -> tuple[bool, str]:
    return (True, "") if case.rules_refuse else (case.refused_before, case.answer)


def evaluate(cases: list[Case], train_on: Callable[[list[Case]], tuple[object, float]],
             splits: list[tuple[list[int], list[int]]]) -> list[tuple[bool, str]]:
    """The learned decision's outcome for every case, each predicted by a model trained without it."""
    out: list[tuple[bool, str] | None] = [None] * len(cases)
    for train, test in splits:
        fitted, threshold = train_on([cases[i] for i in train])
        reached = [i for i in test if cases[i].features is not None]
        p = probabilities(fitted, np.vstack([cases[i].features for i in reached])) if reached else []
        by = dict(zip(reached, p))
        for i in test:
            out[i] = outcome(cases[i], by.get(i), threshold)
    return [o for o in out if o is not None]


def trained(cases: list[Case]) -> tuple[object, float]:
    """A model on these cases and its threshold from their own out-of-fold probabilities."""
    usable = [c for c in cases if c.features is not None]
    x = np.vstack([c.features for c in usable])
    y = np.array([int(c.question.answerable) for c in usable])
    groups = [c.question.question for c in usable]
    return fit(x, y), threshold_for(oof(x, y, groups), y)


def run_training(settings: Settings, work: Path, out: Path | None, sets: list[str] | None = None,
                 log: Callable[[str], None] = print) -> dict:
    from sklearn.model_selection import GroupKFold

    work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    specs = [parse_set(s) for s in (sets or default_sets())]
    seed = REPO / "data" / "embed-seed.sqlite"
    cases: list[Case] = []
    kbs: dict[tuple[str, ...], Path] = {}
    for spec in specs:
        key = tuple(str(c) for c in spec.corpus)
        if key not in kbs:
            kbs[key] = work / f"kb-{len(kbs)}"
            build_kb(spec.corpus, kbs[key], seed)
        answerer = Answerer.open(settings.replace(kb_dir=kbs[key], decision="rules"))
        try:
            start = time.perf_counter()
            cases += collect(answerer, spec)
            print(f"  {spec.name}: {sum(c.set == spec.name for c in cases)} questions answered in "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
        finally:
            answerer.close()

    names = [s.name for s in specs]
    by_set = {n: [i for i, c in enumerate(cases) if c.set == n] for n in names}
    texts = [c.question.question for c in cases]
    pooled = list(GroupKFold(n_splits=FOLDS).split(texts, groups=texts))
    cv = evaluate(cases, trained, [(list(a), list(b)) for a, b in pooled])
    held: list[tuple[bool, str] | None] = [None] * len(cases)
    for n in names:
        # held out: trained on the other sets' questions (not the same question over another knowledge base)
        own = {texts[i] for i in by_set[n]}
        train = [i for i, t in enumerate(texts) if t not in own]
        if not train:
            continue
        for i, o in zip(by_set[n], evaluate(cases, trained, [(train, by_set[n])])[-len(by_set[n]):]):
            held[i] = o
    rules = [rules_outcome(c) for c in cases]

    report: dict = {"date": started, "features": len(FEATURES), "C": C, "folds": FOLDS,
                    "target_false_refusals": TARGET_FALSE_REFUSALS, "sets": {}}
    lines = [f"answer-or-refuse decision, {started}: logistic regression over {len(FEATURES)} features, "
             f"threshold for a false-refusal rate <= {TARGET_FALSE_REFUSALS:.0%}, seed {SEED}", "",
             f"  {'set':<18}{'method':<30}{'false refusals':>16}{'refusal recall':>16}{'keypoint recall':>17}"]
    for n in names:
        idx = by_set[n]
        rows = {"rules (today)": figures([cases[i] for i in idx], [rules[i] for i in idx]),
                f"learned, {FOLDS}-fold CV": figures([cases[i] for i in idx], [cv[i] for i in idx])}
        if all(held[i] is not None for i in idx):
            rows["learned, set held out"] = figures([cases[i] for i in idx], [held[i] for i in idx])  # type: ignore[misc]
        report["sets"][n] = rows
        for method, f in rows.items():
            answerable = sum(c.question.answerable for c in (cases[i] for i in idx))
            lines.append(f"  {n:<18}{method:<30}{f['false_refusals']:>6} of {answerable:<3} {f['false_refusal_rate']:>5.3f}"
                         f"{f['refusal_recall']:>16.3f}{f['keypoint_recall']:>17.3f}")

    fitted, threshold = trained(cases)
    scaler, model = fitted
    decision = DecisionModel(FEATURES, tuple(float(v) for v in scaler.mean_), tuple(float(v) for v in scaler.scale_),
                             tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]), threshold,
                             "+".join(names))
    report["threshold"] = threshold
    report["weights"] = dict(sorted(zip(FEATURES, decision.coef), key=lambda kv: -abs(kv[1])))
    lines += ["", f"shipped model: trained on all sets, threshold {threshold:.3f} (out-of-fold)",
              "  largest standardised weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in list(report["weights"].items())[:8])]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(decision.to_json(), encoding="utf-8")
        lines.append(f"  -> {out}")
    for line in lines:
        log(line)
    return report
