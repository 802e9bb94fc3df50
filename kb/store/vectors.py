"""The dense index: FAISS inner product over L2-normalised vectors (= cosine similarity).

Written with faiss.write_index, FAISS's own binary format (no pickle). Row i of the
index is row i of the knowledge base's row list; filters become an ID selector, so a
selective filter still returns its best k rather than what survives of a global top k.

Up to `ann_threshold` rows (kb/core/settings.py) the index is exact (IndexFlatIP). Above it, it is
approximate: IVF-Flat (ANN_KIND), whose parameters below were chosen with bench/scale.py on synthetic
e5-like vectors at 10,000 to 1,000,000 rows (docs/performance.md, "Scale"). An HNSW graph (IndexHNSWFlat) was
measured beside it and is still read and searched, but not written: on those vectors, at a million
rows, it found 0.79 of the true top 10 at efSearch 256 (0.88 at 512), IVF-Flat 0.98.

A filter leaves rows out of what an approximate search scans, and the best allowed rows may lie in
lists it did not probe. An IVF search with a filter scans IVF_NPROBE / sqrt(share allowed) lists
(bench/scale.py at a million rows: 101, 185 and 320 lists for 10%, 3% and 1% allowed, recall@10
0.99-1.00, p50 6-7 ms; IVF_NPROBE / share cost up to 30 ms for no better recall, IVF_NPROBE alone
lost up to 0.1); a filter allowing (IVF_NPROBE / lists)^2 of the rows or fewer scans every list, an
exact search over the allowed rows. An HNSW walk with a filter keeps efSearch / sqrt(share)
candidates, and a filter that allows at most EXACT_FILTER_ROWS rows is searched exactly over them.
"""
from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

ANN_KIND = "ivf"  # what save_vectors writes above the threshold: "ivf" or "hnsw"
# IVF-Flat (bench/scale.py, docs/performance.md "Scale"): sqrt(rows) lists (1,000 at a million rows), k-means trained
# on 64 rows per list (FAISS wants at least 39), IVF_NPROBE nearest lists scanned per query (the default
# of Settings.store.ann_nprobe). 32 lists:
# recall@10 against exact search 0.97 at 100,000 rows and 0.98 at 1,000,000, p50 2.5 and 7.8 ms (16
# lists: 0.96 at a million, 3.9 ms; 64: 0.995, 14.5 ms).
IVF_TRAIN_PER_LIST = 64
IVF_NPROBE = 32
# HNSW (measured, not written): M links per node, efConstruction candidates while placing a row,
# efSearch while searching.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
HNSW_EF_SEARCH_MAX = 1024  # a filtered walk's efSearch at most
EXACT_FILTER_ROWS = 50_000  # HNSW: a filter allowing at most this many rows is searched exactly


def ivf_lists(rows: int) -> int:
    return max(1, round(math.sqrt(rows)))


def build_flat(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_ivf(vectors: np.ndarray) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    nlist = ivf_lists(len(vectors))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), IVF_TRAIN_PER_LIST * nlist), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    index.nprobe = min(IVF_NPROBE, nlist)
    return index


def build_hnsw(vectors: np.ndarray) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_index(vectors: np.ndarray, ann_threshold: int = 0, kind: str = ANN_KIND) -> faiss.Index:
    """Exact up to `ann_threshold` rows (0 = always exact), approximate (`kind`) above."""
    if ann_threshold > 0 and len(vectors) > ann_threshold:
        return build_ivf(vectors) if kind == "ivf" else build_hnsw(vectors)
    return build_flat(vectors)


def save_vectors(path: Path, vectors: np.ndarray, ann_threshold: int = 0) -> None:
    faiss.write_index(build_index(vectors, ann_threshold), str(path))


class VectorIndex:
    def __init__(self, index: faiss.Index, nprobe: int = IVF_NPROBE):
        self._index = index
        self.nprobe = nprobe  # IVF lists scanned per query (Settings.store.ann_nprobe)
        self.dim = index.d
        self.rows = index.ntotal
        self.kind = ("ivf" if isinstance(index, faiss.IndexIVF) else "hnsw" if isinstance(index, faiss.IndexHNSW)
                     else "flat")

    @classmethod
    def load(cls, path: Path, nprobe: int = IVF_NPROBE) -> VectorIndex:
        return cls(faiss.read_index(str(path)), nprobe)

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
        else:
            bitmap = None if allowed is None else np.packbits(allowed, bitorder="little")  # alive while searched
            selector = None if bitmap is None else faiss.IDSelectorBitmap(bitmap)
            share = 1.0 if allowed is None else int(allowed.sum()) / self.rows
            scores, rows = self._approximate(query, k, selector, share)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def _approximate(self, query: np.ndarray, k: int, selector, share: float) -> tuple[np.ndarray, np.ndarray]:
        index = self._index
        if self.kind == "ivf":
            nprobe = min(index.nlist, math.ceil(min(self.nprobe, index.nlist) / math.sqrt(share)))
            return index.search(query, k, params=faiss.SearchParametersIVF(sel=selector, nprobe=nprobe))
        if selector is not None and share * self.rows <= EXACT_FILTER_ROWS:  # the HNSW's vectors are a flat index
            storage = faiss.downcast_index(index.storage)
            return storage.search(query, k, params=faiss.SearchParameters(sel=selector))
        ef = min(HNSW_EF_SEARCH_MAX, int(HNSW_EF_SEARCH / math.sqrt(share)))
        return index.search(query, k, params=faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef, k)))
