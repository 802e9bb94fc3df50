"""Run a test set through the same `Answerer.answer()` the app uses, score it, write the outputs.

    out/results.jsonl   one line per question: {"id", "scores", …the Answer JSON…}
    out/metrics.json    the configured pipeline's metrics, and the ablation
    out/report.md, out/report.html, out/*.png   (eval/report.py)

The ablation answers every question again with BM25 only, dense only and hybrid retrieval
(extractive answers), with hybrid retrieval fused by RRF ("rrf": no learned ranker) when the learned
ranker is in use, with the refusal rules deciding ("rules": no calibrated decision) when the learned
decision is in use, with hybrid retrieval and no place and validity awareness ("no scope":
`scope_aware = false`), and, when an LLM is configured, the LLM answerer beside the extractive.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from eval.scoring import aggregate, question_scores
from eval.testset import Question, load_testset
from kb.answer.answerer import Answerer
from kb.core.settings import Settings

Progress = Callable[[int, int, str], None]  # done, total, what is running


def answer_all(answerer: Answerer, questions: list[Question], label: str, progress: Progress | None,
               show_bar: bool) -> list[dict]:
    results = []
    for i, q in enumerate(tqdm(questions, desc=label, unit="q", disable=not show_bar, file=sys.stderr)):
        results.append(answerer.answer(q.question, history=q.history, region=q.region).to_json())
        if progress:
            progress(i + 1, len(questions), label)
    return results


def variants(answerer: Answerer, ablation: bool) -> dict[str, Answerer]:
    """The configured pipeline first, then the ablation's other answerers over the same retriever."""
    main = "llm" if answerer.llm else answerer.settings.answer.retrieval_mode
    runs = {main: answerer}
    if ablation:
        learned = answerer.generation.retriever.ranker is not None and answerer.settings.answer.ranker == "learned"
        for mode in ("bm25", "dense", "hybrid", *(("rrf",) if learned else ())):  # rrf: no learned ranker
            if mode != main:
                settings = answerer.settings.replace(retrieval_mode=mode)
                runs[mode] = Answerer(answerer.generation, settings, answerer.prompts, llm=None,
                                      tuning=answerer.tuning)
        if answerer.settings.answer.decision == "learned" and answerer.extractive.decision is not None:
            runs["rules"] = Answerer(answerer.generation, answerer.settings.replace(decision="rules"), answerer.prompts,
                                     llm=None, tuning=answerer.tuning)  # no calibrated decision: the rules veto
        if answerer.settings.answer.scope_aware:  # no place selection, conversation document, year check or notices
            settings = answerer.settings.replace(scope_aware=False)
            runs["no scope"] = Answerer(answerer.generation, settings, answerer.prompts, llm=None,
                                        tuning=answerer.tuning)
    return runs


def evaluate(answerer: Answerer, testset: Path, out_dir: Path, *, ablation: bool = True,
             progress: Progress | None = None, show_bar: bool = True) -> dict:
    questions = load_testset(testset)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    runs = variants(answerer, ablation)
    main = next(iter(runs))
    all_results, table = {}, {}
    for label, variant in runs.items():
        results = answer_all(variant, questions, label, progress, show_bar)
        all_results[label] = results
        table[label] = aggregate(questions, results)
    metrics = {
        "testset": str(testset), "created_at": started, "main": main,
        "settings": {"embedder": answerer.generation.manifest.embedder,
                     "retrieval_mode": answerer.settings.answer.retrieval_mode,
                     "answerer": "llm" if answerer.llm else "extractive",
                     "llm_model": answerer.settings.llm.llm_model or None},
        **table[main],
        "ablation": table,
    }
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as fh:
        for q, result in zip(questions, all_results[main]):
            fh.write(json.dumps({"id": q.id, "scores": question_scores(q, result), **result}, ensure_ascii=False) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    from eval.report import write_report  # matplotlib is imported only when a report is written

    write_report(out_dir, metrics, questions, all_results[main])
    return metrics


def run(settings: Settings, testset: Path, out_dir: Path, **kwargs) -> dict:
    answerer = Answerer.open(settings)
    try:
        return evaluate(answerer, testset, out_dir, **kwargs)
    finally:
        answerer.close()
