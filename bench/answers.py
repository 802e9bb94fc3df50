"""Answer quality and latency of the extractive answerer (the default), in one run.

Quality, on eval/testsets/sample.jsonl over the sample corpus (and shared-pdfs.jsonl over
all seven documents): keypoint recall, answers with every keypoint, citation support
(every [n] sentence found in the passage it cites — kb/answer/validation.py), citation precision
against the evidence, refusals of unanswerable questions by kind, false refusals.
Latency p50/p95 of `Answerer.answer()` on the sample KB, on the bundled knowledge base (data/corpus, 109
documents with the law library, its home place from ipkb.toml; the questions of all three of its test sets,
each answered once before it is timed, as the embedding cache holds the sentences of passages once cited)
and on a 10,000-chunk KB (bench/large_kb.py); baseline in the same run: retrieval alone (`Retriever.search`).

Run: `.venv/bin/python bench/answers.py [--size 10000] [--no-bundled]`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from large_kb import build_large  # noqa: E402

from eval.metrics import percentile, supports  # noqa: E402
from eval.testset import load_testset  # noqa: E402
from ingest.build import build  # noqa: E402
from kb.answer.answerer import Answerer  # noqa: E402
from kb.answer.validation import validate  # noqa: E402
from kb.core.settings import Settings, load_settings  # noqa: E402
from kb.core.text import squeeze  # noqa: E402

SAMPLE = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"  # the sample letter
SHARED_PDF = REPO.parent / "shared" / "corpus" / "pdf"
TESTSETS = REPO / "eval" / "testsets"
BUNDLED = REPO / "data" / "corpus"
SEED = REPO / "data" / "embed-seed.sqlite"


def quality(answerer: Answerer, questions) -> dict:
    answerable = [q for q in questions if q.answerable]
    unanswerable = [q for q in questions if not q.answerable]
    recall, complete, false_refusals, supported, cited, precise = [], 0, 0, 0, 0, 0
    refused_by_kind: Counter[str] = Counter()
    for q in answerable:
        result = answerer.answer(q.question)
        body = squeeze(result.answer)
        found = [squeeze(k) in body for k in q.keypoints]
        recall.append(sum(found) / len(found))
        complete += all(found)
        false_refusals += result.refused
        if not result.refused:
            check = validate(result.body, [
                next(p for p in result.passages if p.chunk_id == c.chunk_id) for c in result.citations
            ], answerer.generation.models.tokenizer)
            # a sentence of a run that one marker closes ("citation corrected (none) → [n]") is supported by [n]:
            # the extractive answer marks each run of a passage's sentences once
            supported += not [f for f in check.flags if not f.startswith("citation corrected (none)")]
            cited += 1
        precise += sum(any(supports(c.text, e) for e in q.evidence) for c in result.citations)
    citations = sum(len(answerer.answer(q.question).citations) for q in answerable)
    for q in unanswerable:
        refused_by_kind[q.kind] += answerer.answer(q.question).refused
    kinds = Counter(q.kind for q in unanswerable)
    return {
        "answerable": len(answerable), "unanswerable": len(unanswerable),
        "keypoint_recall": sum(recall) / len(recall), "complete": complete,
        "false_refusals": false_refusals, "supported": supported, "answered": cited,
        "citation_precision": precise / citations if citations else 0.0,
        "refused": sum(refused_by_kind.values()), "by_kind": {k: (refused_by_kind[k], n) for k, n in kinds.items()},
    }


def latency(answerer: Answerer, queries: list[str], rounds: int, warm: bool = False) -> tuple[list[float], list[float]]:
    for q in queries if warm else queries[:1]:
        answerer.answer(q)
    answers, searches = [], []
    for _ in range(rounds):
        for q in queries:
            answerer.generation.models.queries.clear()  # every question as if asked for the first time
            start = time.perf_counter()
            answerer.retriever.search(q)
            searches.append((time.perf_counter() - start) * 1000)
            answerer.generation.models.queries.clear()
            start = time.perf_counter()
            answerer.answer(q)
            answers.append((time.perf_counter() - start) * 1000)
    return answers, searches


def print_quality(title: str, q: dict) -> None:
    print(title)
    print(f"  keypoint recall               {q['keypoint_recall']:.3f}")
    print(f"  answers with every keypoint   {q['complete']}/{q['answerable']}")
    print(f"  answers whose every sentence is supported by its citation  {q['supported']}/{q['answered']}")
    print(f"  citation precision (cited passage holds evidence)          {q['citation_precision']:.3f}")
    print(f"  unanswerable refused          {q['refused']}/{q['unanswerable']}   "
          + ", ".join(f"{k} {r}/{n}" for k, (r, n) in sorted(q["by_kind"].items())))
    print(f"  answerable refused (false)    {q['false_refusals']}/{q['answerable']}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--no-bundled", action="store_true", help="skip the bundled knowledge base (109 documents)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ipkb-bench-answers-"))
    try:
        settings = Settings().replace(kb_dir=tmp / "sample", embed_cache=tmp / "cache.sqlite")
        build([SAMPLE], settings, progress=False)
        answerer = Answerer.open(settings)
        sample = load_testset(TESTSETS / "sample.jsonl")
        print_quality("sample.jsonl on the sample corpus:", quality(answerer, sample))
        queries = [q.question for q in sample]
        small = latency(answerer, queries, rounds=3)
        answerer.close()

        source = settings.replace(kb_dir=tmp / "all")
        build([SAMPLE] + ([SHARED_PDF] if SHARED_PDF.is_dir() else []), source, progress=False)
        if SHARED_PDF.is_dir():
            everything = Answerer.open(source)
            print_quality("\nshared-pdfs.jsonl on all seven documents:",
                          quality(everything, load_testset(TESTSETS / "shared-pdfs.jsonl")))
            everything.close()
        large = settings.replace(kb_dir=tmp / "large")
        build_large(source.store.kb_dir, large, args.size, settings.embed_cache_path)
        big = Answerer.open(large)
        big_latency = latency(big, queries, rounds=2)
        chunks = big.retriever.size
        big.close()
        bundled_latency = None
        if not args.no_bundled:
            shutil.copy(SEED, tmp / "bundled-cache.sqlite")
            home = load_settings(env={}, config_file=REPO / "ipkb.toml").answer.home_region
            bundled_settings = settings.replace(kb_dir=tmp / "bundled", embed_cache=tmp / "bundled-cache.sqlite",
                                                home_region=home)
            build([BUNDLED], bundled_settings, progress=False)
            bundled = Answerer.open(bundled_settings)
            asked = [q.question for name in ("sample", "policies", "library")
                     for q in load_testset(TESTSETS / f"{name}.jsonl")]
            bundled_latency = latency(bundled, asked, rounds=1, warm=True)
            bundled_chunks = bundled.retriever.size
            bundled.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    runs = [("sample KB (15 chunks)", small), (f"large KB ({chunks} chunks)", big_latency)]
    if bundled_latency:
        runs.insert(1, (f"bundled KB ({bundled_chunks} chunks)", bundled_latency))
    for label, (answers, searches) in runs:
        a50, a95, s50 = percentile(answers, 50), percentile(answers, 95), percentile(searches, 50)
        print(f"answer, {label:<24} p50 {a50:6.1f} ms  p95 {a95:6.1f} ms   "
              f"(baseline retrieval alone p50 {s50:5.1f} ms; answer/retrieval {a50 / s50:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
