"""The dense index: FAISS inner product over L2-normalised vectors (= cosine similarity).

Written with faiss.write_index, FAISS's own binary format (no pickle). Row i of the
index is row i of the knowledge base's row list; filters become an ID selector, so a
selective filter still returns its best k rather than what survives of a global top k.

Up to `ann_threshold` rows (kb/core/settings.py) the index is exact (IndexFlatIP); above it, an
approximate HNSW graph (IndexHNSWFlat), whose parameters below were chosen with bench/scale.py on
synthetic e5-like vectors at 100,000 and 1,000,000 rows (README, "Scale"). A filter that allows few
rows is searched exactly over those rows even in an HNSW index: the graph walk skips the rows a
filter leaves out, and loses recall when it leaves out most of them.
"""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# HNSW (bench/scale.py, README "Scale"): M = 32 links per node; efConstruction = 80, the depth of the
# search that places each new row; efSearch = 64, the candidates kept while searching. These met
# recall@10 >= 0.95 against exact search at 1,000,000 rows with p50 well under 20 ms.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
# A filter's walk through the graph skips the rows it leaves out, so it keeps efSearch / sqrt(share
# allowed) candidates (at most HNSW_EF_SEARCH_MAX); a filter that allows at most EXACT_FILTER_ROWS rows
# is searched exactly over those rows instead (bench/scale.py: ...).
HNSW_EF_SEARCH_MAX = 1024
EXACT_FILTER_ROWS = 50_000


def build_flat(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_hnsw(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_index(vectors: np.ndarray, ann_threshold: int = 0) -> faiss.Index:
    """Exact up to `ann_threshold` rows (0 = always exact), HNSW above."""
    if ann_threshold > 0 and len(vectors) > ann_threshold:
        return build_hnsw(vectors)
    return build_flat(vectors)


def save_vectors(path: Path, vectors: np.ndarray, ann_threshold: int = 0) -> None:
    faiss.write_index(build_index(vectors, ann_threshold), str(path))


class VectorIndex:
    def __init__(self, index: faiss.Index):
        self._index = index
        self.dim = index.d
        self.rows = index.ntotal
        self.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine scores) best first; `allowed` is a boolean mask over rows."""
        query = query.reshape(1, -1).astype(np.float32)
        k = min(k, self.rows)
        if k <= 0 or (allowed is not None and not allowed.any()):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.kind == "flat":
            params = None
            if allowed is not None:
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(allowed).astype(np.int64)))
            scores, rows = self._index.search(query, k, params=params)
        elif allowed is None:
            scores, rows = self._index.search(query, k, params=faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k)))
        else:
            bitmap = np.packbits(allowed, bitorder="little")  # kept alive while the selector is used
            selector = faiss.IDSelectorBitmap(bitmap)
            count = int(allowed.sum())
            if count <= EXACT_FILTER_ROWS:  # every allowed row compared: the HNSW vectors are a flat index
                storage = faiss.downcast_index(self._index.storage)
                scores, rows = storage.search(query, k, params=faiss.SearchParameters(sel=selector))
            else:
                ef = min(HNSW_EF_SEARCH_MAX, int(HNSW_EF_SEARCH / np.sqrt(count / self.rows)))
                scores, rows = self._index.search(query, k, params=faiss.SearchParametersHNSW(sel=selector,
                                                                                              efSearch=max(ef, k)))
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]
