"""Find the passages that answer a question: dense + BM25, ranked by a learned model or fused by reciprocal rank.

A `Retriever` belongs to one generation (kb/search/generation.py opens them) and searches
its `SearchIndex`, whichever store holds it (kb/store/backends.py). `search()` ranks each
method's candidates and orders their union with the learned ranker (kb/search/ranker.py) when
the setting `ranker` is "learned" and its model file is there, else fuses them with weighted RRF
(score = Σ weight / (rrf_k + rank)). It applies metadata filters before ranking, drops
duplicate or overlapping passages, and returns typed `Passage` records.

Fusion stays here for every store, Milvus included: Milvus's RRFRanker has no per-ranking
weights (bm25_weight is 2), no tie rule, and returns only the fused score, while passages
carry each method's own (dense_score, bm25_score). Two filtered searches fused here give
the local store's ranking exactly.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from kb.core.errors import KbError
from kb.core.records import Passage
from kb.core.settings import Settings
from kb.core.text import squeeze
from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import QueryEncoder
from kb.search.associations import Associations
from kb.search.filters import Filters
from kb.search.ranker import (SCORE_DEPTH, Candidate, ChunkFacts, LearnedRanker, Query, chunk_facts, features,
                              make_query, positive)
from kb.search.ranker import candidates as candidates_of
from kb.store.catalogue import Catalogue
from kb.store.indexes import RowFilter, SearchIndex

# "hybrid": both rankings, ordered by the learned ranker when there is one (else RRF); "rrf": both,
# always fused by weighted RRF (the ablation "no learned ranker"); "dense", "bm25": one ranking alone.
Mode = Literal["hybrid", "dense", "bm25", "rrf"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25", "rrf")


class Retriever:
    """Searches one generation: its catalogue and indexes, with the process's query encoder and tokenizer."""

    def __init__(self, catalogue: Catalogue, index: SearchIndex, queries: QueryEncoder, tokenizer: Tokenizer,
                 settings: Settings, ranker: LearnedRanker | None = None):
        self.catalogue = catalogue
        self.ranker = ranker  # None: weighted RRF
        self._facts: dict[int, ChunkFacts] = {}  # per row, computed when first a candidate
        self.settings = settings
        self.tokenizer = tokenizer
        self.index = index
        self.queries = queries
        self._chunks = catalogue.chunks
        annex = [bool(c.heading_path) and c.heading_path[0].startswith("附件") for c in self._chunks]
        with_body = {c.doc_id for c, a in zip(self._chunks, annex) if not a}
        # a document that is all annex (a published "附件1 名词解释") has no body to rank after
        self._is_annex = [a and c.doc_id in with_body for c, a in zip(self._chunks, annex)]

    @property
    def size(self) -> int:
        return len(self._chunks)

    def encode_query(self, text: str) -> np.ndarray:
        return self.queries.encode(text)

    def idf(self, term: str) -> float:
        return self.index.idf(term)

    def _allowed(self, filters: Filters | None) -> RowFilter | None:
        """The filter as the documents it admits, decided here from the catalogue for every store."""
        if filters is None or filters.empty:
            return None
        admitted = frozenset(doc_id for doc_id, doc in self.catalogue.documents.items() if filters.admits(doc))
        mask = np.fromiter((c.doc_id in admitted for c in self._chunks), dtype=bool, count=len(self._chunks))
        return RowFilter(admitted, mask)

    def dense_ranking(self, query: str, n: int, allowed: RowFilter | None) -> list[tuple[int, float]]:
        if not self.index.dim:
            return []
        vector = self.encode_query(query)
        if vector.shape[-1] != self.index.dim:
            raise KbError(f"query vectors have dimension {vector.shape[-1]}, the index {self.index.dim}")
        return _settled(self.index.dense(vector, 2 * n, allowed), n)

    def bm25_ranking(self, query: str, n: int, allowed: RowFilter | None) -> list[tuple[int, float]]:
        return _settled(self.index.lexical(query, self.tokenizer.tokens(query), 2 * n, allowed), n)

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               mode: Mode = "hybrid") -> list[Passage]:
        """The k best passages for the query, best first."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        k = k or self.settings.answer.top_k
        query = query.strip()
        if not query or not self._chunks:
            return []
        n = self.depth(k)
        learned = mode == "hybrid" and self.ranker is not None and self.settings.answer.ranker == "learned"
        dense, lexical = self.rankings(query, n * SCORE_DEPTH if learned else n, filters, mode)
        if learned:
            order = self.learned_order(query, dense, lexical, n)
        elif mode in ("hybrid", "rrf"):
            order = self._fuse(dense, lexical)
        else:
            order = dense or lexical
        return self.passages(order, k, dense, lexical)

    def depth(self, k: int) -> int:
        """How many candidates each ranking gives."""
        return max(self.settings.answer.candidates, 3 * k)

    def rankings(self, query: str, n: int, filters: Filters | None = None,
                 mode: Mode = "hybrid") -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """The dense and BM25 rankings (row, score) of the query, n each, within the filters."""
        allowed = self._allowed(filters)
        dense = self.dense_ranking(query, n, allowed) if mode != "bm25" else []
        lexical = self.bm25_ranking(query, n, allowed) if mode != "dense" else []
        return dense, lexical

    def candidate_table(self, query: str, dense: list[tuple[int, float]], lexical: list[tuple[int, float]],
                        n: int, associations: Associations | None = None) -> tuple[list[Candidate], np.ndarray]:
        """The union of both rankings' first n and the ranker's features of each (kb/search/ranker.py); the
        rankings are read SCORE_DEPTH × n deep (`rankings(query, n * SCORE_DEPTH)`). The association
        features read `associations`, else the ranker's table (zero without either)."""
        cands = candidates_of(dense, lexical, self._is_annex.__getitem__, lambda row: self._chunks[row].doc_id, n)
        if associations is None and self.ranker is not None:
            associations = self.ranker.associations
        return cands, features(self.query_of(query), cands, self.facts, n * SCORE_DEPTH, associations)

    def query_of(self, query: str) -> Query:
        """What the ranker's features need of the question."""
        return make_query(query, self.tokenizer.tokens(query), self.tokenizer.words(query), self.index.idf)

    def facts(self, row: int) -> ChunkFacts:
        found = self._facts.get(row)
        if found is None:
            chunk = self._chunks[row]
            found = self._facts[row] = chunk_facts(chunk, self.catalogue.documents[chunk.doc_id], self.tokenizer.words)
        return found

    def learned_order(self, query: str, dense: list[tuple[int, float]], lexical: list[tuple[int, float]],
                      n: int) -> list[tuple[int, float]]:
        """The candidates by the learned ranker's score (in (0, 1)); ties keep BM25-then-dense order."""
        assert self.ranker is not None
        cands, matrix = self.candidate_table(query, dense, lexical, n)
        scores = positive(self.ranker.scores(matrix))
        return sorted(((c.row, float(s)) for c, s in zip(cands, scores)), key=lambda item: -item[1])

    def passages(self, order: list[tuple[int, float]], k: int, dense: list[tuple[int, float]] = (),
                 lexical: list[tuple[int, float]] = ()) -> list[Passage]:
        """The first k distinct passages of a ranking (row, score), annexes weighted down."""
        order = self._annexes_last(order)
        dense_of, bm25_of = dict(dense), dict(lexical)
        passages: list[Passage] = []
        for row, score in self._distinct(order):
            passage = self.catalogue.passage_for(self._chunks[row], rank=len(passages) + 1, score=score)
            passage.dense_score, passage.bm25_score = dense_of.get(row), bm25_of.get(row)
            passages.append(passage)
            if len(passages) == k:
                break
        return passages

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Weighted RRF. Ties (e.g. ranks 1+2 against 2+1) go to the better BM25 rank: in policy text
        the exact term usually decides, and the dense ranking of near-paraphrases is the noisier one."""
        fused: dict[int, float] = {}
        for weight, ranking in ((self.settings.answer.dense_weight, dense), (self.settings.answer.bm25_weight, lexical)):
            for rank, (row, _) in enumerate(ranking, start=1):
                fused[row] = fused.get(row, 0.0) + weight / (self.settings.answer.rrf_k + rank)
        lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical)}
        return sorted(fused.items(), key=lambda item: (-round(item[1], 12), lexical_rank.get(item[0], len(lexical))))

    def _annexes_last(self, order: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """An annex (附件: forms, templates, tables) repeats its document's terms without stating its
        rules: its score counts `annex_weight` of itself, so the body's section ranks first."""
        weight = self.settings.answer.annex_weight
        if weight == 1.0:
            return order
        weighted = [(row, score * weight if self._is_annex[row] else score) for row, score in order]
        return sorted(weighted, key=lambda item: -item[1])  # stable: ties keep their order

    def _distinct(self, order: list[tuple[int, float]]):
        """Skip a passage whose text was already given, or that overlaps a given one in the same document."""
        seen_text: set[str] = set()
        spans: dict[str, list[tuple[int, int]]] = {}
        for row, score in order:
            chunk = self._chunks[row]
            text = squeeze(chunk.text)
            taken = spans.setdefault(chunk.doc_id, [])
            if text in seen_text or any(chunk.start < end and start < chunk.end for start, end in taken):
                continue
            seen_text.add(text)
            taken.append((chunk.start, chunk.end))
            yield row, score


def _settled(ranking: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    """The n best, equal scores in row order. Equal scores are common (the same text in two
    documents) and each store returns them in its own order; taken from 2n candidates, so a tie
    across the n-th place is settled alike too, and every store ranks the same."""
    return sorted(ranking, key=lambda item: (-item[1], item[0]))[:n]
