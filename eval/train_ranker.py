"""`python -m eval train-ranker`: train the learned ranker (kb/search/ranker.py) and report it against
the fusions it replaces, all in one run.

Data (answerable questions only; a candidate is positive when it is a gold passage):
- lecoqa: ../shared/data/lecoqa/train.json, 1,234 colloquial legal questions; its knowledge base holds
  every gold article as a file of its own (named after the article: 中华人民共和国民法典第九百六十七条.txt);
  a passage is gold when its file is one of the question's `match_name`s.
- sample, policies: eval/testsets/sample.jsonl and policies.jsonl over the bundled corpus (data/corpus:
  the letter and the 17 policy documents); gold = supports an evidence string (eval/metrics.py).
  sample is also tested over the letter alone ("sample@letter"), its own corpus.

Knowledge bases are built by `python -m ingest` in a subprocess (eval does not import ingest), in
--work (default .ranker-work/), each with its embedding cache, so a rerun embeds nothing; each set's
candidates and features are kept there too (features.pkl, keyed by the generation and FEATURES).

Report: 5-fold GroupKFold by question on lecoqa, and train-on-one-set/test-on-another, each with BM25
alone, dense alone, equal-weight RRF (1:1), today's fusion (settings bm25_weight:dense_weight) and the
learned ranker: hit@1, hit@5, MRR@10 over the first 10 distinct passages (Retriever.passages). The
shipped model is then trained on all three sets and written to --out (kb/resources/ranker.txt). Every
model's tree shape (GRID) is chosen by CV within its own training data (`select`), never on what it is
scored on.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics import supports
from eval.testset import load_testset
from kb.core.settings import Settings
from kb.search.generation import Generation, SearchModels
from eval.ranker_words import featured, learn_table, out_of_fold, prepare
from kb.search.associations import ASSOCIATIONS_RESOURCE
from kb.search.ranker import FEATURES, SCORE_DEPTH, ChunkFacts, LearnedRanker, Query, models_text, positive
from kb.search.retriever import Retriever

REPO = Path(__file__).resolve().parents[1]
LECOQA = REPO.parent / "shared" / "data" / "lecoqa" / "train.json"
TESTSETS = REPO / "eval" / "testsets"
SEED = 20
FOLDS = 5
PARAMS: dict[str, object] = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [1, 5, 10], "learning_rate": 0.05,
    "num_leaves": 15, "min_data_in_leaf": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
    "lambda_l2": 1.0, "lambdarank_truncation_level": 20, "seed": SEED, "deterministic": True,
    "force_row_wise": True, "num_threads": 2, "verbose": -1,
}
ROUNDS = 200
# Tree shapes tried; `select` picks one by CV within the training data it is given (never the test fold):
# (name, parameters over PARAMS, rounds)
GRID: tuple[tuple[str, dict[str, object], int], ...] = (
    ("15 leaves", {}, ROUNDS),
    ("31 leaves", {"num_leaves": 31, "min_data_in_leaf": 40, "learning_rate": 0.03}, 400),
)
INNER_FOLDS = 3
# Every model is the average of this many boosters of the chosen shape, seeds SEED, SEED + 1, …: one seed's
# row and feature sampling (bagging_fraction, feature_fraction) moved lecoqa's CV MRR@10 by about as much as
# the last features added; the average of five gave +0.003 over one seed in the same folds (docs/ranker.md).
BAG = 5
METHODS = ("BM25", "dense", "RRF 1:1", "RRF today", "learned")


@dataclass
class Group:
    """One question's candidates: rankings, features, which are gold, and how to judge a passage list."""

    qid: str
    question: str
    dense: list[tuple[int, float]]
    lexical: list[tuple[int, float]]
    rows: list[int]
    features: np.ndarray
    labels: np.ndarray
    gold: tuple[str, ...]  # gold file stems (lecoqa) or evidence strings
    by_file: bool  # gold names files, else evidence texts
    # set by `prepare` (not cached): what the association features and tables are computed from
    query: Query | None = None
    facts: tuple[ChunkFacts, ...] = ()  # of `rows`
    gold_words: frozenset[str] = frozenset()  # the words of the gold passages


