"""The knowledge-base folder: documents and chunks in SQLite, a JSON manifest.

Layout:

    .kb/
      current -> gen-20261128-073000-1a2b   symlink, swapped atomically after a build
      gen-…/manifest.json                   format version, embedder, per-file hashes
      gen-…/kb.sqlite                       documents, chunks (with their sentence spans)
      gen-…/rows.json, vectors.faiss, bm25.json   search indexes (kb/store/indexes.py), or with the
                                            milvus store rows.json, lexicon.json and a collection
      milvus.db                             milvus-lite's data, when that store is used without a server
      embed-cache.sqlite                    embeddings by (embedder, text hash), kept across builds
      build.lock                            one build at a time

A build writes a new generation folder and only then swaps `current` (with the milvus store,
the collection alias first: that is its commit point), so a build that is interrupted, even
by SIGKILL, leaves the previous knowledge base intact and loadable.
No pickle anywhere.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from kb.core.errors import BuildBusyError, KbError
from kb.core.profile import DocumentProfile
from kb.core.records import Chunk, Document, DocumentMeta

FORMAT_VERSION = 3  # 2: search indexes and the embedder's dimension; 3: document profiles, chunks' sentence spans
MANIFEST = "manifest.json"
DATABASE = "kb.sqlite"
CURRENT = "current"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source_path TEXT NOT NULL, file_name TEXT NOT NULL,
    kind TEXT NOT NULL, content_hash TEXT NOT NULL, meta TEXT NOT NULL, text TEXT NOT NULL,
    page_count INTEGER NOT NULL, ocr_pages TEXT NOT NULL, encoding TEXT, profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL, heading_path TEXT NOT NULL, pages TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, search_text TEXT NOT NULL,
    sentences TEXT NOT NULL  -- JSON [[start, end], …]: the chunk's sentences, offsets in text
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, ordinal);
"""



@dataclass
class FileEntry:
    doc_id: str
    content_hash: str
    size: int


@dataclass
class Manifest:
    format_version: int = FORMAT_VERSION
    embedder: str = ""  # id of the vector space (kb/models/embeddings.py: embedder_id)
    dimension: int = 0
    store: str = "local"  # where its search indexes are: "local" files or "milvus"
    created_at: str = ""
    files: dict[str, FileEntry] = field(default_factory=dict)  # source path -> entry

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        raw["files"] = {k: FileEntry(**v) for k, v in raw.get("files", {}).items()}
        return cls(**raw)


def _chunk_from_row(row: sqlite3.Row) -> Chunk:
    return Chunk(
        chunk_id=row["chunk_id"], doc_id=row["doc_id"], ordinal=row["ordinal"],
        heading_path=json.loads(row["heading_path"]), pages=json.loads(row["pages"]),
        start=row["start"], end=row["end"], text=row["text"], search_text=row["search_text"],
        sentences=[(start, end) for start, end in json.loads(row["sentences"])],
    )


def _document_from_row(row: sqlite3.Row, chunks: list[Chunk]) -> Document:
    return Document(
        doc_id=row["doc_id"], source_path=row["source_path"], file_name=row["file_name"],
        kind=row["kind"], content_hash=row["content_hash"], meta=DocumentMeta(**json.loads(row["meta"])),
        text=row["text"], page_count=row["page_count"], ocr_pages=json.loads(row["ocr_pages"]),
        encoding=row["encoding"], chunks=chunks, profile=DocumentProfile.from_json(json.loads(row["profile"])),
    )


