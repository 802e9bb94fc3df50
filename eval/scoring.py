"""Score a run: the results of `answer()` for each question against the test set. Pure."""
from __future__ import annotations

from eval.metrics import citation_precision, hit_at, keypoint_recall, mean, percentile, reciprocal_rank
from eval.testset import Question

STAGES = ("retrieve", "answer", "total")


def question_scores(question: Question, result: dict) -> dict:
    """Per-question figures, kept in results.jsonl beside the answer."""
    passages = [p["text"] for p in result.get("passages", [])]
    cited = [c["text"] for c in result.get("citations", [])]
    # a refusal, or an answer that says the documents never mention what was asked ("文件中未提及…")
    declined = bool(result.get("refused")) or str(result.get("body", result.get("answer", ""))).startswith("文件中未提及")
    scores: dict = {"answerable": question.answerable, "kind": question.kind,
                    "refused": declined if not question.answerable else bool(result.get("refused"))}
    if question.answerable:
        scores.update({
            "hit@1": hit_at(passages, question.evidence, 1), "hit@3": hit_at(passages, question.evidence, 3),
            "hit@5": hit_at(passages, question.evidence, 5), "rr@10": reciprocal_rank(passages, question.evidence, 10),
            "keypoint_recall": keypoint_recall(result.get("answer", ""), question.keypoints),
            "citation_precision": citation_precision(cited, question.evidence),
        })
    return scores


def aggregate(questions: list[Question], results: list[dict]) -> dict:
    """The metrics of docs/evaluation.md, with their exact definitions (eval/metrics.py)."""
    per = [question_scores(q, r) for q, r in zip(questions, results)]
    answerable = [s for s in per if s["answerable"]]
    unanswerable = [s for s in per if not s["answerable"]]
    precisions = [s["citation_precision"] for s in answerable if s["citation_precision"] is not None]
    kinds = sorted({s["kind"] or "unanswerable" for s in unanswerable})
    return {
        "questions": len(per), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "retrieval": {
            "hit@1": mean([s["hit@1"] for s in answerable]), "hit@3": mean([s["hit@3"] for s in answerable]),
            "hit@5": mean([s["hit@5"] for s in answerable]), "MRR@10": mean([s["rr@10"] for s in answerable]),
        },
        "answers": {
            "keypoint_recall": mean([s["keypoint_recall"] for s in answerable]),
            "citation_precision": mean(precisions),
            "all_keypoints": mean([float(s["keypoint_recall"] == 1.0) for s in answerable]),
        },
        "refusals": {
            "refusal_recall": mean([float(s["refused"]) for s in unanswerable]),
            "false_refusal_rate": mean([float(s["refused"]) for s in answerable]),
            "by_kind": {k: mean([float(s["refused"]) for s in unanswerable if (s["kind"] or "unanswerable") == k])
                        for k in kinds},
        },
        "answerable_by_kind": {
            k: {"questions": len(group), "hit@5": mean([s["hit@5"] for s in group]),
                "keypoint_recall": mean([s["keypoint_recall"] for s in group]),
                "refused": sum(s["refused"] for s in group)}
            for k in sorted({s["kind"] or "answerable" for s in answerable})
            for group in [[s for s in answerable if (s["kind"] or "answerable") == k]]
        },
        "latency_ms": {
            stage: {"p50": percentile([r["timings_ms"][stage] for r in results], 50),
                    "p95": percentile([r["timings_ms"][stage] for r in results], 95)}
            for stage in STAGES
        },
    }
