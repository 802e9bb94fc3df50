"""Vector search at 10,000 to 1,000,000 chunks: FAISS flat (exact) against FAISS HNSW, FAISS IVF-Flat
and milvus-lite, on synthetic vectors derived from the bundled corpus's real e5 vectors.

Synthetic data (`synthesize`): the real chunk vectors of a knowledge base (by default `.kb`, the
bundled corpus: 1,263 chunks of multilingual-e5-small, 384 dimensions) are repeated document by
document, in random order, under new synthetic documents until the size is reached. Each synthetic row
is a mix of three real vectors — its "source" chunk (weight 0.6–1), the rest split between two chunks
drawn at random — plus Gaussian noise shaped by the real vectors' own covariance (scale --noise), then
L2-normalised: it keeps e5's anisotropy (mean pairwise cosine 0.89), unlike isotropic Gaussian
vectors, which have no neighbourhoods at all. The noise scale is calibrated on local intrinsic
dimensionality (LID, the Levina–Bickel estimate from the 10 and 20 nearest neighbours), which is what
makes a data set easy or hard for approximate search: at --noise 0.4 a synthetic sample as large as
the real corpus has the real corpus's LID (about 16); --noise 0.85 (LID about 35, each row as far from
its source as a real chunk is from its nearest neighbour) is the harder stress test. The run records
both LIDs. Each synthetic document gets one of 100 places: "10% allowed" is places 0–9, "3%" places
0–2, "1%" place 0 (the retriever's place and status filters select whole documents, as here). The
text of a row (milvus stores it) is its source chunk's text with a copy mark.

Queries: the questions of eval/testsets/*.jsonl (256), embedded once with e5 ("query: "); the query
embedding is not timed. Searches are single queries, one at a time, k = 10, p50/p95 in ms. Recall@10
is measured against the exact (flat) top 10 of the same query and filter.

Run: `.venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--quick] [--kb DIR]
[--json FILE] [--md FILE] [--plot docs/scale-latency.png]`. milvus-lite is measured when installed
(`pip install "pymilvus==3.0.2" "milvus-lite==3.2.2"`) up to --milvus-max rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from eval.metrics import percentile  # noqa: E402
from kb.store import vectors as store  # noqa: E402

NOISE = 0.4  # covariance-shaped noise scale: the real corpus's LID (see the docstring); --noise
NPROBES = [8, 16, 32, 64, 128]  # IVF lists searched (FAISS and milvus-lite)
EF_SEARCHES = [16, 32, 64, 128, 256, 512, 1024, 2048]
BUILD_THREADS = faiss.omp_get_max_threads()
# One query at a time, as the app serves one request's search: on the shared 2-core machine, OpenMP's
# two threads for a single flat search were 3x slower than one (100,000 rows: p50 96-104 ms against
# 30-32 ms at load 7), so searches are timed with one thread (the HNSW walk uses one anyway).
SEARCH_THREADS = 1
PLACES = 100
K = 10
DIM = 384


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_avg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- data -------------------------------------------------------------------------------------------

def real_corpus(kb: Path) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """The real chunk vectors of a knowledge base (folder or one generation), its documents as row lists, texts."""
    generation = kb / "current" if (kb / "current").exists() else kb
    index = faiss.read_index(str(generation / "vectors.faiss"))
    vectors = index.reconstruct_n(0, index.ntotal)
    chunk_ids = json.loads((generation / "rows.json").read_text(encoding="utf-8"))["chunk_ids"]
    with sqlite3.connect(f"file:{generation / 'kb.sqlite'}?mode=ro", uri=True) as db:
        found = {cid: (doc, text) for cid, doc, text in db.execute("SELECT chunk_id, doc_id, text FROM chunks")}
    docs: dict[str, list[int]] = {}
    for row, cid in enumerate(chunk_ids):
        docs.setdefault(found[cid][0], []).append(row)
    return vectors, [np.array(rows) for rows in docs.values()], [found[cid][1] for cid in chunk_ids]


def synthesize(real: np.ndarray, docs: list[np.ndarray], n: int, seed: int = 0,
               noise: float = NOISE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n synthetic rows (see the module docstring): vectors, the source row of each, the place of each."""
    rng = np.random.default_rng(seed)
    mean = real.mean(0)
    values, axes = np.linalg.eigh(np.cov((real - mean).T))
    shape = (axes * np.sqrt(np.clip(values, 0, None))).astype(np.float32)  # noise = z @ shape.T ~ N(0, cov)
    source, place = np.empty(n, np.int32), np.empty(n, np.int16)
    filled = 0
    while filled < n:
        rows = docs[rng.integers(len(docs))][: n - filled]
        source[filled:filled + len(rows)] = rows
        place[filled:filled + len(rows)] = rng.integers(PLACES)
        filled += len(rows)
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 50_000):
        a = source[start:start + 50_000]
        m = len(a)
        wa = rng.uniform(0.6, 1.0, m).astype(np.float32)
        wb = (1 - wa) * rng.uniform(0, 1, m).astype(np.float32)
        mixed = (wa[:, None] * real[a] + wb[:, None] * real[rng.integers(len(real), size=m)]
                 + (1 - wa - wb)[:, None] * real[rng.integers(len(real), size=m)])
        mixed += noise * (rng.standard_normal((m, real.shape[1]), dtype=np.float32) @ shape.T)
        out[start:start + m] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return out, source, place


