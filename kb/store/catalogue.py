"""The documents and chunks of one knowledge-base generation, in memory: what search
results, citations and the app's document list are made of."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from kb.core.records import Chunk, Document, Passage
from kb.store.generations import KnowledgeBase
from kb.store.status import resolve_statuses


class Catalogue:
    def __init__(self, documents: list[Document], chunks: list[Chunk]):
        self.documents: dict[str, Document] = {d.doc_id: d for d in documents}
        self.chunks = chunks  # in index-row order: row i of the vector and BM25 indexes is chunks[i]
        self._by_doc: dict[str, list[Chunk]] = {doc_id: [] for doc_id in self.documents}
        for chunk in chunks:
            self._by_doc.setdefault(chunk.doc_id, []).append(chunk)

    @classmethod
    def load(cls, kb: KnowledgeBase, row_ids: list[str], as_of: str = "") -> Catalogue:
        """Everything in the generation's database, chunks in the order of the index rows, each
        document's status as of `as_of` (yyyy-mm-dd; default today): it depends on the date and on
        the other documents (a later version supersedes, another document abolishes)."""
        by_id = {c.chunk_id: c for c in kb.chunks()}
        documents = kb.documents()
        profiles = resolve_statuses([(d.doc_id, d.meta.title, d.profile) for d in documents],
                                    as_of or dt.date.today().isoformat())
        documents = [replace(d, profile=profiles[d.doc_id]) for d in documents]
        return cls(documents, [by_id[cid] for cid in row_ids])

    def __len__(self) -> int:
        return len(self.chunks)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return list(self._by_doc.get(doc_id, []))

    def sections(self, doc_id: str) -> list[list[Chunk]]:
        """The document's chunks in reading order, grouped by section: contiguous chunks whose heading
        paths agree as far as both go (a section split in two, or a list item the chunker took for a
        sub-heading) are one section; the next article or section starts another."""
        out: list[list[Chunk]] = []
        for chunk in sorted(self._by_doc.get(doc_id, []), key=lambda c: c.ordinal):
            last = out[-1][-1] if out else None
            n = min(len(chunk.heading_path), len(last.heading_path)) if last else 0
            if last and n and chunk.heading_path[:n] == last.heading_path[:n]:
                out[-1].append(chunk)
            else:
                out.append([chunk])
        return out

    def chunk_counts(self) -> dict[str, int]:
        return {doc_id: len(self._by_doc.get(doc_id, [])) for doc_id in self.documents}

    def document_text(self, doc_id: str) -> str:
        """Title, issuer and text of a document: what "does this document mention 宁波?" reads."""
        doc = self.documents[doc_id]
        return f"{doc.meta.title} {doc.meta.issuer or ''} {doc.text}"

    def passage_for(self, chunk: Chunk, rank: int = 0, score: float = 0.0) -> Passage:
        doc = self.documents[chunk.doc_id]
        passage = Passage(
            rank=rank, score=score, chunk_id=chunk.chunk_id, doc_id=doc.doc_id, text=chunk.text,
            title=doc.meta.title, doc_number=doc.meta.doc_number, issuer=doc.meta.issuer, date=doc.meta.date,
            doc_type=doc.meta.doc_type, pages=list(chunk.pages), heading_path=list(chunk.heading_path),
            source=doc.file_name, source_path=doc.source_path, profile=doc.profile,
        )
        passage.sentence_spans = list(chunk.sentences)  # as stored at ingestion
        return passage
