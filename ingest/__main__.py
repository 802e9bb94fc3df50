"""Command line: build the knowledge base, or inspect how one file would be ingested.

    python -m ingest [PATHS...] [--kb DIR] [--rebuild] [--no-ocr]
    python -m ingest --inspect FILE
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ingest.build import build
from ingest.ocr import OcrEngine
from ingest.pipeline import process_file
from kb.core.errors import IpkbError, LoadError
from kb.core.settings import Settings, load_settings


def inspect(path: Path, settings: Settings) -> int:
    ocr = OcrEngine(scale=settings.ingest.ocr_scale) if settings.ingest.ocr else None
    try:
        doc, clean = process_file(path, max_bytes=settings.ingest.max_file_bytes, ocr=ocr)
    except LoadError as exc:
        print(f"cannot ingest {path}: {exc}", file=sys.stderr)
        return 1
    print(f"== {path}  ({doc.kind}, {doc.page_count} page(s), OCR pages: {doc.ocr_pages or 'none'}"
          f"{', encoding ' + doc.encoding if doc.encoding else ''})")
    print("\n== metadata")
    for name, value in dataclasses.asdict(doc.meta).items():
        print(f"  {name}: {value}")
    print("\n== profile (status: as of the knowledge base, see `python -m kb search --json`)")
    for name, value in doc.profile.to_json().items():
        if name != "status":
            print(f"  {name}: {value}")
    print("\n== cleaned text (page starts: " + ", ".join(f"p{n}@{o}" for o, n in clean.page_starts) + ")")
    print(doc.text)
    print(f"\n== {len(doc.chunks)} chunks")
    for c in doc.chunks:
        path_text = " > ".join(c.heading_path) or "(no heading)"
        print(f"\n-- {c.chunk_id}  pages {c.pages}  chars {c.start}-{c.end} ({len(c.text)})  {path_text}")
        print(c.text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Build the IPKB knowledge base.")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the configured corpus, data/corpus)")
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: IPKB_KB_DIR or .kb)")
    parser.add_argument("--rebuild", action="store_true", help="ignore the existing knowledge base and ingest everything again")
    parser.add_argument("--no-ocr", action="store_true", help="do not OCR PDF pages without a text layer")
    parser.add_argument("--inspect", type=Path, metavar="FILE", help="print one file's cleaned text, metadata and chunks")
    parser.add_argument("--json", action="store_true", help="print the build report as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except IpkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    overrides = {"kb_dir": args.kb} if args.kb else {}
    if args.no_ocr:
        overrides["ocr"] = False
    settings = settings.replace(**overrides)
    if args.inspect:
        return inspect(args.inspect, settings)
    report = build(args.paths or settings.ingest.corpus, settings, rebuild=args.rebuild, progress=not args.quiet)
    if args.json:
        print(json.dumps({"kb_dir": str(report.kb_dir), "results": [dataclasses.asdict(r) for r in report.results]},
                         ensure_ascii=False, indent=2))
    else:
        print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
