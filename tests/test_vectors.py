"""The dense index above and below `ann_threshold`: approximate (IVF-Flat; HNSW is still read) when
the rows exceed it, exact (FAISS flat) otherwise; filters respected either way (kb/store/vectors.py).

Small synthetic data with neighbourhoods (clusters), so that approximate search has something to
find: both approximate indexes must return the exact top hits (recall@10 >= 0.95), also under a
filter, and never a row a filter leaves out. The IVF search is made to scan 8 of its 55 lists, and the
HNSW's exact-search limit for filters is lowered, so that the approximate paths run on 3,000 rows.
"""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from kb.core.settings import Settings, load_settings
from kb.store import vectors
from kb.store.backends import open_store
from kb.store.indexes import IndexRows, LocalIndex, write_indexes
from kb.store.vectors import VectorIndex, build_index, save_vectors

ROWS, DIM, THRESHOLD = 3000, 32, 500


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """3,000 rows around 60 centres, and 50 queries near rows of the data."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((60, DIM))
    rows = unit(centres[rng.integers(60, size=ROWS)] + 0.35 * rng.standard_normal((ROWS, DIM)))
    queries = unit(rows[rng.integers(ROWS, size=50)] + 0.2 * rng.standard_normal((50, DIM)))
    return rows, queries


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    """save_vectors above the threshold: the kind it writes (ANN_KIND)."""
    path = tmp_path_factory.mktemp("ann") / "vectors.faiss"
    save_vectors(path, data[0], ann_threshold=THRESHOLD)
    return path


@pytest.fixture(scope="module")
def indexes(data, saved, tmp_path_factory) -> dict[str, VectorIndex]:
    hnsw = tmp_path_factory.mktemp("hnsw") / "vectors.faiss"
    faiss.write_index(build_index(data[0], THRESHOLD, kind="hnsw"), str(hnsw))
    return {vectors.ANN_KIND: VectorIndex.load(saved, nprobe=8), "hnsw": VectorIndex.load(hnsw)}


@pytest.fixture(params=["ivf", "hnsw"])
def ann(request, indexes, monkeypatch) -> VectorIndex:
    monkeypatch.setattr(vectors, "EXACT_FILTER_ROWS", 100)
    return indexes[request.param]


def exact(rows: np.ndarray, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> set[int]:
    scores = rows @ query
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    return set(np.argsort(-scores)[:k].tolist()) - {r for r in np.flatnonzero(np.isinf(scores))}


def test_above_the_threshold_the_saved_index_is_ivf(saved, indexes):
    index = faiss.read_index(str(saved))
    assert vectors.ANN_KIND == "ivf" and isinstance(index, faiss.IndexIVFFlat)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT and index.nlist == round(ROWS ** 0.5)
    assert indexes["ivf"].kind == "ivf" and indexes["ivf"].rows == ROWS and indexes["ivf"].dim == DIM
    assert indexes["hnsw"].kind == "hnsw" and isinstance(indexes["hnsw"]._index, faiss.IndexHNSWFlat)


@pytest.mark.parametrize("threshold", [0, ROWS, ROWS + 1])
def test_at_or_below_the_threshold_or_0_the_index_stays_exact(data, tmp_path, threshold):
    path = tmp_path / "v.faiss"
    save_vectors(path, data[0], ann_threshold=threshold)
    assert type(faiss.read_index(str(path))) is faiss.IndexFlatIP
    assert VectorIndex.load(path).kind == "flat"


def test_approximate_search_finds_the_exact_top_hits(ann, data):
    rows, queries = data
    found = [set(ann.search(q, 10)[0].tolist()) for q in queries]
    recall = np.mean([len(f & exact(rows, q, 10)) / 10 for f, q in zip(found, queries)])
    assert recall >= 0.95
    got, scores = ann.search(queries[0], 10)
    assert np.allclose(scores, rows[got] @ queries[0], atol=1e-5)  # cosine scores, best first
    assert list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize("share", [0.5, 0.1, 0.01])
def test_a_filter_is_respected_and_its_best_rows_found(ann, data, share):
    """IVF: 8 / sqrt(share) lists scanned (12 and 26 of 55 at 0.5 and 0.1; all 55, exact, at 0.01).
    HNSW: the graph walked with efSearch raised (0.5, 0.1) or every allowed row compared (0.01:
    30 rows, under the lowered limit)."""
    rows, queries = data
    allowed = np.random.default_rng(1).random(ROWS) < share
    recalls = []
    for q in queries:
        got, _ = ann.search(q, 10, allowed)
        assert allowed[got].all(), "a row the filter leaves out was returned"
        truth = exact(rows, q, 10, allowed)
        assert len(got) == len(truth)
        recalls.append(len(set(got.tolist()) & truth) / len(truth))
    assert np.mean(recalls) >= 0.95


def test_a_filter_allowing_nothing_or_fewer_than_k(ann, data):
    rows, queries = data
    assert len(ann.search(queries[0], 10, np.zeros(ROWS, bool))[0]) == 0
    allowed = np.zeros(ROWS, bool)
    allowed[[5, 17, 2999]] = True
    got, _ = ann.search(queries[0], 10, allowed)
    assert sorted(got.tolist()) == [5, 17, 2999]


def test_flat_and_approximate_agree_under_a_filter(ann, data, tmp_path):
    """The exact and the approximate index give the same top hits to a filtered search (the app's
    results do not change with the index type beyond a small recall loss)."""
    rows, queries = data
    path = tmp_path / "flat.faiss"
    save_vectors(path, rows)
    flat = VectorIndex.load(path)
    allowed = np.random.default_rng(2).random(ROWS) < 0.2
    same = [len(set(flat.search(q, 5, allowed)[0].tolist()) & set(ann.search(q, 5, allowed)[0].tolist())) / 5
            for q in queries]
    assert np.mean(same) >= 0.95


def test_write_and_load_indexes_use_the_threshold(data, tmp_path):
    rows = data[0][: THRESHOLD + 100]
    ids = [f"c{i}" for i in range(len(rows))]
    tokens = [["专利"]] * len(rows)
    write_indexes(tmp_path, ids, rows, tokens, ann_threshold=THRESHOLD)
    assert LocalIndex.load(tmp_path).vectors.kind == "ivf"
    write_indexes(tmp_path, ids, rows, tokens)  # the default: exact
    assert LocalIndex.load(tmp_path).vectors.kind == "flat"
    # the local store a build uses takes both from the settings
    store = open_store(Settings(kb_dir=tmp_path, ann_threshold=THRESHOLD, ann_nprobe=3))
    store.write(tmp_path, IndexRows(ids, rows, tokens, ["专利"] * len(rows), [{}] * len(rows)))
    index = store.open(tmp_path)
    assert index.vectors.kind == "ivf" and index.vectors.nprobe == 3


def test_the_settings_default_above_todays_sizes_and_read_from_the_environment(tmp_path):
    none = tmp_path / "ipkb.toml"
    settings = load_settings(env={}, config_file=none)
    assert settings.store.ann_threshold >= 100_000  # the bundled corpus: 1,263 chunks, searched exactly
    assert settings.store.ann_nprobe == vectors.IVF_NPROBE
    env = {"IPKB_ANN_THRESHOLD": "0", "IPKB_ANN_NPROBE": "64"}
    changed = load_settings(env=env, config_file=none)
    assert (changed.store.ann_threshold, changed.store.ann_nprobe) == (0, 64)


def test_nprobe_is_the_lists_scanned(data, saved, tmp_path):
    """More lists, more of the exact top hits; all of them (55), an exact search. LocalIndex.load passes it on."""
    rows, queries = data

    def recall(index: VectorIndex) -> float:
        return float(np.mean([len(set(index.search(q, 10)[0].tolist()) & exact(rows, q, 10)) / 10 for q in queries]))

    one, all_lists = VectorIndex.load(saved, nprobe=1), VectorIndex.load(saved, nprobe=55)
    assert recall(one) < 0.95 and recall(all_lists) == 1.0
    ids = [f"c{i}" for i in range(ROWS)]
    write_indexes(tmp_path, ids, rows, [["专利"]] * ROWS, ann_threshold=THRESHOLD)
    assert LocalIndex.load(tmp_path, nprobe=3).vectors.nprobe == 3
