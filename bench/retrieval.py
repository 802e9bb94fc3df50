"""Retrieval quality and speed, all measured in one run.

Quality on a test set (default eval/testsets/sample.jsonl, answerable questions):
hit@1/3/5 and MRR@10 for BM25 only, dense only, hybrid (RRF), and the naive baseline —
LangChain RecursiveCharacterTextSplitter(500, 50) on the raw text + LangChain FAISS,
same embedder. Speed: index build time (cold embedding cache), start-up of a fresh
process, query latency p50/p95 (query embedding included) on the sample knowledge base
and on a 10,000-chunk one; index size and resident memory.

The 10,000-chunk knowledge base repeats the documents of the sample corpus and the
shared PDFs under new document ids (bench/large_kb.py).

Run: `make bench-retrieval` or `.venv/bin/python bench/retrieval.py [--testset FILE] [--size 10000]`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from large_kb import build_large  # noqa: E402

from eval.metrics import hit_at, percentile, reciprocal_rank  # noqa: E402
from eval.testset import load_testset  # noqa: E402
from ingest.build import build  # noqa: E402
from ingest.loaders import load  # noqa: E402
from ingest.ocr import OcrEngine  # noqa: E402
from kb.core.settings import Settings  # noqa: E402
from kb.models.embeddings import E5Embeddings  # noqa: E402
from kb.search.generation import Generation  # noqa: E402
from kb.search.retriever import MODES, Retriever  # noqa: E402

SAMPLE = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"  # the sample letter
SHARED_PDF = REPO.parent / "shared" / "corpus" / "pdf"
TESTSETS = REPO / "eval" / "testsets"
NAIVE = "naive (500/50 + FAISS)"
MAX_BYTES = 100 * 1024 * 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6


def quality(ranked: dict[str, list[str]], questions) -> dict[str, float]:
    answerable = [q for q in questions if q.answerable]
    n = len(answerable)
    out = {f"hit@{k}": sum(hit_at(ranked[q.id], q.evidence, k) for q in answerable) / n for k in (1, 3, 5)}
    out["MRR@10"] = sum(reciprocal_rank(ranked[q.id], q.evidence, 10) for q in answerable) / n
    return out


def naive_baseline(questions, files: list[Path], embedder: E5Embeddings, ocr: OcrEngine) -> dict[str, list[str]]:
    """The raw text (pages as loaded, OCR included, not cleaned) split every 500 characters."""
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    raw = ["\n".join(p.text for p in load(f, max_bytes=MAX_BYTES, ocr=ocr).pages) for f in files]
    store = FAISS.from_texts([t for text in raw for t in splitter.split_text(text)], embedder)
    return {q.id: [d.page_content for d in store.similarity_search(q.question, k=10)] for q in questions}


def ablation(retriever: Retriever, questions, files: list[Path], embedder: E5Embeddings, ocr: OcrEngine) -> dict:
    ranked = {mode: {q.id: [p.text for p in retriever.search(q.question, k=10, mode=mode)] for q in questions}
              for mode in MODES}
    ranked[NAIVE] = naive_baseline(questions, files, embedder, ocr)
    return {mode: quality(r, questions) for mode, r in ranked.items()}


def print_quality(title: str, table: dict) -> None:
    print(title)
    naive = table[NAIVE]
    print(f"  {'method':<26}{'hit@1':>8}{'hit@3':>8}{'hit@5':>8}{'MRR@10':>8}   hit@1 vs naive")
    for mode, q in table.items():
        ratio = q["hit@1"] / naive["hit@1"] if naive["hit@1"] else float("inf")
        print(f"  {mode:<26}{q['hit@1']:>8.3f}{q['hit@3']:>8.3f}{q['hit@5']:>8.3f}{q['MRR@10']:>8.3f}   {ratio:.2f}x")


def latencies(retriever: Retriever, queries: list[str], mode: str = "hybrid", rounds: int = 1) -> list[float]:
    retriever.search(queries[0], mode=mode)  # warm-up
    out = []
    for _ in range(rounds):
        for q in queries:
            retriever.queries.clear()  # every question as if asked for the first time
            start = time.perf_counter()
            retriever.search(q, k=10, mode=mode)
            out.append((time.perf_counter() - start) * 1000)
    return out


def startup_seconds(kb_dir: Path) -> float:
    """A fresh process: import, open the knowledge base, load the model and tokenizer, one search."""
    code = ("import time; t=time.perf_counter(); from dataclasses import replace; from pathlib import Path;"
            "from kb.core.settings import Settings; from kb.search.generation import Generation;"
            f"g=Generation.open(Settings().replace(kb_dir=Path({str(kb_dir)!r}))); g.retriever.search('专利质押');"
            "print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testset", type=Path, default=TESTSETS / "sample.jsonl",
                        help="questions over the sample corpus (data/corpus)")
    parser.add_argument("--shared-testset", type=Path, default=TESTSETS / "shared-pdfs.jsonl",
                        help="questions over the shared PDFs, searched in a KB of all documents")
    parser.add_argument("--size", type=int, default=10_000, help="chunks in the large knowledge base")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    questions = load_testset(args.testset)
    queries = [q.question for q in questions]
    figures: dict[str, object] = {}
    tmp = Path(tempfile.mkdtemp(prefix="ipkb-bench-"))
    try:
        # --- sample knowledge base, cold embedding cache
        settings = Settings().replace(kb_dir=tmp / "sample", embed_cache=tmp / "cache.sqlite")
        start = time.perf_counter()
        report = build([SAMPLE], settings, progress=False)
        figures["build_s"] = time.perf_counter() - start
        figures["build_chunks"] = report.embedded
        start = time.perf_counter()
        build([SAMPLE], settings, rebuild=True, progress=False)
        figures["rebuild_warm_cache_s"] = time.perf_counter() - start
        figures["startup_s"] = startup_seconds(settings.store.kb_dir)

        rss_before = rss_mb()
        generation = Generation.open(settings)
        retriever = generation.retriever
        embedder, ocr = E5Embeddings(), OcrEngine()
        figures["quality"] = ablation(retriever, questions, [SAMPLE], embedder, ocr)
        figures["latency_sample_ms"] = {mode: latencies(retriever, queries, mode) for mode in MODES}
        query_ms = []
        for q in queries:
            start = time.perf_counter()
            embedder.encode_query(q)
            query_ms.append((time.perf_counter() - start) * 1000)
        figures["query_embedding_ms"] = query_ms
        figures["sample_index_mb"] = folder_mb(generation.path)
        figures["sample_chunks"] = retriever.size
        figures["sample_rss_mb"] = rss_mb() - rss_before

        # --- large knowledge base
        source = settings.replace(kb_dir=tmp / "source")
        corpus = [SAMPLE] + ([SHARED_PDF] if SHARED_PDF.is_dir() else [])
        build(corpus, source, progress=False)
        if SHARED_PDF.is_dir() and args.shared_testset.is_file():
            everything = Generation.open(source, generation.models).retriever
            files = [SAMPLE] + sorted(SHARED_PDF.glob("*.pdf"))
            figures["quality_shared"] = ablation(everything, load_testset(args.shared_testset), files, embedder, ocr)
        large = settings.replace(kb_dir=tmp / "large")
        figures["large_index_s"] = build_large(source.store.kb_dir, large, args.size, settings.embed_cache_path)
        rss_before = rss_mb()
        start = time.perf_counter()
        big_generation = Generation.open(large, generation.models)
        big = big_generation.retriever
        figures["large_open_s"] = time.perf_counter() - start
        figures["large_chunks"] = big.size
        figures["latency_large_ms"] = {mode: latencies(big, queries, mode, rounds=3) for mode in MODES}
        figures["large_index_mb"] = folder_mb(big_generation.path)
        figures["large_rss_mb"] = rss_mb() - rss_before
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    answerable = sum(q.answerable for q in questions)
    print(f"test set: {args.testset.relative_to(REPO) if args.testset.is_relative_to(REPO) else args.testset} "
          f"({len(questions)} questions, {answerable} answerable), embedder e5\n")
    print_quality("sample corpus (1 document, 15 chunks):", figures["quality"])
    if "quality_shared" in figures:
        print_quality(f"\nshared PDFs + sample ({args.shared_testset.name}, "
                      f"{sum(q.answerable for q in load_testset(args.shared_testset))} answerable, all 7 documents):",
                      figures["quality_shared"])
    qe = figures["query_embedding_ms"]
    print(f"\nbaseline: e5 query embedding alone   p50 {percentile(qe, 50):6.1f} ms   p95 {percentile(qe, 95):6.1f} ms")
    for label, key, chunks in (("sample KB", "latency_sample_ms", figures["sample_chunks"]),
                               ("large KB", "latency_large_ms", figures["large_chunks"])):
        for mode, values in figures[key].items():
            p50, p95 = percentile(values, 50), percentile(values, 95)
            print(f"search {mode:<7} {label} ({chunks:>5} chunks)  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms"
                  f"   p50 {p50 / percentile(qe, 50):.2f}x query embedding")
    print(f"\nindex build, sample corpus, cold cache:  {figures['build_s']:.2f} s ({figures['build_chunks']} chunks embedded)")
    print(f"rebuild with warm embedding cache:        {figures['rebuild_warm_cache_s']:.2f} s "
          f"({figures['rebuild_warm_cache_s'] / figures['build_s']:.2f}x cold)")
    print(f"start-up (fresh process, open + model + 1 search): {figures['startup_s']:.2f} s")
    print(f"index size: sample {figures['sample_index_mb']:.2f} MB, large {figures['large_index_mb']:.1f} MB")
    print(f"large KB: indexing {figures['large_index_s']:.1f} s (BM25 tokenising + FAISS, vectors given), "
          f"open {figures['large_open_s']:.2f} s")
    print(f"resident memory: sample KB +{figures['sample_rss_mb']:.0f} MB, large KB +{figures['large_rss_mb']:.0f} MB, "
          f"process peak {figures['peak_rss_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
