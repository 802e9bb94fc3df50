"""Retrieval end to end on real documents: indexes on disk, hybrid search, filters, CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tests_support import LITE_ONE_PROCESS, REPLY_LETTER, REPO, STORES

from ingest.build import build
from kb.core.settings import Settings
from kb.search.filters import Filters
from kb.search.generation import Generation
from kb.search.langchain import KbRetriever
from kb.store.indexes import BM25, ROWS, VECTORS
from kb.store.milvus import LEXICON

pytestmark = pytest.mark.slow  # builds a knowledge base (e5) and runs the CLI

HONGZE = ("huaian-hongze-2023-gov-info-report.pdf", "huaian-hongze-2024-gov-info-report.pdf")


@pytest.fixture(scope="module", params=STORES)
def kb(request, tmp_path_factory, shared_corpus, embed_cache):
    """The reply letter and two Hongze reports, built with the default e5 embedder, in each store."""
    corpus = tmp_path_factory.mktemp("corpus")
    shutil.copy(REPLY_LETTER, corpus)
    for name in HONGZE:
        shutil.copy(shared_corpus / "pdf" / name, corpus)
    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("kb"), embed_cache=embed_cache, store=request.param)
    report = build([corpus], settings, progress=False)
    assert not report.failed, report.summary()
    generation = Generation.open(settings)
    yield generation.retriever
    generation.close()


def test_indexes_are_written_to_the_generation_without_pickle(kb):
    generation = Generation.open(kb.settings)
    folder = generation.path
    files = (ROWS, VECTORS, BM25) if kb.settings.store.store == "local" else (ROWS, LEXICON)  # and a collection
    assert sorted(p.name for p in folder.iterdir()) == sorted((*files, "kb.sqlite", "manifest.json"))
    assert generation.manifest.store == kb.settings.store.store
    for name in files:
        assert (folder / name).is_file()
        assert not (folder / name).read_bytes().startswith(b"\x80"), f"{name} looks like a pickle"
    assert generation.manifest.embedder == "e5:multilingual-e5-small-q4"
    assert generation.manifest.dimension == 384
    assert json.loads((folder / ROWS).read_text())["chunk_ids"].__len__() == kb.size == len(generation.catalogue)


def test_round_trip_reopened_indexes_give_the_same_ranking(kb):
    again = Generation.open(kb.settings).retriever
    for mode in ("hybrid", "dense", "bm25"):
        first = [p.chunk_id for p in kb.search("知识产权质押融资风险池基金", mode=mode)]
        assert first and first == [p.chunk_id for p in again.search("知识产权质押融资风险池基金", mode=mode)]


@pytest.mark.parametrize("question, expected", [
    ("专利质押贷款出了坏账谁兜底？", "风险池基金"),
    ("发明专利被侵权有保险吗？", "被侵权保险"),
    ("宁波的知识产权学院是干什么的", "知识产权学院"),
    ("洪泽区2024年主动公开了多少条政府信息", "洪泽"),
])
def test_hybrid_search_finds_the_passage(kb, question, expected):
    passages = kb.search(question, k=3)
    assert any(expected in p.text or expected in p.title for p in passages), [p.text[:40] for p in passages]


def test_passages_are_typed_and_carry_their_source(kb):
    passages = kb.search("专利质押融资", k=5)
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(passages, passages[1:]))
    top = next(p for p in passages if p.source == REPLY_LETTER.name)
    assert top.doc_number == "甬市监函〔2019〕25号" and top.date == "2019-07-22" and top.doc_type == "答复"
    assert top.pages == [] and top.chunk_id and top.title == "关于市政协十五届三次会议第130号提案的答复"  # a .txt has no pages
    data = top.to_json()
    assert {"rank", "score", "text", "title", "doc_number", "pages", "section", "source", "chunk_id"} <= set(data)


def test_modes_differ_and_hybrid_fuses_both(kb):
    hybrid = kb.search("知识产权运营公共服务平台", k=5)
    assert all(p.dense_score is not None or p.bm25_score is not None for p in hybrid)
    assert any(p.dense_score is not None and p.bm25_score is not None for p in hybrid)
    assert all(p.bm25_score is None for p in kb.search("知识产权运营公共服务平台", mode="dense"))
    assert all(p.dense_score is None for p in kb.search("知识产权运营公共服务平台", mode="bm25"))
    with pytest.raises(ValueError):
        kb.search("x", mode="fuzzy")


def test_filters(kb):
    q = "政府信息公开"
    assert {p.doc_type for p in kb.search(q, filters=Filters(doc_types=("答复",)))} == {"答复"}
    assert {p.source for p in kb.search(q, filters=Filters(files=(HONGZE[0],)))} == {HONGZE[0]}
    assert {p.issuer for p in kb.search(q, filters=Filters(issuers=("市场监督管理局",)))} == {"宁波市市场监督管理局"}
    # a selective filter still fills k from its own documents, not from a global top list
    assert len(kb.search(q, k=8, filters=Filters(doc_types=("答复",)))) == 8


def test_no_duplicate_or_empty_results(kb):
    passages = kb.search("知识产权", k=30)
    texts = ["".join(p.text.split()) for p in passages]
    assert len(texts) == len(set(texts))
    assert kb.search("   ") == []


def test_langchain_retriever_in_a_chain(kb):
    from langchain_core.prompts import PromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    retriever = KbRetriever(retriever=kb, k=3)
    docs = retriever.invoke("风险池基金")
    assert len(docs) == 3 and docs[0].metadata["title"] and docs[0].id == docs[0].metadata["chunk_id"]
    prompt = PromptTemplate.from_template("资料：{context}\n问题：{question}")
    chain = ({"context": retriever | RunnableLambda(lambda ds: "\n".join(d.page_content for d in ds)),
              "question": RunnablePassthrough()} | prompt)
    text = chain.invoke("风险池基金").to_string()
    assert "风险池基金" in text.split("问题：")[0]


def _search_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kb", "search", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def test_search_command_json_and_text(kb, capsys):
    if kb.settings.store.store == "milvus":
        pytest.skip(LITE_ONE_PROCESS)  # the CLI over Milvus: test_build's SIGKILL test
    out = _search_cli("发明专利被侵权保险", "--k", "3", "--json", "--kb", str(kb.settings.store.kb_dir))  # as a user runs it
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["query"] == "发明专利被侵权保险" and len(data["passages"]) == 3
    assert data["passages"][0]["rank"] == 1 and "被侵权保险" in data["passages"][0]["text"]
    from kb.__main__ import main  # the text output in this process: a process costs seconds of imports

    assert main(["search", "风险池基金", "--k", "2", "--type", "答复", "--kb", str(kb.settings.store.kb_dir)]) == 0
    assert "《关于市政协十五届三次会议第130号提案的答复》（甬市监函〔2019〕25号）" in capsys.readouterr().out


def test_search_command_without_knowledge_base(tmp_path, capsys):
    from kb.__main__ import main

    assert main(["search", "专利", "--kb", str(tmp_path / "none")]) == 2
    assert "python -m ingest" in capsys.readouterr().err