@dataclass
class Dataset:
    name: str
    kb: str  # which knowledge base (key of the retrievers)
    groups: list[Group]


# ---- knowledge bases

def lecoqa_questions(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def write_lecoqa_corpus(questions: list[dict], folder: Path) -> None:
    """One file per gold article, named after it; rewritten only when missing or changed."""
    folder.mkdir(parents=True, exist_ok=True)
    articles: dict[str, str] = {}
    for q in questions:
        articles.update(q["相关法规"])
    for name, text in sorted(articles.items()):
        path = folder / f"{name}.txt"
        body = text.strip() + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")


def build_kb(paths: list[Path], kb_dir: Path, seed: Path | None) -> None:
    """`python -m ingest` (incremental: an unchanged corpus is a no-op) with its own embedding cache."""
    env = {**os.environ, "IPKB_KB_DIR": str(kb_dir), "HF_HUB_OFFLINE": "1"}
    if seed and seed.is_file():
        env["IPKB_EMBED_SEED"] = str(seed)
    print(f"  knowledge base {kb_dir.name}: python -m ingest {' '.join(str(p) for p in paths)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "ingest", *map(str, paths), "-q"], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


# ---- candidates and features

def labels_for(retriever: Retriever, rows: list[int], gold: tuple[str, ...], by_file: bool) -> np.ndarray:
    chunks, docs = retriever.catalogue.chunks, retriever.catalogue.documents
    if by_file:
        return np.array([float(Path(docs[chunks[r].doc_id].file_name).stem in gold) for r in rows])
    return np.array([float(any(supports(chunks[r].text, e) for e in gold)) for r in rows])


def collect(retriever: Retriever, items: list[tuple[str, str, tuple[str, ...]]], by_file: bool) -> list[Group]:
    n = retriever.depth(10)
    groups = []
    for qid, question, gold in items:
        dense, lexical = retriever.rankings(question, n * SCORE_DEPTH)
        cands, matrix = retriever.candidate_table(question, dense, lexical, n)
        rows = [c.row for c in cands]
        groups.append(Group(qid, question, dense, lexical, rows, matrix, labels_for(retriever, rows, gold, by_file),
                            gold, by_file))
    return groups


def cached_collect(cache: Path, retriever: Retriever, name: str, items, by_file: bool) -> list[Group]:
    """The set's groups. Rankings and labels (the slow part: a query embedding each) come from the cache
    when the generation, questions and depth are the same; features are always computed anew (about
    10 ms a question), so a change of features needs no re-embedding."""
    key = hashlib.sha256(json.dumps([str(retriever.catalogue.chunks[0].chunk_id if retriever.size else ""),
                                     retriever.size, items, retriever.depth(10), SCORE_DEPTH],
                                    ensure_ascii=False).encode()).hexdigest()
    store: dict = pickle.loads(cache.read_bytes()) if cache.is_file() else {}
    if store.get(name, (None,))[0] == key:
        groups = store[name][1]
        n = retriever.depth(10)
        for g in groups:
            cands, g.features = retriever.candidate_table(g.question, g.dense, g.lexical, n)
            assert [c.row for c in cands] == g.rows
        return groups
    start = time.perf_counter()
    groups = collect(retriever, items, by_file)
    print(f"  {name}: {len(groups)} questions, rankings and features in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    store[name] = (key, groups)
    cache.write_bytes(pickle.dumps(store))
    return groups


# ---- orders and metrics

def rrf(dense, lexical, dense_weight: float, bm25_weight: float, k: int = 60) -> list[tuple[int, float]]:
    """Retriever._fuse with the given weights (ties to the better BM25 rank)."""
    fused: dict[int, float] = {}
    for weight, ranking in ((dense_weight, dense), (bm25_weight, lexical)):
        for rank, (row, _) in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical)}
    return sorted(fused.items(), key=lambda item: (-round(item[1], 12), lexical_rank.get(item[0], len(lexical))))


def orders(group: Group, settings: Settings, learned: np.ndarray | None, n: int) -> dict[str, list[tuple[int, float]]]:
    """Each method's order; the fusions read the first n of each ranking, as Retriever.search does."""
    dense, lexical = group.dense[:n], group.lexical[:n]
    out = {"BM25": lexical, "dense": dense, "RRF 1:1": rrf(dense, lexical, 1.0, 1.0),
           "RRF today": rrf(dense, lexical, settings.answer.dense_weight, settings.answer.bm25_weight, settings.answer.rrf_k)}
    if learned is not None:
        scores = positive(learned)
        out["learned"] = sorted(zip(group.rows, scores.tolist()), key=lambda item: -item[1])
    return out


def first_rank(retriever: Retriever, group: Group, order: list[tuple[int, float]]) -> int | None:
    for passage in retriever.passages(order, 10):
        gold = (Path(passage.source).stem in group.gold if group.by_file
                else any(supports(passage.text, e) for e in group.gold))
        if gold:
            return passage.rank
    return None


def score(retriever: Retriever, groups: list[Group], settings: Settings,
          predictions: list[np.ndarray] | None) -> dict[str, dict[str, float]]:
    ranks: dict[str, list[int | None]] = {}
    for i, group in enumerate(groups):
        learned = None if predictions is None else predictions[i]
        for method, order in orders(group, settings, learned, retriever.depth(10)).items():
            ranks.setdefault(method, []).append(first_rank(retriever, group, order))
    n = max(len(groups), 1)
    return {m: {"hit@1": sum(r == 1 for r in rs) / n, "hit@5": sum(r is not None and r <= 5 for r in rs) / n,
                "MRR@10": sum(1 / r for r in rs if r) / n} for m, rs in ranks.items()}


# ---- training

def train(groups: list[Group], seed: int = SEED, rounds: int = ROUNDS, params: dict[str, object] | None = None):
    """A lambdarank booster over the groups that have a gold candidate (the others teach nothing)."""
    import lightgbm

    useful = [g for g in groups if g.labels.any()]
    data = lightgbm.Dataset(np.vstack([g.features for g in useful]), np.concatenate([g.labels for g in useful]),
                            group=[len(g.rows) for g in useful], feature_name=list(FEATURES),
                            params={"verbose": -1}, free_raw_data=False)
    return lightgbm.train({**PARAMS, **(params or {}), "seed": seed}, data, num_boost_round=rounds)


def label_mrr(groups: list[Group], predictions: list[np.ndarray]) -> float:
    """MRR@10 of the first gold candidate by predicted score (candidates, not distinct passages: cheap)."""
    total = 0.0
    for g, p in zip(groups, predictions):
        ranked = g.labels[np.argsort(-p, kind="stable")][:10] if len(p) else np.zeros(0)
        hits = np.flatnonzero(ranked)
        total += 1 / (hits[0] + 1) if len(hits) else 0.0
    return total / max(len(groups), 1)


def select(groups: list[Group], folds: int = INNER_FOLDS) -> tuple[str, dict[str, object], int]:
    """The GRID entry with the best inner-CV label MRR over these (training) groups; ties to the first."""
    from sklearn.model_selection import GroupKFold

    texts = [g.question for g in groups]
    if len(set(texts)) < folds:
        return GRID[0]
    splits = list(GroupKFold(n_splits=folds).split(texts, groups=texts))
    best, best_mrr = GRID[0], -1.0
    for entry in GRID:
        _, params, rounds = entry
        scores = []
        for train_idx, test_idx in splits:
            booster = train([groups[i] for i in train_idx], rounds=rounds, params=params)
            test = [groups[i] for i in test_idx]
            scores.append(label_mrr(test, predict([booster], test)))
        if float(np.mean(scores)) > best_mrr + 1e-9:
            best, best_mrr = entry, float(np.mean(scores))
    return best


def fit(groups: list[Group], bag: int = BAG) -> tuple[list, str]:
    """`bag` boosters (seeds SEED…) of the shape `select` picks on these groups, and that shape's name."""
    name, params, rounds = select(groups)
    return [train(groups, seed=SEED + i, rounds=rounds, params=params) for i in range(bag)], name


def predict(boosters: list, groups: list[Group]) -> list[np.ndarray]:
    """The boosters' average score of each group's candidates, as the app computes it."""
    ranker = LearnedRanker(tuple(boosters), "training")
    return [ranker.scores(g.features) for g in groups]


def cross_validate(groups: list[Group], folds: int = FOLDS) -> tuple[list[np.ndarray], list[str]]:
    """Out-of-fold predictions, folds grouped by question text (GroupKFold), each fold's tree shape chosen
    by CV inside its training part; and the shapes chosen."""
    from sklearn.model_selection import GroupKFold

    out: list[np.ndarray] = [np.zeros(0)] * len(groups)
    chosen = []
    texts = [g.question for g in groups]
    for train_idx, test_idx in GroupKFold(n_splits=folds).split(texts, groups=texts):
        train_groups, test_groups = featured([groups[i] for i in train_idx], [groups[i] for i in test_idx])
        boosters, name = fit(train_groups)
        chosen.append(name)
        for i, p in zip(test_idx, predict(boosters, test_groups)):
            out[i] = p
    return out, chosen


# ---- the command

def table(title: str, rows: dict[str, dict[str, float]], questions: int) -> list[str]:
    lines = [f"{title} ({questions} questions)", f"  {'method':<34}{'hit@1':>8}{'hit@5':>8}{'MRR@10':>8}"]
    lines += [f"  {m:<34}{r['hit@1']:>8.3f}{r['hit@5']:>8.3f}{r['MRR@10']:>8.3f}" for m, r in rows.items()]
    return lines


def run_training(settings: Settings, work: Path, out: Path | None, lecoqa: Path = LECOQA,
                 testsets: Path = TESTSETS, corpus: Path = REPO / "data" / "corpus",
                 log: Callable[[str], None] = print) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    questions = lecoqa_questions(lecoqa)
    write_lecoqa_corpus(questions, work / "lecoqa-corpus")
    letter = corpus / "nbamr-2019-25-reply-to-proposal-130.txt"
    seed = REPO / "data" / "embed-seed.sqlite"
    kbs = {"lecoqa": ([work / "lecoqa-corpus"], None), "bundled": ([corpus], seed), "letter": ([letter], seed)}
    for name, (paths, embed_seed) in kbs.items():
        build_kb(paths, work / f"kb-{name}", embed_seed)
    base = settings.replace(ranker="rrf", embed_seed=None)
    models = SearchModels.load(base)
    retrievers = {name: Generation.open(base.replace(kb_dir=work / f"kb-{name}"), models).retriever
                  for name in kbs}
    cache = work / "features.pkl"
    lecoqa_items = [(str(q["query_id"]), q["问题"], tuple(q["match_name"])) for q in questions]
    sets = {"lecoqa": Dataset("lecoqa", "lecoqa", cached_collect(cache, retrievers["lecoqa"], "lecoqa",
                                                                 lecoqa_items, True))}
    for name, kb, file in (("sample", "bundled", "sample.jsonl"), ("policies", "bundled", "policies.jsonl"),
                           ("sample@letter", "letter", "sample.jsonl")):
        items = [(q.id, q.question, tuple(q.evidence)) for q in load_testset(testsets / file) if q.answerable]
        sets[name] = Dataset(name, kb, cached_collect(cache, retrievers[kb], name, items, False))
    for dataset in sets.values():
        prepare(retrievers[dataset.kb], dataset.groups)

    report: dict = {"date": started, "features": len(FEATURES), "params": PARAMS, "bag": BAG,
                    "grid": [[name, params, rounds] for name, params, rounds in GRID]}
    lines = [f"learned ranker, {started}: {len(FEATURES)} features, LightGBM lambdarank, {BAG} seeds from {SEED} "
             f"averaged; tree shape ({', '.join(name for name, _, _ in GRID)}) chosen by {INNER_FOLDS}-fold CV within each training set"]
    lec = sets["lecoqa"]
    predictions, chosen = cross_validate(lec.groups)
    cv = score(retrievers["lecoqa"], lec.groups, settings, predictions)
    report["cv_lecoqa"] = cv
    report["cv_chosen"] = chosen
    lines += [""] + table(f"lecoqa, {FOLDS}-fold GroupKFold by question (KB: {retrievers['lecoqa'].size} chunks)",
                          cv, len(lec.groups))
    lines += [f"  (shapes chosen in the folds: {', '.join(chosen)})"]
    cross: dict[str, dict] = {}
    splits = [("sample", ["lecoqa"]), ("sample", ["policies"]), ("sample", ["lecoqa", "policies"]),
              ("policies", ["lecoqa"]), ("policies", ["sample"]), ("policies", ["lecoqa", "sample"]),
              ("sample@letter", ["lecoqa", "policies"])]
    for test, trains in splits:
        test_set = sets[test]
        train_groups, test_groups = featured([g for name in trains for g in sets[name].groups], test_set.groups)
        boosters, _ = fit(train_groups)
        result = score(retrievers[test_set.kb], test_groups, settings, predict(boosters, test_groups))
        entry = cross.setdefault(test, {m: result[m] for m in METHODS if m != "learned"})
        entry[f"learned (trained on {'+'.join(trains)})"] = result["learned"]
    report["cross"] = cross
    for test, rows in cross.items():
        lines += [""] + table(f"{test} (KB: {retrievers[sets[test].kb].size} chunks)", rows, len(sets[test].groups))

    everything = [g for s in ("lecoqa", "sample", "policies") for g in sets[s].groups]
    boosters, shape = fit(out_of_fold(everything))
    words = learn_table(everything)
    report["model_shape"] = shape
    report["associations"] = len(words)
    model = models_text(boosters)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(model, encoding="utf-8")
        table_path = out.with_name(ASSOCIATIONS_RESOURCE)
        table_path.write_text(words.to_text(), encoding="utf-8")
        lines += ["", f"model (trained on lecoqa+sample+policies, {shape}, {BAG} seeds averaged) -> {out} ({len(model.encode()) / 1024:.0f} KB)",
                  f"word associations ({len(words.table)} question words, {len(words)} pairs) -> {table_path} "
                  f"({table_path.stat().st_size / 1024:.0f} KB)"]
    report["latency_ms"] = latency(retrievers["bundled"], LearnedRanker.from_string(model, associations=words),
                                   sets["policies"].groups)
    lat = report["latency_ms"]
    lines += [f"ranker cost per query (features + model, {lat['candidates']:.0f} candidates on average): "
              f"p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms; of that the model {lat['model_p50']:.2f} ms"]
    for line in lines:
        log(line)
    return report


def latency(retriever: Retriever, ranker: LearnedRanker | None, groups: list[Group]) -> dict[str, float]:
    """The ranker's own cost per query: features (chunk facts cold on the first pass, as after start-up,
    warm after) and the model; the two retrievals are not counted."""
    from eval.metrics import percentile

    assert ranker is not None
    total, model, sizes = [], [], []
    for _ in range(2):
        for g in groups:
            start = time.perf_counter()
            _, matrix = retriever.candidate_table(g.question, g.dense, g.lexical, retriever.depth(10),
                                                  ranker.associations)
            mid = time.perf_counter()
            ranker.scores(matrix)
            end = time.perf_counter()
            total.append((end - start) * 1000)
            model.append((end - mid) * 1000)
            sizes.append(len(matrix))
    return {"p50": percentile(total, 50), "p95": percentile(total, 95), "model_p50": percentile(model, 50),
            "candidates": sum(sizes) / max(len(sizes), 1)}
