"""Learned word associations between how questions are asked and how the passages that answer them are
written (老公 → 配偶, 借钱 → 借款, 司机 → 承运人): features of the learned ranker (kb/search/ranker.py).

`learn` counts, over training pairs (a question's words, the words of its gold passages), in how many
pairs a question word q and a passage word d occur together, and keeps the pairs seen at least
`min_count` times whose lift — P(d in the gold passage | q in the question) / P(d in a gold passage),
the first shrunk towards zero for rarely seen q — is above one, as log-lift, the `top` best per q. Words
only, never passage or document identities: a table learned on one corpus scores passages of another.
The shipped table (kb/resources/associations.tsv) is written by `python -m eval train-ranker` with the
model trained on its features, and loaded with it.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # kb.search.ranker imports this module
    from kb.search.ranker import ChunkFacts, Query

ASSOCIATIONS_RESOURCE = "associations.tsv"
MIN_COUNT = 2  # a pair seen once is one question's coincidence
TOP = 100  # passage words kept per question word (the table stays under about 1 MB)
SHRINK = 1.0  # pseudo-count of questions added to a question word's count: P(d|q) of a word seen twice is 2/3 of itself
_HEADER = "# question word\tpassage word\tlog lift"
# the ranker's features over the table (kb/search/ranker.py FEATURES ends with these)
ASSOC_FEATURES: tuple[str, ...] = ("assoc_score", "assoc_missing", "assoc_max", "assoc_words", "assoc_known",
                                   "assoc_gap", "assoc_rank", "law_assoc", "assoc_total")


@dataclass(frozen=True)
class Associations:
    """question word → {passage word: log lift > 0}."""

    table: Mapping[str, Mapping[str, float]]

    def __len__(self) -> int:
        return sum(len(v) for v in self.table.values())

    def to_text(self) -> str:
        lines = [_HEADER]
        for q in sorted(self.table):
            lines += [f"{q}\t{d}\t{s:.3f}" for d, s in sorted(self.table[q].items(), key=lambda item: (-item[1], item[0]))]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Associations:
        table: dict[str, dict[str, float]] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            q, d, s = line.split("\t")
            table.setdefault(q, {})[d] = float(s)
        return cls(table)

    @classmethod
    def load(cls, path: Path | None = None) -> Associations | None:
        """The table at `path`, or the packaged kb/resources/associations.tsv; None when absent."""
        if path is None:
            resource = resources.files("kb").joinpath("resources", ASSOCIATIONS_RESOURCE)
            return cls.from_text(resource.read_text(encoding="utf-8")) if resource.is_file() else None
        return cls.from_text(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else None


def learn(pairs: Iterable[tuple[Iterable[str], Iterable[str]]], min_count: int = MIN_COUNT, top: int = TOP,
          shrink: float = SHRINK) -> Associations:
    """The association table of (question words, gold passage words) pairs; see the module's doc."""
    joint: Counter[tuple[str, str]] = Counter()
    q_count: Counter[str] = Counter()
    d_count: Counter[str] = Counter()
    n = 0
    for q_words, d_words in pairs:
        qs, ds = set(q_words), set(d_words)
        n += 1
        q_count.update(qs)
        d_count.update(ds)
        joint.update((q, d) for q in qs for d in ds)
    table: dict[str, dict[str, float]] = {}
    for (q, d), c in joint.items():
        if c < min_count:
            continue
        lift = (c / (q_count[q] + shrink)) / ((d_count[d] + 1) / (n + 1))
        if lift > 1.0:
            table.setdefault(q, {})[d] = round(math.log(lift), 3)  # as written to the resource
    return Associations({q: dict(sorted(ds.items(), key=lambda item: (-item[1], item[0]))[:top])
                         for q, ds in table.items()})


def association_columns(query: Query, chunks: list[ChunkFacts], associations: Associations) -> np.ndarray:
    """ASSOC_FEATURES of each candidate: over the question's words, IDF-weighted, the strongest association
    with a word of the chunk (all words; only those the chunk lacks), the strongest of all, how many
    question words find one; how much of the question the table knows; gap and rank among the candidates;
    the best score among the candidates of the same law; the sum over every associated word of the chunk
    (several legal words of one colloquial word: a translation model's view)."""
    out = np.zeros((len(chunks), len(ASSOC_FEATURES)), dtype=np.float32)
    if not chunks:
        return out
    known = [(w, weight, associations.table[w]) for w, weight in zip(query.words, query.word_idf)
             if w in associations.table]
    total = sum(query.word_idf) or 1.0
    known_share = sum(weight for _, weight, _ in known) / total
    for i, f in enumerate(chunks):
        score = missing = best = every = 0.0
        hits = 0
        for w, weight, row in known:
            found = [s for d, s in row.items() if d in f.words]
            strongest = max(found, default=0.0)
            every += weight * sum(found)
            if strongest > 0:
                hits += 1
                score += weight * strongest
                best = max(best, strongest)
                if w not in f.search:
                    missing += weight * strongest
        out[i, :5] = (score / total, missing / total, best, hits, known_share)
        out[i, 8] = every / total
    scores = out[:, 0]
    out[:, 5] = scores - scores.max()
    out[:, 6] = 1 + (scores[None, :] > scores[:, None]).sum(axis=1)
    law_best: dict[str, float] = {}
    for f, s in zip(chunks, scores):
        law_best[f.law_group] = max(law_best.get(f.law_group, 0.0), float(s))
    out[:, 7] = [law_best[f.law_group] for f in chunks]
    return out