class KnowledgeBase:
    """A read-only view of one generation of the knowledge base."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest
        uri = f"file:{(path / DATABASE).resolve()}?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def documents(self) -> list[Document]:
        """All documents, without their chunks (use `chunks(doc_id)` for those)."""
        rows = self._db.execute("SELECT * FROM documents ORDER BY file_name").fetchall()
        return [_document_from_row(r, []) for r in rows]

    def document(self, doc_id: str) -> Document | None:
        row = self._db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return _document_from_row(row, self.chunks(doc_id)) if row else None

    def chunks(self, doc_id: str | None = None) -> list[Chunk]:
        if doc_id is None:
            rows = self._db.execute("SELECT * FROM chunks ORDER BY doc_id, ordinal")
        else:
            rows = self._db.execute("SELECT * FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,))
        return [_chunk_from_row(r) for r in rows]

    def count(self) -> tuple[int, int]:
        """(documents, chunks)"""
        docs = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return docs, chunks


def current_generation(kb_dir: Path) -> Path | None:
    link = kb_dir / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def open_kb(kb_dir: Path, generation: Path | None = None) -> KnowledgeBase:
    """The current generation, or the one given (the milvus store's alias names it)."""
    generation = generation or current_generation(kb_dir)
    if generation is None:
        raise KbError(f"no knowledge base in {kb_dir}: build one with `python -m ingest --kb {kb_dir}`")
    try:
        manifest = Manifest.from_json((generation / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        raise KbError(f"unreadable manifest in {generation}: {exc}; rebuild with `python -m ingest --rebuild`") from None
    if manifest.format_version != FORMAT_VERSION:
        raise KbError(
            f"{kb_dir} has format {manifest.format_version}, this IPKB reads {FORMAT_VERSION}: "
            "rebuild with `python -m ingest --rebuild`"
        )
    return KnowledgeBase(generation, manifest)


class GenerationWriter:
    """Builds the next generation in its own folder; `commit` makes it current."""

    def __init__(self, kb_dir: Path, previous: Path | None, manifest: Manifest):
        self.kb_dir = kb_dir
        self.previous = previous
        self.manifest = manifest
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = kb_dir / f"gen-{stamp}-{uuid.uuid4().hex[:6]}"
        self.path.mkdir()
        if previous is not None:
            shutil.copy2(previous / DATABASE, self.path / DATABASE)
        self.db = sqlite3.connect(self.path / DATABASE)
        self.published = False  # past the store's commit point: readers may open it, abort keeps it
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(_SCHEMA)

    def put_document(self, doc: Document) -> None:
        self.delete_document(doc.doc_id)
        self.db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.source_path, doc.file_name, doc.kind, doc.content_hash,
             json.dumps(doc.meta.to_dict(), ensure_ascii=False), doc.text, doc.page_count,
             json.dumps(doc.ocr_pages), doc.encoding, json.dumps(doc.profile.to_json(), ensure_ascii=False)),
        )
        self.db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(c.chunk_id, c.doc_id, c.ordinal, json.dumps(c.heading_path, ensure_ascii=False),
              json.dumps(c.pages), c.start, c.end, c.text, c.search_text, json.dumps(c.sentences))
             for c in doc.chunks],
        )

    def chunks(self) -> list[Chunk]:
        """Every chunk of the generation being written, in document order."""
        self.db.row_factory = sqlite3.Row
        try:
            return [_chunk_from_row(r) for r in self.db.execute("SELECT * FROM chunks ORDER BY doc_id, ordinal")]
        finally:
            self.db.row_factory = None

    def documents(self) -> list[Document]:
        """Every document of the generation being written, without chunks."""
        self.db.row_factory = sqlite3.Row
        try:
            return [_document_from_row(r, []) for r in self.db.execute("SELECT * FROM documents ORDER BY doc_id")]
        finally:
            self.db.row_factory = None

    def delete_document(self, doc_id: str) -> None:
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def commit(self, publish: Callable[[Path], None] | None = None) -> Path:
        """Write the manifest, flush to disk, `publish` (a store's own commit point, e.g. Milvus's
        alias), then atomically point `current` here."""
        self.db.commit()
        self.db.close()
        self.manifest.created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        (self.path / MANIFEST).write_text(self.manifest.to_json(), encoding="utf-8")
        for name in (DATABASE, MANIFEST):
            with open(self.path / name, "rb") as fh:
                os.fsync(fh.fileno())
        if publish is not None:
            publish(self.path)
            self.published = True
        point_current(self.kb_dir, self.path)
        # Open readers of older generations keep working: their files stay until closed.
        for old in self.kb_dir.glob("gen-*"):
            if old != self.path:
                shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        self.db.close()
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)


def point_current(kb_dir: Path, generation: Path) -> None:
    """Atomically point `current` at the generation folder."""
    tmp_link = kb_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    tmp_link.symlink_to(generation.name)
    os.replace(tmp_link, kb_dir / CURRENT)
    _fsync_dir(kb_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def build_lock(kb_dir: Path, recover: Callable[[], None] | None = None) -> Iterator[None]:
    """One build at a time, across processes (an flock on build.lock: the app's workers, `python -m ingest`);
    also clears generations left behind by interrupted builds, after `recover` (a store's own
    clean-up, which may repoint `current`) has run under the lock."""
    kb_dir.mkdir(parents=True, exist_ok=True)
    with open(kb_dir / "build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildBusyError(f"another build is running on {kb_dir}") from None
        if recover is not None:
            recover()
        current = current_generation(kb_dir)
        for stale in kb_dir.glob("gen-*"):
            if stale.is_dir() and stale.resolve() != current:
                shutil.rmtree(stale, ignore_errors=True)
        for stale in kb_dir.glob(f".{CURRENT}.*"):
            stale.unlink(missing_ok=True)
        yield


def read_manifest(kb_dir: Path) -> tuple[Path | None, Manifest]:
    """The current generation and its manifest, or (None, empty manifest) for a new KB."""
    generation = current_generation(kb_dir)
    if generation is None:
        return None, Manifest()
    kb = open_kb(kb_dir)
    kb.close()
    return generation, kb.manifest
