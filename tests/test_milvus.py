"""The milvus store (milvus-lite here): the same rankings and filter results as the local store, the
collection's fields, the alias as commit point, and one process per milvus-lite file.

The retrieval, answers, policies, API, re-index and SIGKILL tests also run over this store
(their fixtures are parametrised over tests_support.STORES)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import REPLY_LETTER, REPO, SUBSIDY_POLICY, SUBSIDY_QUESTION

import kb.store.generations
from ingest.build import build
from kb.core.errors import SettingsError
from kb.core.settings import Settings, load_settings
from kb.search.filters import Filters
from kb.search.generation import Generation

FILTERS = [
    None,
    Filters(levels=("法律",)),
    Filters(statuses=("现行有效",)),
    Filters(region=("浙江省", "宁波市")),
    Filters(region=("浙江省",), within=True),
    Filters(region=("广东省", "广州市", "南沙区"), statuses=("已过期",)),
    Filters(doc_types=("答复",), date_from="2019"),
    Filters(issuers=("人民代表大会",), date_to="2020-12-31"),
    Filters(files=("nbamr-2019-25-reply-to-proposal-130.txt",)),
    Filters(levels=("司法解释",)),  # admits nothing
]


def test_settings_choose_and_check_the_store():
    assert Settings().store.store == "local" and Settings().store.milvus_address == str(Path(".kb") / "milvus.db")
    settings = load_settings(env={"IPKB_STORE": "milvus", "IPKB_MILVUS_URI": "http://10.0.0.5:19530",
                                  "IPKB_MILVUS_COLLECTION": "bureau_kb"}, config_file=Path("/nonexistent"))
    assert settings.store.milvus_address == "http://10.0.0.5:19530" and settings.store.milvus_collection == "bureau_kb"
    for env, message in [({"IPKB_STORE": "faiss"}, "setting store"), ({"IPKB_MILVUS_BM25": "bm42"}, "milvus_bm25"),
                         ({"IPKB_MILVUS_URI": "milvus.sqlite"}, "milvus_uri"),
                         ({"IPKB_MILVUS_COLLECTION": "ipkb-1"}, "milvus_collection")]:
        with pytest.raises(SettingsError, match=message):
            load_settings(env=env, config_file=Path("/nonexistent"))


@pytest.mark.slow
def test_milvus_ranks_and_filters_as_the_local_store(policies_settings, policies_milvus_settings):
    local = Generation.open(policies_settings)
    milvus = Generation.open(policies_milvus_settings, local.models)
    try:
        assert milvus.retriever.size == local.retriever.size > 1000
        questions = [json.loads(line)["question"] for line in
                     (REPO / "eval" / "testsets" / "policies.jsonl").read_text(encoding="utf-8").splitlines()]
        compared = 0
        for i, question in enumerate(questions[::3]):
            for mode in ("hybrid", "dense", "bm25"):
                filters = FILTERS[i % len(FILTERS)]
                a = local.retriever.search(question, k=10, filters=filters, mode=mode)
                b = milvus.retriever.search(question, k=10, filters=filters, mode=mode)
                assert [p.chunk_id for p in a] == [p.chunk_id for p in b], (question, filters, mode)
                for x, y in zip(a, b):
                    assert x.score == pytest.approx(y.score, rel=1e-5)
                    for mine, theirs in ((x.dense_score, y.dense_score), (x.bm25_score, y.bm25_score)):
                        assert (mine is None and theirs is None) or mine == pytest.approx(theirs, rel=1e-5)
                compared += bool(a)
        assert compared > 100
        assert milvus.retriever.search("专利", filters=FILTERS[-1]) == []
        for term in ("专利", "质押", "风险池", "从未出现的词"):
            assert milvus.retriever.idf(term) == pytest.approx(local.retriever.idf(term))
    finally:
        milvus.close()


@pytest.mark.slow
def test_the_collection_holds_the_rows_and_the_fields_filters_need(policies_milvus_settings):
    from kb.store.milvus import MilvusStore

    store = MilvusStore(policies_milvus_settings)
    generation = Generation.open(policies_milvus_settings)
    try:
        name = store.client().describe_alias("ipkb")["collection_name"]
        assert name == store.collection(generation.path) and name.startswith("ipkb_gen_")
        row = next(i for i, c in enumerate(generation.catalogue.chunks) if c.doc_id in {
            d.doc_id for d in generation.catalogue.documents.values() if d.file_name.startswith("ningbo")})
        entity = store.client().get(name, ids=[row])[0]
        chunk = generation.catalogue.chunks[row]
        doc = generation.catalogue.documents[chunk.doc_id]
        assert entity["chunk_id"] == chunk.chunk_id and entity["doc_id"] == doc.doc_id
        assert entity["region"] == "浙江省/宁波市" and entity["level"] == doc.profile.level
        assert entity["file_name"] == doc.file_name and entity["date"] == (doc.meta.date or "")
        assert entity["status"] and entity["doc_type"] == doc.meta.doc_type
        # the sparse vector holds the row's BM25 weights: one term's weight is its BM25 score alone
        term = max(entity["sparse"], key=entity["sparse"].get)
        word = next(t for t, i in generation.retriever.index.lexicon.ids.items() if i == term)
        hits = store.client().search(name, data=[{term: 1.0}], anns_field="sparse", limit=3, filter=f"row == {row}")
        assert hits[0][0]["distance"] == pytest.approx(entity["sparse"][term]) and word
    finally:
        generation.close()
        store.close()


def _build(corpus: Path, settings: Settings):
    report = build([corpus], settings, progress=False)
    assert not report.failed, report.summary()
    return report


@pytest.mark.slow
def test_the_alias_is_the_commit_point_and_old_collections_go(tmp_path, embed_cache, monkeypatch):
    from pymilvus import DataType

    from kb.store.milvus import MilvusStore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPLY_LETTER, corpus)
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_cache=embed_cache, store="milvus")
    first = _build(corpus, settings).generation
    store = MilvusStore(settings)
    reader = Generation.open(settings)  # opened on the first collection
    assert store.current() == first == kb.store.generations.current_generation(settings.store.kb_dir)

    (corpus / "补贴细则.txt").write_text(SUBSIDY_POLICY, encoding="utf-8")
    second = _build(corpus, settings).generation
    assert store.current() == second and not first.exists()
    assert set(store._ours()) == {store.collection(first), store.collection(second)}  # the replaced one stays
    # a reader keeps searching the generation it opened; a new one finds the new document
    assert {p.source for p in reader.retriever.search(SUBSIDY_QUESTION)} == {REPLY_LETTER.name}
    assert Generation.open(settings, reader.models).retriever.search(SUBSIDY_QUESTION, k=1)[0].source == "补贴细则.txt"
    reader.close()

    # Killed between the alias switch and the `current` symlink: the alias decides, the next build
    # points `current` at it; a build's leftover collection is dropped then too.
    def crash(kb_dir, generation):
        raise OSError("killed here")

    (corpus / "补贴细则.txt").write_text(SUBSIDY_POLICY.replace("12万元", "15万元"), encoding="utf-8")
    with monkeypatch.context() as patch:
        patch.setattr(kb.store.generations, "point_current", crash)
        with pytest.raises(OSError):
            build([corpus], settings, progress=False)
    third = store.current()
    assert third not in (second, None) and kb.store.generations.current_generation(settings.store.kb_dir) == second
    found = Generation.open(settings, reader.models).retriever.search(SUBSIDY_QUESTION, k=5)
    assert "15万元" in "".join(p.text for p in found)
    leftover = store.client().create_schema()  # as a killed build leaves it: newer, never aliased
    leftover.add_field("row", DataType.INT64, is_primary=True)
    leftover.add_field("dense", DataType.FLOAT_VECTOR, dim=4)
    store.client().create_collection("ipkb_gen_29991231_000000_abcdef", schema=leftover)
    assert _build(corpus, settings).generation is None  # nothing changed
    assert kb.store.generations.current_generation(settings.store.kb_dir) == third
    assert sorted(store._ours()) == [store.collection(second), store.collection(third)]  # until the next publish
    assert sorted(settings.store.kb_dir.glob("gen-*")) == [third]
    store.close()


@pytest.mark.slow
def test_milvus_lite_serves_one_process(tmp_path, embed_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPLY_LETTER, corpus)
    settings = Settings().replace(kb_dir=tmp_path / "kb", embed_cache=embed_cache, store="milvus")
    _build(corpus, settings)  # this process now holds the milvus-lite files
    out = subprocess.run([sys.executable, "-m", "kb", "search", "风险池基金", "--kb", str(settings.store.kb_dir)],
                         cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "IPKB_STORE": "milvus", "IPKB_EMBED_CACHE": str(embed_cache)})
    assert out.returncode == 2 and "milvus-lite serves one process" in out.stderr and "Traceback" not in out.stderr
