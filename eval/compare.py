"""Compare two evaluation runs: metric by metric and question by question; mark regressions."""
from __future__ import annotations

import json
from pathlib import Path

from eval.gate import metric

# (metric, higher is better)
METRICS = [("retrieval.hit@1", True), ("retrieval.hit@3", True), ("retrieval.hit@5", True), ("retrieval.MRR@10", True),
           ("answers.keypoint_recall", True), ("answers.citation_precision", True), ("answers.all_keypoints", True),
           ("refusals.refusal_recall", True), ("refusals.false_refusal_rate", False),
           ("latency_ms.total.p50", False), ("latency_ms.total.p95", False)]
RATE_TOLERANCE = 0.005  # below this a change is noise
LATENCY_TOLERANCE = 0.25  # relative, and at least 5 ms


def _load(run_dir: Path) -> tuple[dict, dict[str, dict]]:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    results = {}
    path = run_dir / "results.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                results[row["id"]] = row
    return metrics, results


def _regressed(name: str, higher_better: bool, old: float, new: float) -> bool:
    if name.startswith("latency"):
        return new > old * (1 + LATENCY_TOLERANCE) and new - old > 5
    delta = new - old
    return delta < -RATE_TOLERANCE if higher_better else delta > RATE_TOLERANCE


def _outcome(row: dict) -> str:
    s = row["scores"]
    if not s["answerable"]:
        return "refused" if s["refused"] else "NOT refused"
    if s["refused"]:
        return "refused"
    return f"keypoints {s['keypoint_recall']:.2f}"


def _worse(old: dict, new: dict) -> bool:
    a, b = old["scores"], new["scores"]
    if not a["answerable"]:
        return a["refused"] and not b["refused"]
    return (b["refused"] and not a["refused"]) or b["keypoint_recall"] < a["keypoint_recall"]


def compare(old_dir: Path, new_dir: Path) -> tuple[list[str], int]:
    """Report lines and the number of regressions."""
    old, old_rows = _load(old_dir)
    new, new_rows = _load(new_dir)
    lines = [f"{'metric':<30}{'old':>10}{'new':>10}{'change':>10}"]
    regressions = 0
    for name, higher_better in METRICS:
        a, b = metric(old, name), metric(new, name)
        bad = _regressed(name, higher_better, a, b)
        regressions += bad
        lines.append(f"{name:<30}{a:>10.3f}{b:>10.3f}{b - a:>+10.3f}{'   REGRESSION' if bad else ''}")
    changed = [(qid, old_rows[qid], new_rows[qid]) for qid in old_rows if qid in new_rows
               and _outcome(old_rows[qid]) != _outcome(new_rows[qid])]
    if changed:
        lines.append("\nquestions whose outcome changed:")
        for qid, a, b in changed:
            worse = _worse(a, b)
            regressions += worse
            lines.append(f"  {qid}: {_outcome(a)} -> {_outcome(b)}{'   REGRESSION' if worse else ''}  {b['question']}")
    only = sorted(set(old_rows) ^ set(new_rows))
    if only:
        lines.append(f"\nquestions in only one run: {', '.join(only)}")
    lines.append(f"\n{regressions} regression(s)")
    return lines, regressions
