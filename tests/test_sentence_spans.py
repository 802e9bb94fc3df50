"""Sentences are split once, at ingestion, and stored with the chunk: the answerer quotes the
stored spans and finds their vectors in the embedding cache that ingestion filled."""
from __future__ import annotations

import json
import sqlite3

import pytest
from tests_support import REPO

from kb.answer.answerer import Answerer
from kb.core.guard import quotable_sentences
from kb.core.sentences import COLONS, SENTENCE_END, ends_sentence, first_sentence_end, sentence_spans
from kb.core.settings import Settings
from kb.store.catalogue import Catalogue
from kb.store.generations import DATABASE, current_generation, open_kb


@pytest.fixture(scope="module")
def settings(tmp_path_factory, letter_settings) -> Settings:
    """The sample letter with an empty embedding cache of its own: no sentence vector is there yet."""
    return letter_settings.replace(embed_cache=tmp_path_factory.mktemp("fresh-cache") / "embed-cache.sqlite")


def test_every_sentence_end_is_said_in_one_place():
    for mark in SENTENCE_END:
        assert sentence_spans(f"甲乙丙{mark}丁戊己") == [(0, 4), (4, 7)], mark
        assert ends_sentence(f"甲乙丙{mark}") and ends_sentence(f"甲乙丙{mark}”")
        assert first_sentence_end(f"甲乙{mark}丙") == 2
    for colon in COLONS:  # a colon ends a line (a salutation, a lead-in), not a quotable sentence
        assert sentence_spans(f"联系人{colon}张三") == [(0, 6)]
        assert ends_sentence(f"刘正义委员{colon}") and not ends_sentence(f"刘正义委员{colon}", colon=False)
        assert first_sentence_end(f"一、总体情况{colon}主动公开") == 6
    assert ends_sentence("等等……") and sentence_spans("等等……然后") == [(0, 6)]
    assert not ends_sentence("推动发明专利被侵权保险，") and first_sentence_end("一、总体情况") is None


@pytest.mark.slow
def test_the_spans_stored_in_kb_sqlite_are_the_splitters(settings):
    with sqlite3.connect(current_generation(settings.store.kb_dir) / DATABASE) as db:
        rows = db.execute("SELECT text, sentences FROM chunks ORDER BY doc_id, ordinal").fetchall()
    assert len(rows) == 15
    for text, stored in rows:
        assert [tuple(span) for span in json.loads(stored)] == sentence_spans(text)
    kb = open_kb(settings.store.kb_dir)
    try:  # read back as records: the chunk's and its passage's spans are the stored ones
        chunks = kb.chunks()
        catalogue = Catalogue(kb.documents(), chunks)
        for chunk in chunks:
            assert chunk.sentences == sentence_spans(chunk.text) and len(chunk.sentences) >= 1
            assert catalogue.passage_for(chunk).sentence_spans == chunk.sentences
            assert "sentence_spans" not in catalogue.passage_for(chunk).to_json()
    finally:
        kb.close()


@pytest.mark.slow
def test_answering_embeds_a_few_stored_sentences_once(settings):
    """The build embeds chunks only; answering embeds at most Tuning.dense_candidates sentences of
    the passages, exactly as stored (quotable_sentences over the stored spans), and asking again
    embeds none: they are in the cache."""
    answerer = Answerer.open(settings)
    cache = answerer._sentence_cache
    requested: list[list[str]] = []
    misses: list[int] = []
    embed = cache._embed

    def counting(texts, *args):
        vectors = embed(texts, *args)
        requested.append(list(texts))
        misses.append(cache.embedded)
        return vectors

    cache._embed = counting
    try:
        passages = [answerer.generation.catalogue.passage_for(c) for c in answerer.generation.catalogue.chunks]
        quotable = {text for p in passages for _, _, text in quotable_sentences(p.text, p.sentence_spans)}
        questions = [json.loads(line)["question"]
                     for line in (REPO / "eval" / "testsets" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
                     if line.strip()][:6]  # each embeds its sentences with e5: six show the bound and the cache
        for question in questions:
            answerer.answer(question)
        first = list(misses)
        requested.clear()
        misses.clear()
        for question in questions:
            answerer.answer(question)
    finally:
        answerer.close()
    limit = answerer.tuning.dense_candidates
    assert sum(first) > 0 and max(first) <= limit, first
    assert all(len(texts) <= limit and set(texts) <= quotable for texts in requested)
    assert sum(misses) == 0, "asked again, a sentence was embedded again"