def lid(x: np.ndarray, k: int) -> float:
    """Median local intrinsic dimensionality (Levina–Bickel MLE over the k nearest neighbours)."""
    scores = x @ x.T
    np.fill_diagonal(scores, -2)
    dist = np.sqrt(np.clip(2 - 2 * -np.sort(-scores, axis=1)[:, :k], 1e-12, None))
    return float(np.median(-1 / np.mean(np.log(dist / dist[:, -1:]), axis=1)))


def calibration(real: np.ndarray, docs: list[np.ndarray], noise: float) -> dict:
    """The real corpus's LID against that of synthetic samples of its size (3 seeds)."""
    samples = [synthesize(real, docs, len(real), seed=seed, noise=noise) for seed in (1, 2, 3)]
    return {"noise": noise, "real_lid_k10_k20": [lid(real, 10), lid(real, 20)],
            "synthetic_lid_k10_k20": [float(np.mean([lid(x, k) for x, _, _ in samples])) for k in (10, 20)],
            "cos_to_source_median": float(np.median([(x * real[src]).sum(1) for x, src, _ in samples]))}


def encode_questions(limit: int) -> np.ndarray:
    from kb.models.embeddings import E5Embeddings

    questions = [json.loads(line)["question"] for f in sorted((REPO / "eval" / "testsets").glob("*.jsonl"))
                 for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    embedder = E5Embeddings()
    return np.vstack([embedder.encode_query(q) for q in questions[:limit]]).astype(np.float32)


def exact_top(x: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Ground truth: the exact top K rows of each query among the allowed rows (one batched product)."""
    rows = np.arange(len(x)) if allowed is None else np.flatnonzero(allowed)
    out = np.empty((len(queries), K), np.int64)
    for start in range(0, len(queries), 64):
        scores = queries[start:start + 64] @ x[rows].T if allowed is not None else queries[start:start + 64] @ x.T
        top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        order = np.take_along_axis(scores, top, 1).argsort(1)[:, ::-1]
        out[start:start + 64] = rows[np.take_along_axis(top, order, 1)]
    return out


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def timed_search(search, queries: np.ndarray) -> tuple[list[np.ndarray], dict]:
    search(queries[0])  # warm-up
    found, ms = [], []
    for q in queries:
        start = time.perf_counter()
        rows = search(q)
        ms.append((time.perf_counter() - start) * 1000)
        found.append(np.asarray(rows))
    return found, {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)}


def file_mb(index: faiss.Index, folder: Path) -> float:
    path = folder / "index.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size / 1e6
    path.unlink()
    return size


# --- the indexes ------------------------------------------------------------------------------------

def faiss_rows(index: faiss.Index, params=None):
    def search(q: np.ndarray) -> np.ndarray:
        _, rows = index.search(q.reshape(1, -1), K, params=params)
        return rows[0][rows[0] >= 0]
    return search


def hnsw_params(efSearch: int = store.HNSW_EF_SEARCH, sel=None):
    return faiss.SearchParametersHNSW(efSearch=efSearch, sel=sel)


def ivf_params(nprobe: int = store.IVF_NPROBE, sel=None):
    return faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)


def build_and_size(make, x: np.ndarray, tmp: Path) -> tuple[faiss.Index, dict]:
    rss = rss_mb()
    faiss.omp_set_num_threads(BUILD_THREADS)
    start = time.perf_counter()
    index = make(x)
    built = time.perf_counter() - start
    faiss.omp_set_num_threads(SEARCH_THREADS)
    return index, {"build_s": built, "rss_delta_mb": rss_mb() - rss, "file_mb": file_mb(index, tmp)}


def cached_hnsw(x: np.ndarray, tmp: Path, cache: Path | None, noise: float) -> tuple[faiss.Index, dict]:
    """Build the HNSW index, or load the one an earlier run built of the same data with the same parameters
    (--cache: a million-row build takes half an hour on the shared machine); its build figures come along."""
    name = f"hnsw-{len(x)}-M{store.HNSW_M}-efc{store.HNSW_EF_CONSTRUCTION}-noise{noise}"
    if cache and (cache / f"{name}.json").exists():
        return faiss.read_index(str(cache / f"{name}.faiss")), json.loads((cache / f"{name}.json").read_text())
    index, figures = build_and_size(store.build_hnsw, x, tmp)
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        faiss.write_index(index, str(cache / f"{name}.faiss"))
        (cache / f"{name}.json").write_text(json.dumps({**figures, "built": time.strftime("%Y-%m-%d %H:%M"),
                                                        "load_avg": load_avg()}))
    return index, figures


def bench_app(index: faiss.Index, queries: np.ndarray, truth: dict, masks: dict) -> dict:
    """The app's own code path: VectorIndex.search, with the filter masks as the retriever passes them."""
    out, vi = {}, store.VectorIndex(index)
    for label, mask in [(None, None), *masks.items()]:
        found, timing = timed_search(lambda q, m=mask: vi.search(q, K, m)[0], queries)
        ok = mask is None or all(mask[f].all() for f in found)
        out[f"app_{label or 'all'}"] = {"recall@10": recall(found, truth[label][:len(queries)]),
                                        "filter_respected": ok, **timing}
    return out


def bench_ann(index: faiss.Index, params, sweep: tuple[str, list[int]], queries: np.ndarray, truth: dict,
              masks: dict) -> dict:
    """The index alone: recall and latency over a sweep of its search parameter; each filter's graph walk
    or list scan at the default parameter (the HNSW walk also with efSearch / sqrt(share), as the app
    does) and the exact scan over the allowed rows."""
    name, values = sweep
    out: dict = {"sweep": {}} if values else {}
    for value in values:
        found, timing = timed_search(faiss_rows(index, params(**{name: value})), queries)
        out["sweep"][value] = {"recall@10": recall(found, truth[None]), **timing}
    for label, mask in masks.items():
        bitmap = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(bitmap)
        found, timing = timed_search(faiss_rows(index, params(sel=sel)), queries)
        out[f"walk_{label}"] = {"recall@10": recall(found, truth[label]), **timing}
        if isinstance(index, faiss.IndexHNSW):
            ef = min(store.HNSW_EF_SEARCH_MAX, int(store.HNSW_EF_SEARCH / np.sqrt(mask.mean())))
            found, timing = timed_search(faiss_rows(index, params(efSearch=ef, sel=sel)), queries)
            out[f"walk_scaled_{label}"] = {"efSearch": ef, "recall@10": recall(found, truth[label]), **timing}
            storage = faiss.downcast_index(index.storage)
            found, timing = timed_search(faiss_rows(storage, faiss.SearchParameters(sel=sel)), queries)
            out[f"exact_{label}"] = {"recall@10": recall(found, truth[label]), **timing}
    return out


def chosen(sweep: dict) -> int:
    """The smallest swept value whose recall@10 reaches 0.95, else the largest."""
    good = [v for v in sorted(sweep) if sweep[v]["recall@10"] >= 0.95]
    return good[0] if good else max(sweep)


def bench_milvus(x: np.ndarray, source: np.ndarray, place: np.ndarray, texts: list[str], queries: np.ndarray,
                 truth: dict, tmp: Path) -> dict:
    from pymilvus import DataType, MilvusClient

    nlist = store.ivf_lists(len(x))
    rss = rss_mb()
    client = MilvusClient(str(tmp / "milvus.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=x.shape[1])
    schema.add_field("place", DataType.INT16)
    schema.add_field("text", DataType.VARCHAR, max_length=8192)
    index_params = client.prepare_index_params()
    index_params.add_index(field_name="vector", index_type="IVF_FLAT", metric_type="IP", params={"nlist": nlist})
    start = time.perf_counter()
    client.create_collection("chunks", schema=schema, index_params=index_params)
    for first in range(0, len(x), 5000):
        batch = range(first, min(first + 5000, len(x)))
        client.insert("chunks", [{"id": i, "vector": x[i], "place": int(place[i]),
                                  "text": f"{texts[source[i]]}（副本{i}）"} for i in batch])
    client.flush("chunks")
    while client.describe_index("chunks", "vector").get("pending_index_rows", 0):
        time.sleep(0.5)
    client.load_collection("chunks")
    db = tmp / "milvus.db"
    out = {"build_s": time.perf_counter() - start, "nlist": nlist, "rss_delta_mb": rss_mb() - rss,
           "file_mb": sum(f.stat().st_size for f in db.rglob("*") if f.is_file()) / 1e6 if db.is_dir()
           else db.stat().st_size / 1e6}

    def search(nprobe: int, expr: str = ""):
        def run(q: np.ndarray) -> np.ndarray:
            hits = client.search("chunks", data=[q], limit=K, filter=expr, output_fields=["id"],
                                 search_params={"metric_type": "IP", "params": {"nprobe": nprobe}})[0]
            return np.array([h["id"] for h in hits], np.int64)
        return run

    out["sweep"] = {}
    for nprobe in NPROBES:
        found, timing = timed_search(search(nprobe), queries)
        out["sweep"][nprobe] = {"recall@10": recall(found, truth[None]), **timing}
    out["nprobe"] = nprobe = store.IVF_NPROBE  # as the app's FAISS IVF-Flat
    for label, expr in (("10%", f"place < {PLACES // 10}"), ("3%", f"place < {PLACES * 3 // 100}"),
                        ("1%", "place == 0")):
        found, timing = timed_search(search(nprobe, expr), queries)
        out[f"walk_{label}"] = {"recall@10": recall(found, truth[label]), **timing}
    client.close()
    return out


# --- the run ----------------------------------------------------------------------------------------

def run_size(n: int, real, docs, texts, queries, args, tmp: Path) -> dict:
    result: dict = {"rows": n, "load_avg_start": load_avg()}
    x, source, place = synthesize(real, docs, n, seed=n, noise=args.noise)
    masks = {"10%": place < PLACES // 10, "3%": place < PLACES * 3 // 100, "1%": place == 0}
    result["allowed_share"] = {k: float(m.mean()) for k, m in masks.items()}
    truth = {None: exact_top(x, queries, None), **{k: exact_top(x, queries, m) for k, m in masks.items()}}
    few = queries if n < 1_000_000 else queries[:64]  # flat and milvus-lite take long a search at 1M
    index, result["flat"] = build_and_size(store.build_flat, x, tmp)
    result["flat"].update(bench_app(index, few, truth, masks))
    del index
    print(f"  flat: p50 {result['flat']['app_all']['p50_ms']:.2f} ms", flush=True)
    if "hnsw" in args.indexes:
        index, result["hnsw"] = cached_hnsw(x, tmp, args.cache, args.noise)
        result["hnsw"].update(bench_app(index, queries, truth, masks))
        result["hnsw"].update(bench_ann(index, hnsw_params, ("efSearch", EF_SEARCHES), queries, truth, masks))
        del index
        print(f"  hnsw: built in {result['hnsw']['build_s']:.0f} s, {result['hnsw']['app_all']}", flush=True)
    if "ivf" in args.indexes:
        index, result["ivf"] = build_and_size(store.build_ivf, x, tmp)
        result["ivf"].update(nlist=index.nlist, nprobe=store.IVF_NPROBE)
        result["ivf"].update(bench_app(index, queries, truth, masks))
        result["ivf"].update(bench_ann(index, ivf_params, ("nprobe", NPROBES), queries, truth, masks))
        del index
        print(f"  ivf: built in {result['ivf']['build_s']:.0f} s, {result['ivf']['app_all']}", flush=True)
    if "milvus" in args.indexes and n <= args.milvus_max:
        try:
            result["milvus"] = bench_milvus(x, source, place, texts, few, truth, tmp)
            print(f"  milvus: built in {result['milvus']['build_s']:.0f} s, {result['milvus']['sweep']}", flush=True)
        except ImportError as exc:
            result["milvus"] = {"skipped": f"not installed ({exc})"}
    for key in ("flat", "hnsw", "ivf", "milvus"):
        if "build_s" in result.get(key, {}):
            result[key].setdefault("load_avg_after", load_avg())  # an index measured later is merged with its own
    result["load_avg_end"] = load_avg()
    return result


def cell(m: dict) -> str:
    return f"{m['p50_ms']:.2f} / {m['p95_ms']:.2f} ms, {m['recall@10']:.3f}"


def labels() -> dict[str, str]:
    return {"flat": "FAISS flat (exact): the app up to ann_threshold",
            "ivf": f"FAISS IVF-Flat, sqrt(n) lists, nprobe {store.IVF_NPROBE}: the app above",
            "hnsw": f"FAISS HNSW M={store.HNSW_M}, efC={store.HNSW_EF_CONSTRUCTION}, ef={store.HNSW_EF_SEARCH}",
            "milvus": f"milvus-lite IVF_FLAT, sqrt(n) lists, nprobe {store.IVF_NPROBE}"}


def markdown(results: list[dict]) -> str:
    """Per size and index: build, memory, search p50/p95 and recall@10, unfiltered and filtered (the app's
    code path, VectorIndex.search, for the FAISS indexes; milvus-lite's filter expression)."""
    lines = ["| rows | index | build | file / RSS added | search p50 / p95, recall@10 | 10% allowed | 3% allowed "
             "| 1% allowed |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for key in ("flat", "ivf", "hnsw", "milvus"):
            e = r.get(key, {})
            if "build_s" not in e:
                continue
            kind = "walk" if key == "milvus" else "app"
            search = e["sweep"][e["nprobe"]] if key == "milvus" else e["app_all"]
            filtered = " | ".join(cell(e[f"{kind}_{f}"]) if f"{kind}_{f}" in e else "–" for f in ("10%", "3%", "1%"))
            label = labels()[key].replace(f"nprobe {store.IVF_NPROBE}", f"nprobe {e['nprobe']}") if key == "milvus" \
                else labels()[key]
            lines.append(f"| {r['rows']:,} | {label} | {e['build_s']:.1f} s | {e['file_mb']:.0f} MB / "
                         f"+{e['rss_delta_mb']:.0f} MB | {cell(search)} | {filtered} |")
    lines.append("\nload average (1/5/15 min) during each size: " + "; ".join(
        f"{r['rows']:,}: {r['load_avg_start']} → {r['load_avg_end']}" for r in results))
    for key, name, values in (("ivf", "IVF-Flat nprobe", NPROBES), ("hnsw", "HNSW efSearch", EF_SEARCHES),
                              ("milvus", "milvus-lite nprobe", NPROBES)):
        swept = [r for r in results if "sweep" in r.get(key, {})]
        if swept:
            lines += ["", f"| rows | {name}: p50 ms, recall@10 | " + " | ".join(map(str, values)) + " |",
                      "|---|---|" + "---|" * len(values)]
            for r in swept:
                sweep = r[key]["sweep"]
                lines.append(f"| {r['rows']:,} | | " + " | ".join(
                    f"{sweep[v]['p50_ms']:.2f}, {sweep[v]['recall@10']:.3f}" if v in sweep else "–" for v in values)
                    + " |")
    lines += ["", "| rows | filtered search: p50 / p95 ms, recall@10 | 10% | 3% | 1% |", "|---|---|---|---|---|"]
    rows = (("ivf", "walk", f"IVF, nprobe {store.IVF_NPROBE} whatever the filter"),
            ("ivf", "app", f"IVF, nprobe {store.IVF_NPROBE} / sqrt(share) (the app)"),
            ("hnsw", "walk", f"HNSW walk, ef {store.HNSW_EF_SEARCH}"),
            ("hnsw", "walk_scaled", "HNSW walk, ef / sqrt(share)"),
            ("hnsw", "exact", "HNSW's vectors, every allowed row"))
    for r in results:
        for key, kind, label in rows:
            e = r.get(key, {})
            if f"{kind}_10%" in e:
                cells = " | ".join(cell(e[f"{kind}_{f}"]) for f in ("10%", "3%", "1%"))
                lines.append(f"| {r['rows']:,} | {label} | {cells} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for key, style in (("flat", "o-"), ("ivf", "s-"), ("hnsw", "^--"), ("milvus", "d:")):
        points = [(r["rows"], r[key]["sweep"][r[key]["nprobe"]] if key == "milvus" else r[key]["app_all"])
                  for r in results if "build_s" in r.get(key, {})]
        if points:
            label = labels()[key].split(", nprobe")[0] if key == "milvus" else labels()[key]
            ax.plot([n for n, _ in points], [m["p50_ms"] for _, m in points], style, label=label)
            for n, m in points:
                if key != "flat":
                    ax.annotate(f"{m['recall@10']:.2f}", (n, m["p50_ms"]), textcoords="offset points", xytext=(4, -10),
                                fontsize=7)
    ax.axhline(20, color="grey", linestyle=":", label="target: p50 20 ms")
    ax.set(xscale="log", yscale="log", xlabel="chunks", ylabel="search p50, ms (one query, k = 10)",
           title="Vector search latency against size (labels: recall@10 against exact)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, default=REPO / ".kb", help="knowledge base whose vectors seed the data")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 64 queries, FAISS only: about a minute")
    parser.add_argument("--queries", type=int, default=256, help="test-set questions used as queries")
    parser.add_argument("--indexes", default="hnsw,ivf,milvus", help="besides flat: hnsw, ivf, milvus")
    parser.add_argument("--milvus-max", type=int, default=1_000_000, help="largest size milvus-lite is given")
    parser.add_argument("--json", type=Path, help="write every figure here (after each size)")
    parser.add_argument("--md", type=Path, help="write the tables here")
    parser.add_argument("--plot", type=Path, help="write the latency plot here (PNG)")
    parser.add_argument("--noise", type=float, default=NOISE, help="noise scale of the synthetic rows")
    parser.add_argument("--cache", type=Path, help="keep built HNSW indexes here and reuse them")
    parser.add_argument("--merge", action="store_true",
                        help="update the --json file's figures with this run's (other sizes and indexes kept)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.queries, args.indexes = [10_000], 64, "hnsw,ivf"
    if not (args.kb / "current").exists() and not (args.kb / "vectors.faiss").exists():
        print(f"no knowledge base at {args.kb}: build one first (`python -m ingest --kb {args.kb}`)")
        return 2
    real, docs, texts = real_corpus(args.kb)
    calibrated = calibration(real, docs, args.noise)
    queries = encode_questions(args.queries)
    print(f"{len(real)} real vectors in {len(docs)} documents, {len(queries)} queries, faiss {faiss.__version__} "
          f"({BUILD_THREADS} threads to build, {SEARCH_THREADS} to search), load avg {load_avg()}\n"
          f"calibration: {calibrated}", flush=True)
    results: list[dict] = []
    if args.merge and args.json and args.json.exists():  # keep the other sizes' and indexes' figures
        results = json.loads(args.json.read_text(encoding="utf-8"))
        for r in results:  # JSON made the swept values strings
            for e in r.values():
                if isinstance(e, dict) and "sweep" in e:
                    e["sweep"] = {int(v): m for v, m in e["sweep"].items()}
    tmp = Path(tempfile.mkdtemp(prefix="ipkb-scale-"))
    try:
        for n in sizes:
            print(f"{n:,} rows", flush=True)
            size_tmp = tmp / str(n)
            size_tmp.mkdir()
            result = run_size(n, real, docs, texts, queries, args, size_tmp)
            result["calibration"] = calibrated
            earlier = next((r for r in results if r["rows"] == n), None)
            if earlier is None:
                results.append(result)
            else:
                earlier.update(result)
            results.sort(key=lambda r: r["rows"])
            shutil.rmtree(size_tmp, ignore_errors=True)
            if args.json:  # after each size: a long run keeps what it measured
                args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = markdown(results)
    print(table)
    if args.md:
        args.md.write_text(table + "\n", encoding="utf-8")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
