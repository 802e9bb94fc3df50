"""`python -m kb curated add|list|export|import|delete`: curated answers (标准口径) from the command line."""
from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

from kb.core.errors import KbError
from kb.core.settings import Settings
from kb.curated.documents import current_documents
from kb.curated.exchange import check_quotes, read_entries, write_entries
from kb.curated.records import FLAG_LABELS, CuratedEntry, CuratedSource
from kb.curated.sources import entry_flags
from kb.curated.store import CuratedStore


def add_parser(commands) -> argparse.ArgumentParser:
    curated = commands.add_parser("curated", help="curated answers (标准口径): add, list, export, import, delete")
    actions = curated.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add one entry")
    add.add_argument("--question", required=True)
    add.add_argument("--variant", action="append", default=[], help="another way to ask (repeatable)")
    add.add_argument("--answer", required=True, help="the approved answer text")
    add.add_argument("--source", action="append", default=[], required=True, metavar="FILE::QUOTE",
                     help="a document's file name and text found in it, joined by :: (repeatable)")
    add.add_argument("--approved-by", required=True)
    add.add_argument("--approved-at", default="", help="yyyy-mm-dd (default today)")
    add.add_argument("--review-date", default="", help="yyyy-mm-dd: flagged 待复核 from then")
    listing = actions.add_parser("list", help="the entries, flagged (待复核) ones first")
    listing.add_argument("--json", action="store_true")
    for name in ("export", "import"):
        action = actions.add_parser(name, help=f"{name} entries: FILE.jsonl or FILE.xlsx")
        action.add_argument("file", type=Path)
    delete = actions.add_parser("delete", help="delete one entry")
    delete.add_argument("id", type=int)
    for action in (add, listing, delete, *(actions.choices[n] for n in ("export", "import"))):
        action.add_argument("--kb", type=Path, help="knowledge-base folder (default: IPKB_KB_DIR or .kb)")
    return curated


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = CuratedStore.of(settings.store.kb_dir)
    today = settings.answer.status_date or dt.date.today().isoformat()
    try:
        if args.action == "export":
            entries = store.entries()
            write_entries(entries, args.file)
            print(f"exported {len(entries)} entries to {args.file}")
        elif args.action == "delete":
            if not store.delete(args.id):
                raise KbError(f"no curated entry {args.id}")
            print(f"deleted {args.id}")
        elif args.action == "import":
            ids = store.add_many(read_entries(args.file, current_documents(settings), today))
            print(f"imported {len(ids)} entries: {', '.join(map(str, ids))}")
        elif args.action == "add":
            sources = []
            for raw in args.source:
                file, sep, quote = raw.partition("::")
                if not sep:
                    raise KbError(f"--source must be FILE::QUOTE: {raw}")
                sources.append(CuratedSource.make(file, quote))
            entry = CuratedEntry(question=args.question, variants=tuple(args.variant), answer=args.answer,
                                 sources=tuple(sources), approved_by=args.approved_by,
                                 approved_at=args.approved_at or today, review_date=args.review_date)
            if problems := check_quotes(entry, current_documents(settings)):
                raise KbError("; ".join(problems))
            print(f"added {store.add(entry)}")
        else:
            docs = current_documents(settings)
            entries = sorted((replace(e, flags=entry_flags(e, docs, today)) for e in store.entries()),
                             key=lambda e: (not e.flags, e.id))
            if args.json:
                print(json.dumps([e.to_json(with_state=True) for e in entries], ensure_ascii=False, indent=2))
            for e in [] if args.json else entries:
                state = "待复核：" + "；".join(FLAG_LABELS[f] for f in e.flags) if e.flags else "有效"
                print(f"[{e.id}] {e.question}  ({state}; {e.approved_by} {e.approved_at}; 命中 {e.hits})")
        return 0
    finally:
        store.close()
