"""Calibrating the curated matcher's threshold on a test set of entries with paraphrases (each must get its
own entry) and near-misses (close in topic, asking something else: they must not get it).

    python -m eval.curated [eval/testsets/curated.jsonl]

prints, per threshold, the share of paraphrases matched and the wrong entries served, with the answer
path's compatibility gate (kb/answer/curated_gate.py) and without; the lowest threshold serving none wrong
with the gate is kb/curated/matcher.py's DEFAULT_THRESHOLD (docs/curated.md)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.answer.curated_gate import curated_gate
from kb.curated.exchange import entry_from_json
from kb.curated.matcher import CuratedMatcher
from kb.curated.records import CuratedEntry

DEFAULT_TESTSET = Path("eval/testsets/curated.jsonl")


@dataclass(frozen=True)
class Case:
    question: str
    accept: frozenset[int]  # entries it may be served (empty: none), by index
    paraphrase: bool


@dataclass(frozen=True)
class Point:
    threshold: float
    matched: float  # share of paraphrases served their own entry
    wrong: int  # questions served an entry not theirs


def load_testset(path: Path) -> tuple[list[CuratedEntry], list[Case]]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [entry_from_json(r["entry"], "2026-01-01") for r in rows]
    entries = [CuratedEntry(**{**e.__dict__, "id": i}) for i, e in enumerate(entries)]
    asks = [{q.strip() for q in (*e.questions, *r["paraphrases"])} for e, r in zip(entries, rows)]
    cases = []
    for i, row in enumerate(rows):
        cases += [Case(q, frozenset({i}), True) for q in row["paraphrases"]]
        # a near-miss of one entry may be another entry's own question: that one may serve it
        cases += [Case(q, frozenset(j for j, a in enumerate(asks) if q.strip() in a), False) for q in row["near_misses"]]
    return entries, cases


def curve(entries: list[CuratedEntry], cases: list[Case], matcher: CuratedMatcher,
          thresholds: list[float]) -> list[Point]:
    best = [next(iter(matcher.scores(c.question, entries)), None) for c in cases]  # each one's closest entry
    paraphrases = sum(c.paraphrase for c in cases)
    points = []
    for t in thresholds:
        served = [(h.entry.id if h is not None and h.score >= t else None) for h in best]
        matched = sum(c.paraphrase and s in c.accept for c, s in zip(cases, served))
        wrong = sum(s is not None and s not in c.accept for c, s in zip(cases, served))
        points.append(Point(round(t, 3), matched / paraphrases, wrong))
    return points


def main(argv: list[str] | None = None) -> int:
    from kb.core.settings import load_settings
    from kb.search.generation import SearchModels

    argv = sys.argv[1:] if argv is None else argv
    entries, cases = load_testset(Path(argv[0]) if argv else DEFAULT_TESTSET)
    models = SearchModels.load(load_settings())
    encode = lambda t: np.asarray(models.embedder.encode_query(t))  # noqa: E731
    thresholds = [0.85 + 0.005 * i for i in range(30)]
    gated = curve(entries, cases, CuratedMatcher(encode, compatible=curated_gate(models.tokenizer.places)), thresholds)
    plain = curve(entries, cases, CuratedMatcher(encode), thresholds)
    print(f"{len(entries)} entries, {sum(c.paraphrase for c in cases)} paraphrases, "
          f"{sum(not c.paraphrase for c in cases)} near-misses")
    print("| threshold | paraphrases matched | wrong entries served | without the gate: matched | wrong |")
    print("|---|---|---|---|---|")
    for g, p in zip(gated, plain):
        print(f"| {g.threshold:.3f} | {g.matched:.0%} | {g.wrong} | {p.matched:.0%} | {p.wrong} |")
    safe = next((p for p in gated if p.wrong == 0), None)
    print(f"lowest threshold serving no wrong entry: {safe.threshold if safe else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
