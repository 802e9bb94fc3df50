"""The dense index: FAISS inner product over L2-normalised vectors (= cosine similarity).

Written with faiss.write_index, FAISS's own binary format (no pickle). Row i of the
index is row i of the knowledge base's row list; filters become an ID selector, so a
selective filter still returns its best k rather than what survives of a global top k.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(path))


class VectorIndex:
    def __init__(self, index: faiss.Index):
        self._index = index
        self.dim = index.d
        self.rows = index.ntotal

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine scores) best first; `allowed` is a boolean mask over rows."""
        params = None
        if allowed is not None:
            ids = np.flatnonzero(allowed).astype(np.int64)
            if not len(ids):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(ids))
        k = min(k, self.rows)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, rows = self._index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]
