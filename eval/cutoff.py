"""Calibrating 检索's cut-off (`search_min_score_ratio`): the hotline's list shows a passage only when its
score is at least this fraction of the best one's. Too low pads the list with noise; too high hides the
passage that answers.

    python -m eval.cutoff --kb KB [--testset FILE]…

For each answerable question with evidence, the k = 10 passages search gives (the app's ranker); per ratio
and test set: the share of gold passages still shown, the passages shown on average, and the questions
left with none of their gold passages. The default is the highest ratio that leaves no question without
its gold on any set (docs/ranker.md)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.metrics import supports  # noqa: E402
from eval.testset import load_testset  # noqa: E402
from kb.answer.answerer import Answerer  # noqa: E402
from kb.core.settings import load_settings  # noqa: E402

RATIOS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)
DEFAULT_SETS = [Path(f"eval/testsets/{name}.jsonl") for name in ("sample", "policies", "library")]
Ranked = list[tuple[float, bool]]  # per shown passage: its score / the best score, whether it is gold


def rankings(answerer: Answerer, testset: Path, k: int = 10) -> list[Ranked]:
    out = []
    for q in load_testset(testset):
        if not q.answerable or not q.evidence:
            continue
        passages = answerer.retrieve(q.question, None, k)[:k]
        best = max((p.score for p in passages), default=0.0)
        if best > 0:
            out.append([(p.score / best, any(supports(p.text, e) for e in q.evidence)) for p in passages])
    return out


def at_ratio(ranked: list[Ranked], ratio: float) -> tuple[float, float, int]:
    """(share of gold passages kept, passages shown per question, questions left without their gold)."""
    gold = sum(g for r in ranked for _, g in r)
    kept = sum(g for r in ranked for rel, g in r if rel >= ratio)
    shown = sum(rel >= ratio for r in ranked for rel, _ in r) / max(len(ranked), 1)
    lost = sum(1 for r in ranked if any(g for _, g in r) and not any(g for rel, g in r if rel >= ratio))
    return (kept / gold if gold else 1.0), shown, lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.cutoff", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", type=Path, required=True)
    parser.add_argument("--testset", type=Path, action="append", help="repeatable; default sample, policies, library")
    args = parser.parse_args(argv)
    answerer = Answerer.open(load_settings().replace(kb_dir=args.kb))
    try:
        sets = {path.stem: rankings(answerer, path) for path in (args.testset or DEFAULT_SETS)}
    finally:
        answerer.close()
    print("ratio  " + "  ".join(f"{name:>28}" for name in sets))
    print("       " + "  ".join(f"{'gold kept  shown  q lost':>28}" for _ in sets))
    for ratio in RATIOS:
        cells = [at_ratio(ranked, ratio) for ranked in sets.values()]
        print(f"{ratio:5.2f}  " + "  ".join(f"{kept:>14.3f}  {shown:5.1f}  {lost:6d}" for kept, shown, lost in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
