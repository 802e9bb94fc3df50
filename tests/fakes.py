"""Fakes of what KnowledgeService opens and runs (an answerer on a generation, ingest's build), so that the
web layer's own behaviour is tested in-process without e5 or a knowledge base."""
from __future__ import annotations

import functools
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from tests_support import passage

from ingest.build import BuildReport, FileResult
from kb.core.filters import Filters
from kb.core.places import Places
from kb.core.profile import DocumentProfile
from kb.core.records import Answer, Document, DocumentMeta, Passage
from kb.core.settings import Settings

LETTER_TEXT = "关于专利保险的答复\n\n发明专利被侵权保险已在宁波试点。"


@functools.cache
def places() -> Places:
    """One division table for the session (loading it takes about a second)."""
    return Places()


def document(doc_id: str, source: Path, title: str = "关于专利保险的答复", doc_type: str = "答复",
             issuer: str = "宁波市市场监督管理局", date: str = "2019-07-22") -> Document:
    return Document(doc_id=doc_id, source_path=str(source), file_name=source.name, kind="txt", content_hash=doc_id,
                    meta=DocumentMeta(title=title, doc_type=doc_type, issuer=issuer, date=date), text=LETTER_TEXT,
                    page_count=1, profile=DocumentProfile(region=("浙江省", "宁波市")))


class FakeCatalogue:
    def __init__(self, documents: list[Document], chunks_per_document: int = 3):
        self.documents = {d.doc_id: d for d in documents}
        self.chunks = chunks_per_document

    def chunk_counts(self) -> dict[str, int]:
        return {doc_id: self.chunks for doc_id in self.documents}


class FakeRetriever:
    """Passages of the catalogue's documents, scored 1/rank, that the filters admit; every query is recorded."""

    def __init__(self, catalogue: FakeCatalogue):
        self.catalogue, self.queries = catalogue, []

    def search(self, query: str, k: int = 10, filters: Filters | None = None, mode: str | None = None) -> list[Passage]:
        self.queries.append(query)
        docs = [d for d in self.catalogue.documents.values() if filters is None or filters.admits(d)]
        found = [replace(passage(rank, f"{query}：第{rank}段", doc_id=d.doc_id, title=d.meta.title), source=d.file_name)
                 for d in docs for rank in range(1, self.catalogue.chunks + 1)]
        return [replace(p, rank=i, score=1.0 / i) for i, p in enumerate(found[:k], 1)]


class FakeAnswerer:
    """Answers “答：{question}[1]” from the passages of a FakeRetriever, as a stream of two deltas then the
    Answer; records each call (question, history, filters, region)."""

    def __init__(self, path: Path, documents: list[Document], models=None):
        catalogue = FakeCatalogue(documents)
        self.models = models if models is not None else SimpleNamespace(places=places())
        self.generation = SimpleNamespace(path=path, catalogue=catalogue, retriever=FakeRetriever(catalogue),
                                          models=self.models)
        self.calls: list[tuple] = []
        self.closed = False

    def retrieve(self, question: str, filters: Filters | None = None, k: int = 0, region: str = "") -> list[Passage]:
        return self.generation.retriever.search(question, k=max(k, 10), filters=filters)

    def stream(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
               region: str = "", passages: list[Passage] | None = None):
        self.calls.append((question, history, filters, region))
        found = passages if passages is not None else self.retrieve(question, filters)
        body = f"答：{question}[1]" if found else "⚠️ 未找到答案"
        yield "答："
        yield question
        yield Answer(question=question, body=body, refused=not found, citations=[], passages=found,
                     timings_ms={"retrieve": 1.0, "answer": 1.0, "total": 2.0}, standalone_question=question)

    def answer(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
               region: str = "", passages: list[Passage] | None = None) -> Answer:
        *_, answer = self.stream(question, history, filters, region, passages)
        return answer

    def close(self) -> None:
        self.closed = True


class FakeAnswerers:
    """An answerer factory for KnowledgeService: each call opens a FakeAnswerer on `documents` (changeable,
    as a build would change them), at `path()`; every answerer opened is kept in `opened`."""

    def __init__(self, documents: list[Document], path=lambda: Path("gen-fake")):
        self.documents, self.path = documents, path
        self.opened: list[FakeAnswerer] = []

    def __call__(self, models=None) -> FakeAnswerer:
        answerer = FakeAnswerer(self.path(), list(self.documents), models)
        self.opened.append(answerer)
        return answerer


class FakeBuild:
    """ingest.build.build's stand-in: records each call's paths and `exclude`, reports `results`, and, while
    `gate` is not set, waits (until `should_stop`); raises `error` when one is given."""

    def __init__(self, results: list[FileResult] | None = None, generation: Path | None = None,
                 error: Exception | None = None):
        self.results, self.generation, self.error = results or [], generation, error
        self.calls: list[dict] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        self.gate.set()

    def __call__(self, paths: list[Path], settings: Settings, *, progress: bool = True, exclude=None,
                 on_file=None, should_stop=None, rebuild: bool = False) -> BuildReport:
        self.calls.append({"paths": list(paths), "exclude": set(exclude or ())})
        self.entered.set()
        while not self.gate.wait(0.01):
            if should_stop is not None and should_stop():
                break
        if self.error is not None:
            raise self.error
        for i, result in enumerate(r for r in self.results if r.status == "ok"):
            if on_file:
                on_file(i, sum(r.status == "ok" for r in self.results), Path(result.path).name)
        return BuildReport(settings.store.kb_dir, results=list(self.results), generation=self.generation)
