"""One file from disk to a cleaned, described, chunked Document."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from ingest.catalogue import apply_entry, catalogue_entry, entry_hash
from ingest.chunking import chunk_document
from ingest.clean import clean_pages
from ingest.loaders import Limits, load
from ingest.metadata import doc_type_of, extract_metadata, law_elements
from ingest.ocr import OcrEngine
from ingest.profile import profile_document
from ingest.sandbox import PdfSandbox
from ingest.records import CleanText
from kb.core.places import Places
from kb.core.records import Document


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def doc_id_for(source: str) -> str:
    """Stable per source path, so a changed file replaces its own chunks."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def source_key(path: Path) -> str:
    return str(path.resolve())


def process_file(
    path: Path,
    *,
    max_bytes: int,
    ocr: OcrEngine | None,
    content_hash: str | None = None,
    on_page: Callable[[int, int], None] | None = None,
    places: Places | None = None,
    limits: Limits | None = None,
    sandbox: PdfSandbox | None = None,
) -> tuple[Document, CleanText]:
    """Load, clean, describe and chunk one file. Raises LoadError for bad input. With `sandbox`, a PDF
    is read in its memory-limited child process (ingest/sandbox.py)."""
    if sandbox is not None and path.suffix.lower() == ".pdf":
        raw = sandbox.load(path, max_bytes=max_bytes, limits=limits or Limits(), on_page=on_page)
    else:
        raw = load(path, max_bytes=max_bytes, ocr=ocr, on_page=on_page, limits=limits)
    clean = clean_pages([p.text for p in raw.pages], first_page=raw.pages[0].number if raw.pages else 1,
                        authored=raw.kind == "md")
    meta = extract_metadata(clean.text, path.name, raw.file_title)
    if raw.kind == "md" and raw.file_title:  # a Markdown file's level-1 heading is its title
        meta.title = raw.file_title
        meta.doc_type = doc_type_of(meta.title)
    places = places or Places()
    entry = catalogue_entry(path)
    if "title" in entry:  # the profile reads the title: give it the right one
        meta.title = str(entry["title"])
        meta.doc_type = doc_type_of(meta.title)
    meta = law_elements(meta, raw.header, places)
    profile = profile_document(meta.title, meta.issuer, clean.text, path.name, meta.doc_type, places,
                               header=raw.header)
    meta, profile = apply_entry(entry, meta, profile, places)
    key = source_key(path)
    doc_id = doc_id_for(key)
    return (
        Document(
            doc_id=doc_id,
            source_path=key,
            file_name=path.name,
            kind=raw.kind,
            content_hash=content_hash or entry_hash(file_hash(path), entry),
            meta=meta,
            text=clean.text,
            page_count=len(raw.pages),
            ocr_pages=[p.number for p in raw.pages if p.ocr],
            encoding=raw.encoding,
            chunks=chunk_document(doc_id, meta.title, clean, paged=raw.kind == "pdf"),
            profile=profile,
        ),
        clean,
    )
