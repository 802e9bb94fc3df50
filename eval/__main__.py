"""Command line:

    python -m eval run --testset FILE [--kb DIR] [--out DIR] [--no-ablation] [--floors eval/floors.toml]
    python -m eval compare OLD_DIR NEW_DIR
    python -m eval train-ranker [--work DIR] [--out kb/resources/ranker.txt | --no-write] [--json FILE] [--min-gain G]
    python -m eval train-decision [--set NAME=TESTSET:CORPUS[,CORPUS]]… [--work DIR]
                                  [--out kb/resources/decision.json | --no-write] [--json FILE]

`run` exits 1 when `--floors` is given and a metric is outside its limit; `compare` exits 1
when the new run regresses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from eval.compare import compare  # noqa: E402
from eval.gate import check  # noqa: E402
from eval.runner import run  # noqa: E402
from kb.core.errors import IpkbError  # noqa: E402
from kb.core.settings import load_settings  # noqa: E402


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.kb:
        settings = settings.replace(kb_dir=args.kb)
    out = args.out or Path("eval-runs") / time.strftime("%Y%m%d-%H%M%S")
    metrics = run(settings, args.testset, out, ablation=not args.no_ablation, show_bar=not args.quiet)
    r, a, f = metrics["retrieval"], metrics["answers"], metrics["refusals"]
    print(f"{metrics['questions']} questions -> {out}")
    print(f"  retrieval  hit@1 {r['hit@1']:.3f}  hit@3 {r['hit@3']:.3f}  hit@5 {r['hit@5']:.3f}  MRR@10 {r['MRR@10']:.3f}")
    print(f"  answers    keypoint recall {a['keypoint_recall']:.3f}  citation precision {a['citation_precision']:.3f}"
          f"  all keypoints {a['all_keypoints']:.3f}")
    print(f"  refusals   refusal recall {f['refusal_recall']:.3f}  false-refusal rate {f['false_refusal_rate']:.3f}")
    lat = metrics["latency_ms"]["total"]
    print(f"  latency    total p50 {lat['p50']:.1f} ms  p95 {lat['p95']:.1f} ms")
    print(f"  report     {out / 'report.html'}")
    if args.floors:
        failures = check(metrics, args.floors)
        for line in failures:
            print(f"BELOW FLOOR: {line}", file=sys.stderr)
        if failures:
            return 1
        print(f"  all metrics within {args.floors}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description="Evaluate IPKB on a test set.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="answer every question, score, write results and a report")
    run_cmd.add_argument("--testset", type=Path, required=True, help="JSONL test set (eval/testsets/README.md)")
    run_cmd.add_argument("--kb", type=Path, help="knowledge-base folder (default: IPKB_KB_DIR or .kb)")
    run_cmd.add_argument("--out", type=Path, help="output folder (default: eval-runs/<time>)")
    run_cmd.add_argument("--no-ablation", action="store_true", help="only the configured pipeline")
    run_cmd.add_argument("--floors", type=Path, help="fail (exit 1) when a metric is outside these limits")
    run_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    rank_cmd = commands.add_parser("train-ranker", help="train the learned ranker, report it against the fusions "
                                   "(cross-validated, train-on-one/test-on-another), write its model file")
    rank_cmd.add_argument("--work", type=Path, default=Path(".ranker-work"),
                          help="knowledge bases, embedding caches and features (reused by reruns)")
    rank_cmd.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kb" / "resources" / "ranker.txt",
                          help="model file to write (default: the packaged kb/resources/ranker.txt)")
    rank_cmd.add_argument("--no-write", action="store_true", help="report only")
    rank_cmd.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    rank_cmd.add_argument("--min-gain", type=float, metavar="G",
                          help="exit 1 when the lecoqa CV is less than G above RRF 1:1 on hit@1 or MRR@10, or any "
                               "cross-set split is below RRF 1:1 (`make bench-ranker`: 0.06)")
    dec_cmd = commands.add_parser("train-decision", help="train the answer-or-refuse decision, report it against "
                                  "the rules (cross-validated, each set held out), write its model file")
    dec_cmd.add_argument("--set", action="append", dest="sets", metavar="NAME=TESTSET:CORPUS[,CORPUS]",
                         help="a labelled test set and the corpus it is asked of (repeatable; default: sample over "
                              "the letter and the bundled corpus, policies over the letter with the policies and "
                              "over the bundled corpus, the library's questions over the bundled corpus)")
    dec_cmd.add_argument("--work", type=Path, default=Path(".decision-work"), help="knowledge bases and caches")
    dec_cmd.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kb" / "resources" / "decision.json",
                         help="model file to write (default: the packaged kb/resources/decision.json)")
    dec_cmd.add_argument("--no-write", action="store_true", help="report only")
    dec_cmd.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    cmp_cmd = commands.add_parser("compare", help="differences between two runs, regressions marked")
    cmp_cmd.add_argument("old", type=Path)
    cmp_cmd.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            lines, regressions = compare(args.old, args.new)
            print("\n".join(lines))
            return 1 if regressions else 0
        if args.command == "train-ranker":
            from eval.train_ranker import run_training

            report = run_training(load_settings(), args.work, None if args.no_write else args.out)
            if args.json:
                args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
            if args.min_gain is not None:
                from eval.ranker_acceptance import shortfalls

                missed = shortfalls(report, args.min_gain)
                print("\n".join(["", *(f"SHORT: {m}" for m in missed)]) if missed else
                      f"\nlecoqa CV at least {args.min_gain:+.2f} over RRF 1:1 on hit@1 and MRR@10; no split below it")
                return 1 if missed else 0
            return 0
        if args.command == "train-decision":
            from eval.train_decision import run_training as train_decision

            report = train_decision(load_settings(), args.work, None if args.no_write else args.out, args.sets)
            if args.json:
                args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
            return 0
        return _run(args)
    except IpkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
