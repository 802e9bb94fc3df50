"""👍/👎 feedback on answers, in SQLite in the knowledge-base folder (kept across rebuilds).

Several app workers (`--workers`) write the same file: it is in WAL mode (readers never block the
writer), each connection waits for the write lock (busy_timeout), and a write that still finds the
database locked is retried, so no vote is lost."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

MAX_COMMENT = 2000
BUSY_TIMEOUT_S = 10.0  # how long one statement waits for another process's write lock
RETRIES = 3  # then the write is tried again after a short pause, this many times

_SCHEMA = """CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    citations TEXT NOT NULL, vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), comment TEXT NOT NULL DEFAULT ''
)"""


def _retried(fn):
    """fn(), again after a pause while SQLite says the database is locked or busy."""
    for attempt in range(RETRIES + 1):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if attempt == RETRIES or not any(w in str(exc) for w in ("locked", "busy")):
                raise
            time.sleep(0.05 * 2 ** attempt)


class FeedbackStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _retried(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        _retried(lambda: self._db.execute(_SCHEMA))
        self._lock = threading.Lock()

    def add(self, question: str, answer: str, citations: list[dict], vote: int, comment: str = "") -> int:
        if vote not in (-1, 1):
            raise ValueError("vote must be 1 (👍) or -1 (👎)")
        row = (time.strftime("%Y-%m-%dT%H:%M:%S%z"), question, answer, json.dumps(citations, ensure_ascii=False),
               vote, (comment or "")[:MAX_COMMENT])

        def insert() -> int:
            try:
                with self._db:  # one transaction: committed, or rolled back before a retry
                    cursor = self._db.execute("INSERT INTO feedback (time, question, answer, citations, vote, "
                                              "comment) VALUES (?,?,?,?,?,?)", row)
                return int(cursor.lastrowid)
            except sqlite3.OperationalError:
                if self._db.in_transaction:
                    self._db.rollback()
                raise

        with self._lock:
            return _retried(insert)

    def all(self) -> list[dict]:
        with self._lock:
            rows = _retried(lambda: self._db.execute("SELECT id, time, question, answer, citations, vote, comment "
                                                     "FROM feedback ORDER BY id").fetchall())
        return [{"id": r[0], "time": r[1], "question": r[2], "answer": r[3], "citations": json.loads(r[4]),
                 "vote": r[5], "comment": r[6]} for r in rows]

    def close(self) -> None:
        self._db.close()
