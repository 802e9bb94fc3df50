"""Find the passages that answer a question: dense + BM25, fused by reciprocal rank.

`Retriever.open(settings)` opens the current knowledge base, checks that it was built
with the configured embedder, and loads its indexes and chunks into memory once.
`search()` ranks each method's candidates, fuses them with weighted RRF
(score = Σ weight / (rrf_k + rank)), applies metadata filters before ranking, drops
duplicate or overlapping passages, and returns typed `Passage` records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kb.embeddings import KbEmbeddings, embedder_id, make_embedder
from kb.indexes import Indexes, load_indexes
from kb.lexical import Tokenizer
from kb.records import Chunk, Document, Passage
from kb.settings import Settings
from kb.store import KbError, KnowledgeBase, open_kb

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Filters:
    """Metadata filters; empty fields do not filter. Dates are ISO yyyy-mm-dd (a prefix such as 2019 works)."""

    doc_types: tuple[str, ...] = ()  # 答复, 办法, 措施, …
    issuers: tuple[str, ...] = ()  # 发文机关, matched as a substring
    date_from: str | None = None
    date_to: str | None = None
    files: tuple[str, ...] = ()  # file names or document ids

    def admits(self, doc: Document) -> bool:
        meta = doc.meta
        if self.doc_types and meta.doc_type not in self.doc_types:
            return False
        if self.issuers and not any(i in (meta.issuer or "") for i in self.issuers):
            return False
        if (self.date_from or self.date_to) and not meta.date:
            return False
        if self.date_from and meta.date < self.date_from:
            return False
        if self.date_to and meta.date[: len(self.date_to)] > self.date_to:
            return False
        if self.files and doc.file_name not in self.files and doc.doc_id not in self.files:
            return False
        return True

    @property
    def empty(self) -> bool:
        return self == Filters()


def _normalised(text: str) -> str:
    return re.sub(r"\s+", "", text)


class Retriever:
    def __init__(self, kb: KnowledgeBase, indexes: Indexes, embedder: KbEmbeddings, tokenizer: Tokenizer,
                 settings: Settings):
        self.kb = kb
        self.settings = settings
        self._indexes = indexes
        self._embedder = embedder
        self._tokenizer = tokenizer
        self.documents = {d.doc_id: d for d in kb.documents()}
        by_id = {c.chunk_id: c for c in kb.chunks()}
        self._chunks: list[Chunk] = [by_id[cid] for cid in indexes.chunk_ids]
        self._query_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, settings: Settings, embedder: KbEmbeddings | None = None,
             tokenizer: Tokenizer | None = None) -> Retriever:
        kb = open_kb(settings.kb_dir)
        configured = embedder.id if embedder else embedder_id(settings)
        if kb.manifest.embedder != configured:
            kb.close()
            raise KbError(
                f"the knowledge base in {settings.kb_dir} was built with embedder {kb.manifest.embedder}, "
                f"but {configured} is configured. Either run `python -m ingest --kb {settings.kb_dir}` to re-embed "
                f"it with {configured}, or set IPKB_EMBEDDER (and IPKB_EMBED_MODEL) back to what built it."
            )
        try:
            indexes = load_indexes(kb.path)
        except (OSError, ValueError, KeyError) as exc:
            kb.close()
            raise KbError(f"the indexes in {kb.path} are unreadable ({exc}): "
                          f"rebuild with `python -m ingest --rebuild --kb {settings.kb_dir}`") from None
        embedder = embedder or make_embedder(settings)
        if indexes.vectors is not None and indexes.vectors.dim != kb.manifest.dimension:
            kb.close()
            raise KbError(f"vector index in {kb.path} has dimension {indexes.vectors.dim}, manifest says "
                          f"{kb.manifest.dimension}: rebuild with `python -m ingest --rebuild`")
        return cls(kb, indexes, embedder, tokenizer or Tokenizer(), settings)

    def close(self) -> None:
        self.kb.close()

    @property
    def size(self) -> int:
        return len(self._chunks)

    def encode_query(self, text: str) -> np.ndarray:
        """The query vector, remembered for a while: the answerer asks again for the same text."""
        vector = self._query_vectors.get(text)
        if vector is None:
            vector = self._embedder.encode_query(text)
            if len(self._query_vectors) >= 256:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[text] = vector
        return vector

    def clear_query_cache(self) -> None:
        self._query_vectors.clear()

    def idf(self, term: str) -> float:
        return self._indexes.bm25.idf(term)

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def embedder(self) -> KbEmbeddings:
        return self._embedder

    def passage_for(self, chunk: Chunk, rank: int = 0, score: float = 0.0) -> Passage:
        doc = self.documents[chunk.doc_id]
        return Passage(
            rank=rank, score=score, chunk_id=chunk.chunk_id, doc_id=doc.doc_id, text=chunk.text,
            title=doc.meta.title, doc_number=doc.meta.doc_number, issuer=doc.meta.issuer, date=doc.meta.date,
            doc_type=doc.meta.doc_type, pages=list(chunk.pages), heading_path=list(chunk.heading_path),
            source=doc.file_name, source_path=doc.source_path,
        )

    def chunk_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.documents, 0)
        for chunk in self._chunks:
            counts[chunk.doc_id] += 1
        return counts

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return [c for c in self._chunks if c.doc_id == doc_id]

    def _allowed(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or filters.empty:
            return None
        admitted = {doc_id for doc_id, doc in self.documents.items() if filters.admits(doc)}
        return np.fromiter((c.doc_id in admitted for c in self._chunks), dtype=bool, count=len(self._chunks))

    def dense_ranking(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if self._indexes.vectors is None:
            return []
        vector = self.encode_query(query)
        if vector.shape[-1] != self._indexes.vectors.dim:
            raise KbError(f"query vectors have dimension {vector.shape[-1]}, the index {self._indexes.vectors.dim}")
        rows, scores = self._indexes.vectors.search(vector, n, allowed)
        return list(zip(rows.tolist(), scores.tolist()))

    def bm25_ranking(self, query: str, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        scores = self._indexes.bm25.scores(self._tokenizer.tokens(query))
        if allowed is not None:
            scores = np.where(allowed, scores, 0)
        n = min(n, len(scores))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               mode: Mode = "hybrid") -> list[Passage]:
        """The k best passages for the query, best first."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        k = k or self.settings.top_k
        query = query.strip()
        if not query or not self._chunks:
            return []
        allowed = self._allowed(filters)
        n = max(self.settings.candidates, 3 * k)
        dense = self.dense_ranking(query, n, allowed) if mode != "bm25" else []
        lexical = self.bm25_ranking(query, n, allowed) if mode != "dense" else []
        if mode == "hybrid":
            order = self._fuse(dense, lexical)
        else:
            order = dense or lexical
        dense_of, bm25_of = dict(dense), dict(lexical)
        passages: list[Passage] = []
        for row, score in self._distinct(order):
            passage = self.passage_for(self._chunks[row], rank=len(passages) + 1, score=score)
            passage.dense_score, passage.bm25_score = dense_of.get(row), bm25_of.get(row)
            passages.append(passage)
            if len(passages) == k:
                break
        return passages

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Weighted RRF. Ties (e.g. ranks 1+2 against 2+1) go to the better BM25 rank: in policy text
        the exact term usually decides, and the dense ranking of near-paraphrases is the noisier one."""
        fused: dict[int, float] = {}
        for weight, ranking in ((self.settings.dense_weight, dense), (self.settings.bm25_weight, lexical)):
            for rank, (row, _) in enumerate(ranking, start=1):
                fused[row] = fused.get(row, 0.0) + weight / (self.settings.rrf_k + rank)
        lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical)}
        return sorted(fused.items(), key=lambda item: (-round(item[1], 12), lexical_rank.get(item[0], len(lexical))))

    def _distinct(self, order: list[tuple[int, float]]):
        """Skip a passage whose text was already given, or that overlaps a given one in the same document."""
        seen_text: set[str] = set()
        spans: dict[str, list[tuple[int, int]]] = {}
        for row, score in order:
            chunk = self._chunks[row]
            text = _normalised(chunk.text)
            taken = spans.setdefault(chunk.doc_id, [])
            if text in seen_text or any(chunk.start < end and start < chunk.end for start, end in taken):
                continue
            seen_text.add(text)
            taken.append((chunk.start, chunk.end))
            yield row, score
