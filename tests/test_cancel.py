"""Cancelling a build stops it within one embedding batch, leaves the knowledge base as it was, and
reports only what it cancelled: an unchanged file is "unchanged", never "failed" (ingest/build.py)."""
from __future__ import annotations

import shutil

import pytest
from tests_support import REPLY_LETTER

from ingest.build import build
from kb.core.settings import Settings
from kb.store.generations import current_generation

pytestmark = pytest.mark.slow


def _long_text(tag: str, articles: int = 80) -> str:
    """A regulation of `articles` distinct articles: chunks no cache has seen."""
    body = "\n".join(f"第{i}条 {tag}号文件规定，第{i}类专利事项由市知识产权局在{i}个工作日内办结，并向申请人书面说明理由。"
                     for i in range(1, articles + 1))
    return f"某市专利事项办理规定（{tag}）\n\n{body}\n"


class CountingStop:
    """should_stop that turns true from its n-th call on, counting every call."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def test_a_cancel_while_embedding_stops_within_a_batch_and_keeps_the_knowledge_base(tmp_path, embed_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPLY_LETTER, corpus)
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_cache=embed_cache)
    assert not build([corpus], settings, progress=False).failed
    before = current_generation(settings.store.kb_dir)

    (corpus / "long.txt").write_text(_long_text(tmp_path.name), encoding="utf-8")
    stop = CountingStop(3)  # 1: the file loop; 2: the first embedding batch; 3: the second
    report = build([corpus], settings, progress=False, should_stop=stop)

    statuses = {r.path.rsplit("/", 1)[-1]: r.status for r in report.results}
    assert statuses == {REPLY_LETTER.name: "unchanged", "long.txt": "cancelled"}
    assert not report.failed and report.generation is None
    assert current_generation(settings.store.kb_dir) == before  # nothing of the cancelled build was published
    assert report.embedded == 0 and stop.calls == 3  # stopped at the second of several batches

    # the next build picks the file up again
    again = build([corpus], settings, progress=False)
    long = next(r for r in again.results if r.path.endswith("long.txt"))
    assert long.status == "ok" and long.chunks > 3 * settings.models.embed_batch


def test_a_cancel_before_loading_reports_the_files_left_not_the_unchanged_ones(tmp_path, embed_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPLY_LETTER, corpus)
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_cache=embed_cache)
    assert not build([corpus], settings, progress=False).failed
    (corpus / "new.txt").write_text(_long_text(tmp_path.name, articles=3), encoding="utf-8")

    report = build([corpus], settings, progress=False, should_stop=lambda: True)
    statuses = {r.path.rsplit("/", 1)[-1]: r.status for r in report.results}
    assert statuses == {REPLY_LETTER.name: "unchanged", "new.txt": "cancelled"}
    assert not report.failed and "1 cancelled" in report.summary()
