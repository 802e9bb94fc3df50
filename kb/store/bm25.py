"""BM25 over the shared tokeniser's tokens (kb/core/tokenizer.py).

The index is built once at ingestion and saved as JSON (no pickle); loading turns the
postings into numpy arrays of precomputed BM25 weights, so a query is a handful of
vector additions. The same weights as sparse vectors (`Lexicon`) give a vector database
the same scores: a row's vector holds its terms' weights, a query's holds 1 per term, so
their inner product is the BM25 score.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class BM25Index:
    """Rows are positions in the knowledge base's row list (the same rows as the vector index)."""

    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # term -> (rows, BM25 term weight in that row)
    rows: int

    K1 = 1.5
    B = 0.75

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> dict:
        """The JSON-ready index: term frequencies per row and row lengths."""
        lengths = [len(t) for t in token_lists]
        postings: dict[str, list[list[int]]] = {}
        for row, tokens in enumerate(token_lists):
            for term, tf in Counter(tokens).items():
                entry = postings.setdefault(term, [[], []])
                entry[0].append(row)
                entry[1].append(tf)
        return {"k1": cls.K1, "b": cls.B, "lengths": lengths, "postings": postings}

    @classmethod
    def from_json(cls, raw: dict) -> BM25Index:
        k1, b = raw["k1"], raw["b"]
        lengths = np.asarray(raw["lengths"], dtype=np.float32)
        n = len(lengths)
        avg = float(lengths.mean()) if n else 1.0
        postings = {}
        for term, (rows, tfs) in raw["postings"].items():
            rows_a = np.asarray(rows, dtype=np.int64)
            tf = np.asarray(tfs, dtype=np.float32)
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            weight = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[rows_a] / max(avg, 1e-6)))
            postings[term] = (rows_a, weight.astype(np.float32))
        return cls(postings, n)

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def idf(self, term: str) -> float:
        """Inverse document frequency; a term the knowledge base never uses gets the highest."""
        return idf(self.rows, len(self.postings[term][0]) if term in self.postings else 0)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        scores = np.zeros(self.rows, dtype=np.float32)
        for term in set(query_tokens):
            if term in self.postings:
                rows, weight = self.postings[term]
                scores[rows] += weight
        return scores


def idf(rows: int, df: int) -> float:
    return math.log(1 + (rows - df + 0.5) / (df + 0.5))


@dataclass
class Lexicon:
    """Each term's id (its dimension in the sparse vectors) and document frequency."""

    ids: dict[str, int]
    df: list[int]
    rows: int

    @classmethod
    def of(cls, index: BM25Index) -> Lexicon:
        terms = sorted(index.postings)
        return cls({t: i for i, t in enumerate(terms)}, [len(index.postings[t][0]) for t in terms], index.rows)

    def row_vectors(self, index: BM25Index) -> list[dict[int, float]]:
        """Each row's BM25 term weights, by term id."""
        vectors: list[dict[int, float]] = [{} for _ in range(index.rows)]
        for term, (rows, weights) in index.postings.items():
            term_id = self.ids[term]
            for row, weight in zip(rows.tolist(), weights.tolist()):
                vectors[row][term_id] = weight
        return vectors

    def query(self, tokens: list[str]) -> dict[int, float]:
        """1 for each distinct known term: the inner product with a row is its BM25 score."""
        return {self.ids[t]: 1.0 for t in set(tokens) if t in self.ids}

    def idf(self, term: str) -> float:
        return idf(self.rows, self.df[self.ids[term]] if term in self.ids else 0)

    def save(self, path: Path) -> None:
        terms = sorted(self.ids, key=self.ids.__getitem__)
        path.write_text(json.dumps({"rows": self.rows, "terms": [[t, self.df[self.ids[t]]] for t in terms]},
                                   ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls({t: i for i, (t, _) in enumerate(raw["terms"])}, [df for _, df in raw["terms"]], raw["rows"])


def save_bm25(path: Path, token_lists: list[list[str]]) -> None:
    path.write_text(json.dumps(BM25Index.build(token_lists), ensure_ascii=False, separators=(",", ":")),
                    encoding="utf-8")
