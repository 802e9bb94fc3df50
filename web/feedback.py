"""👍/👎 feedback on answers, in SQLite in the knowledge-base folder (kept across rebuilds)."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

MAX_COMMENT = 2000

_SCHEMA = """CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    citations TEXT NOT NULL, vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), comment TEXT NOT NULL DEFAULT ''
)"""


class FeedbackStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, question: str, answer: str, citations: list[dict], vote: int, comment: str = "") -> int:
        if vote not in (-1, 1):
            raise ValueError("vote must be 1 (👍) or -1 (👎)")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO feedback (time, question, answer, citations, vote, comment) VALUES (?,?,?,?,?,?)",
                (time.strftime("%Y-%m-%dT%H:%M:%S%z"), question, answer, json.dumps(citations, ensure_ascii=False),
                 vote, (comment or "")[:MAX_COMMENT]))
            self._db.commit()
            return int(cursor.lastrowid)

    def all(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, time, question, answer, citations, vote, comment FROM feedback "
                                    "ORDER BY id").fetchall()
        return [{"id": r[0], "time": r[1], "question": r[2], "answer": r[3], "citations": json.loads(r[4]),
                 "vote": r[5], "comment": r[6]} for r in rows]

    def close(self) -> None:
        self._db.close()
