"""The search indexes of one knowledge-base generation, beside kb.sqlite:

    rows.json      chunk id of each row (row i of both indexes)
    vectors.faiss  dense index (kb/store/vectors.py): exact, or HNSW above Settings.ann_threshold rows
    bm25.json      lexical index (kb/lexical.py)

Written once by `python -m ingest`, loaded once at start.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.store.bm25 import BM25Index, save_bm25
from kb.store.vectors import IVF_NPROBE, VectorIndex, save_vectors

ROWS = "rows.json"
VECTORS = "vectors.faiss"
BM25 = "bm25.json"


@dataclass
class Indexes:
    chunk_ids: list[str]
    vectors: VectorIndex | None  # None for an empty knowledge base
    bm25: BM25Index


def write_indexes(generation: Path, chunk_ids: list[str], vectors: np.ndarray, token_lists: list[list[str]],
                  ann_threshold: int = 0) -> None:
    """The dense index is exact up to `ann_threshold` rows (0 = always), HNSW above (kb/store/vectors.py)."""
    (generation / ROWS).write_text(json.dumps({"chunk_ids": chunk_ids}), encoding="utf-8")
    if len(chunk_ids):
        save_vectors(generation / VECTORS, vectors, ann_threshold)
    save_bm25(generation / BM25, token_lists)


def load_indexes(generation: Path, nprobe: int = IVF_NPROBE) -> Indexes:
    """`nprobe`: the lists an approximate (IVF) dense index scans per query (Settings.ann_nprobe)."""
    chunk_ids = json.loads((generation / ROWS).read_text(encoding="utf-8"))["chunk_ids"]
    vectors = VectorIndex.load(generation / VECTORS, nprobe) if chunk_ids else None
    bm25 = BM25Index.load(generation / BM25)
    if (vectors and vectors.rows != len(chunk_ids)) or bm25.rows != len(chunk_ids):
        raise ValueError(f"indexes in {generation} disagree on the number of rows")
    return Indexes(chunk_ids, vectors, bm25)
