"""The search index of one knowledge-base generation, whichever store holds it.

`SearchIndex` is what the retriever searches: a dense and a lexical ranking of rows, each
limited to the rows a filter admits, and BM25's idf for the answerer. Row i is chunk_ids[i]
in both rankings. Two stores implement it: the local files here, and Milvus
(kb/store/milvus.py); kb/store/backends.py picks one from the settings.

The local files, beside kb.sqlite:

    rows.json      chunk id of each row (row i of both indexes)
    vectors.faiss  dense index (kb/store/vectors.py): exact, or IVF-Flat above Settings.store.ann_threshold rows
    bm25.json      lexical index (kb/store/bm25.py)

Written once by `python -m ingest`, loaded once at start.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kb.store.bm25 import BM25Index, save_bm25
from kb.store.vectors import IVF_NPROBE, VectorIndex, save_vectors

ROWS = "rows.json"
VECTORS = "vectors.faiss"
BM25 = "bm25.json"

Ranking = list[tuple[int, float]]  # (row, score), best first


@dataclass(frozen=True)
class RowFilter:
    """The rows a filtered search may return, computed from the catalogue (so every store filters
    alike): the documents admitted, and the same as a boolean mask over rows."""

    doc_ids: frozenset[str]
    mask: np.ndarray


@dataclass
class IndexRows:
    """What a build hands a store: per row, its chunk, vector, BM25 tokens and the fields filters read."""

    chunk_ids: list[str]
    vectors: np.ndarray
    token_lists: list[list[str]]
    texts: list[str]  # the text BM25 reads (for a store's own full-text index)
    fields: list[dict[str, str]]  # doc_id, doc_type, issuer, date, level, region, status, file_name


class SearchIndex(Protocol):
    chunk_ids: list[str]
    dim: int  # 0 for an empty knowledge base

    def dense(self, vector: np.ndarray, n: int, allowed: RowFilter | None) -> Ranking: ...

    def lexical(self, query: str, tokens: list[str], n: int, allowed: RowFilter | None) -> Ranking:
        """BM25 of the query's tokens (kb/core/tokenizer.py; a store's own analyzer may read the query)."""

    def idf(self, term: str) -> float: ...

    def close(self) -> None: ...


def write_rows(generation: Path, chunk_ids: list[str]) -> None:
    (generation / ROWS).write_text(json.dumps({"chunk_ids": chunk_ids}), encoding="utf-8")


def write_indexes(generation: Path, chunk_ids: list[str], vectors: np.ndarray, token_lists: list[list[str]],
                  ann_threshold: int = 0) -> None:
    """The dense index is exact up to `ann_threshold` rows (0 = always), approximate above (kb/store/vectors.py)."""
    write_rows(generation, chunk_ids)
    if len(chunk_ids):
        save_vectors(generation / VECTORS, vectors, ann_threshold)
    save_bm25(generation / BM25, token_lists)


def read_rows(generation: Path) -> list[str]:
    return json.loads((generation / ROWS).read_text(encoding="utf-8"))["chunk_ids"]


class LocalIndex:
    """FAISS and BM25, in memory: a reader keeps working after its files are replaced."""

    def __init__(self, chunk_ids: list[str], vectors: VectorIndex | None, bm25: BM25Index):
        if (vectors and vectors.rows != len(chunk_ids)) or bm25.rows != len(chunk_ids):
            raise ValueError("the indexes disagree on the number of rows")
        self.chunk_ids = chunk_ids
        self.vectors = vectors  # None for an empty knowledge base
        self.bm25 = bm25
        self.dim = vectors.dim if vectors else 0

    @classmethod
    def load(cls, generation: Path, nprobe: int = IVF_NPROBE) -> LocalIndex:
        """`nprobe`: the lists an approximate (IVF) dense index scans per query (Settings.store.ann_nprobe)."""
        chunk_ids = read_rows(generation)
        vectors = VectorIndex.load(generation / VECTORS, nprobe) if chunk_ids else None
        return cls(chunk_ids, vectors, BM25Index.load(generation / BM25))

    def dense(self, vector: np.ndarray, n: int, allowed: RowFilter | None) -> Ranking:
        if self.vectors is None:
            return []
        rows, scores = self.vectors.search(vector, n, None if allowed is None else allowed.mask)
        return list(zip(rows.tolist(), scores.tolist()))

    def lexical(self, query: str, tokens: list[str], n: int, allowed: RowFilter | None) -> Ranking:
        scores = self.bm25.scores(tokens)
        if allowed is not None:
            scores = np.where(allowed.mask, scores, 0)
        n = min(n, len(scores))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]

    def idf(self, term: str) -> float:
        return self.bm25.idf(term)

    def close(self) -> None:
        pass
