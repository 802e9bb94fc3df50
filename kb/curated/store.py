"""The curated answers of a knowledge base: SQLite in the knowledge-base folder, beside the generations
(`curated.sqlite`), so entries survive re-indexing. Several app workers may write it: WAL mode, and each
connection waits for the write lock. Also how often each entry and each document was cited (hit tracking)."""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from kb.core.errors import KbError
from kb.curated.records import CuratedEntry, CuratedSource

FILE_NAME = "curated.sqlite"
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, question TEXT NOT NULL, variants TEXT NOT NULL, answer TEXT NOT NULL,
    sources TEXT NOT NULL, approved_by TEXT NOT NULL, approved_at TEXT NOT NULL, review_date TEXT NOT NULL DEFAULT '',
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS document_hits (file TEXT PRIMARY KEY, hits INTEGER NOT NULL DEFAULT 0);
"""


def _entry(row: tuple) -> CuratedEntry:
    return CuratedEntry(
        id=row[0], question=row[1], variants=tuple(json.loads(row[2])), answer=row[3],
        sources=tuple(CuratedSource(**s) for s in json.loads(row[4])), approved_by=row[5], approved_at=row[6],
        review_date=row[7], hits=row[8])


def _row(entry: CuratedEntry) -> tuple:
    return (entry.question.strip(), json.dumps([v.strip() for v in entry.variants if v.strip()], ensure_ascii=False),
            entry.answer.strip(),
            json.dumps([{"file": s.file, "quote": s.quote, "hash": s.hash} for s in entry.sources], ensure_ascii=False),
            entry.approved_by.strip(), entry.approved_at, entry.review_date or "")


def validate(entry: CuratedEntry) -> None:
    """What every stored entry has: a question, an answer, at least one source, an approver."""
    missing = [name for name, value in (("question", entry.question), ("answer", entry.answer),
                                        ("approved_by", entry.approved_by), ("approved_at", entry.approved_at))
               if not (value or "").strip()]
    if not entry.sources:
        missing.append("sources")
    if missing:
        raise KbError(f"标准口径缺少：{', '.join(missing)}")


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite file of the knowledge-base folder, shared by the app's threads: WAL, and a writer waits
    BUSY_TIMEOUT_S for another instead of failing. Creates the file and its tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(schema)
    return db


class CuratedStore:
    """Entries by id. `path`: the SQLite file (created on the first write, not by reading)."""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, kb_dir: Path) -> CuratedStore:
        return cls(Path(kb_dir) / FILE_NAME)

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.exists():
                return None
            self._db = open_db(self.path, _SCHEMA)
        return self._db

    def entries(self) -> list[CuratedEntry]:
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return []
            rows = db.execute("SELECT id, question, variants, answer, sources, approved_by, approved_at, review_date, "
                              "hits FROM entries ORDER BY id").fetchall()
        return [_entry(r) for r in rows]

    def get(self, entry_id: int) -> CuratedEntry | None:
        return next((e for e in self.entries() if e.id == entry_id), None)

    def add(self, entry: CuratedEntry) -> int:
        return self.add_many([entry])[0]

    def add_many(self, entries: Iterable[CuratedEntry]) -> list[int]:
        """All or none, in one transaction; their ids."""
        entries = list(entries)
        for entry in entries:
            validate(entry)
        with self._lock:
            db = self._connect(create=True)
            with db:
                return [int(db.execute("INSERT INTO entries (question, variants, answer, sources, approved_by, "
                                       "approved_at, review_date) VALUES (?,?,?,?,?,?,?)", _row(e)).lastrowid)
                        for e in entries]

    def update(self, entry: CuratedEntry) -> None:
        validate(entry)
        with self._lock:
            db = self._connect(create=True)
            with db:
                changed = db.execute("UPDATE entries SET question=?, variants=?, answer=?, sources=?, approved_by=?, "
                                     "approved_at=?, review_date=? WHERE id=?", (*_row(entry), entry.id)).rowcount
        if not changed:
            raise KbError(f"没有这个标准口径：{entry.id}")

    def delete(self, entry_id: int) -> bool:
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return False
            with db:
                return db.execute("DELETE FROM entries WHERE id = ?", (entry_id,)).rowcount > 0

    # --- hit tracking
    def count_hit(self, entry_id: int | None, files: Iterable[str]) -> None:
        """One answer served: the curated entry it gave (if any) and the documents it cited, once each."""
        files = sorted(set(files))
        if entry_id is None and not files:
            return
        with self._lock:
            db = self._connect(create=True)
            with db:
                if entry_id is not None:
                    db.execute("UPDATE entries SET hits = hits + 1 WHERE id = ?", (entry_id,))
                db.executemany("INSERT INTO document_hits (file, hits) VALUES (?, 1) "
                               "ON CONFLICT(file) DO UPDATE SET hits = hits + 1", [(f,) for f in files])

    def document_hits(self) -> dict[str, int]:
        with self._lock:
            db = self._connect(create=False)
            rows = db.execute("SELECT file, hits FROM document_hits").fetchall() if db else []
        return dict(rows)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
