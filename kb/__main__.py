"""Command line for hotline lookup and answers.

    python -m kb search "问题" [--k 10] [--json] [--kb DIR] [--mode hybrid|dense|bm25|rrf] [filters]
    python -m kb ask "问题" [--json] [--kb DIR] [filters]
    python -m kb curated add|list|export|import|delete … [--kb DIR]   curated answers (标准口径, kb/curated)

Filters: [--type 答复] [--issuer 市场监督管理局] [--from 2019-01-01] [--to 2019-12-31] [--file NAME].
`search --json` prints {"query": str, "passages": [passage, …]}; `ask --json` prints the
Answer JSON. Both shapes are documented in docs/api.md and kept stable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from kb.answer.answerer import Answerer  # noqa: E402
from kb.core.citations import source_line  # noqa: E402
from kb.core.errors import IpkbError  # noqa: E402
from kb.core.places import Places  # noqa: E402
from kb.core.profile import LEVELS, STATUSES  # noqa: E402
from kb.core.settings import load_settings  # noqa: E402
from kb.curated import cli as curated_cli  # noqa: E402
from kb.search.filters import Filters  # noqa: E402
from kb.search.generation import Generation  # noqa: E402
from kb.search.retriever import MODES  # noqa: E402


def _settings(args: argparse.Namespace):
    settings = load_settings()
    return settings.replace(kb_dir=args.kb) if args.kb else settings


def _filters(args: argparse.Namespace, places: Places | None = None) -> Filters:
    region: tuple[str, ...] = ()
    if args.command == "search" and args.region:  # `ask` takes the asker's place instead (the question may name another)
        region = (places or Places()).normalise(args.region) or ()
        if not region:
            raise IpkbError(f"unknown place: {args.region}")
    return Filters(doc_types=tuple(args.type), issuers=tuple(args.issuer), date_from=args.date_from,
                   date_to=args.date_to, files=tuple(args.file), levels=tuple(args.level),
                   statuses=tuple(args.status), region=region)


def _ask(args: argparse.Namespace) -> int:
    answerer = Answerer.open(_settings(args))
    try:
        if args.json:
            result = answerer.answer(args.question, filters=_filters(args), region=args.region or "")
            print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
            return 0
        result = None
        for event in answerer.stream(args.question, filters=_filters(args), region=args.region or ""):
            if isinstance(event, str):
                print(event, end="", flush=True)  # LLM answers stream
            else:
                result = event
    finally:
        answerer.close()
    if result.answerer == "llm" and not result.refused:
        print("\n")
    for notice in result.notices:
        print(f"【提示】{notice}")
    print(result.answer)
    if result.refused and result.passages:
        print("\n最接近的段落（供参考）：")
        for p in result.passages[:3]:
            print(f"[{p.rank}] {source_line(p)}")
    return 0


def _search(args: argparse.Namespace) -> int:
    filters = _filters(args)
    retriever = Generation.open(_settings(args)).retriever
    passages = retriever.search(args.query, k=args.k, filters=filters, mode=args.mode)
    if args.json:
        print(json.dumps({"query": args.query, "passages": [p.to_json() for p in passages]},
                         ensure_ascii=False, indent=2))
        return 0
    if not passages:
        print("没有找到相关段落。")
    for p in passages:
        print(f"[{p.rank}] {source_line(p)}  (score {p.score:.4f})")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kb", description="Search the IPKB knowledge base, or ask it.")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="ranked passages for a question, with their sources")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=10, help="number of passages (default 10)")
    search.add_argument("--json", action="store_true", help="print JSON: {query, passages}")
    search.add_argument("--mode", choices=MODES, default="hybrid")
    ask = commands.add_parser("ask", help="an answer with citations (extractive, or the configured LLM)")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the Answer JSON")
    for command in (search, ask):
        command.add_argument("--kb", type=Path, help="knowledge-base folder (default: IPKB_KB_DIR or .kb)")
        command.add_argument("--type", action="append", default=[], help="document type, e.g. 答复 (repeatable)")
        command.add_argument("--issuer", action="append", default=[], help="发文机关, substring (repeatable)")
        command.add_argument("--from", dest="date_from", help="成文日期 on or after, yyyy-mm-dd")
        command.add_argument("--to", dest="date_to", help="成文日期 on or before, yyyy-mm-dd")
        command.add_argument("--file", action="append", default=[], help="file name or document id (repeatable)")
        command.add_argument("--level", action="append", default=[], choices=LEVELS, help="document level (repeatable)")
        command.add_argument("--status", action="append", default=[], choices=STATUSES,
                             help="document status, e.g. 现行有效 (repeatable)")
        command.add_argument("--region", help="the asker's place, e.g. 宁波市: documents that apply there")
    curated_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "search" and args.k < 1:
        parser.error("--k must be at least 1")
    try:
        if args.command == "curated":
            return curated_cli.run(args, _settings(args))
        return _search(args) if args.command == "search" else _ask(args)
    except IpkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
