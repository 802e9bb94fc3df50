"""Feedback from several app workers at once: every vote written by every process is kept."""
from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from web.feedback import FeedbackStore

PROCESSES, WRITES = 4, 40


def _write_votes(path: str, writer: int, start) -> None:
    store = FeedbackStore(Path(path))
    start.wait()
    for n in range(WRITES):
        store.add(f"问题 {writer}-{n}", "答案" * 50, [{"doc_number": "甬市监函〔2019〕25号"}], 1 if n % 2 else -1,
                  f"进程 {writer}")
    store.close()


def test_concurrent_processes_lose_no_feedback(tmp_path):
    path = tmp_path / "feedback.sqlite"
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=_write_votes, args=(str(path), w, start)) for w in range(PROCESSES)]
    for p in processes:
        p.start()
    start.set()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    rows = FeedbackStore(path).all()
    assert len(rows) == PROCESSES * WRITES
    assert {r["question"] for r in rows} == {f"问题 {w}-{n}" for w in range(PROCESSES) for n in range(WRITES)}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_locked_database_is_waited_for(tmp_path):
    """A write that finds another connection holding the write lock waits for it, then succeeds."""
    path = tmp_path / "feedback.sqlite"
    store = FeedbackStore(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO feedback (time, question, answer, citations, vote) VALUES ('t', 'q', 'a', '[]', 1)")
    import threading

    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    assert store.add("问题", "答案", [], 1) == 2
    timer.join()
    assert len(store.all()) == 2
