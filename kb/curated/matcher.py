"""Which curated entry a question asks: e5 similarity of the question to each entry's question and
variants (both encoded as queries: a question against questions), the closest entry when it reaches the
threshold, among the entries `compatible` with the question (kb/answer/curated_gate.py: same kind of fact
asked, same IP object, same place). e5 measures topic more than what is asked ("贴息标准是多少" and
"贴息什么时候申报" score 0.98), so the threshold is high: calibrated on eval/testsets/curated.jsonl so that no
near-miss question is given a wrong entry (`python -m eval.curated`, docs/curated.md). Variants are what
raises the share of questions matched: an entry is matched by its closest variant."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from kb.curated.records import CuratedEntry, CuratedHit

# calibrated on eval/testsets/curated.jsonl (docs/curated.md): the lowest threshold at which no near-miss
# or other entry's paraphrase is served, with the compatibility gate (the closest wrong one is at 0.970)
DEFAULT_THRESHOLD = 0.975

Compatible = Callable[[str, CuratedEntry], bool]


class CuratedMatcher:
    """`encode(text)` → the text's unit query vector (the retriever's QueryEncoder). Vectors of the entries'
    questions are kept by text, so a list that changes (an entry added in the app) costs only the new ones."""

    def __init__(self, encode: Callable[[str], np.ndarray], threshold: float = DEFAULT_THRESHOLD,
                 compatible: Compatible | None = None):
        self.encode = encode
        self.threshold = threshold
        self.compatible = compatible
        self._vectors: dict[str, np.ndarray] = {}

    def _vector(self, text: str) -> np.ndarray:
        if text not in self._vectors:
            vector = np.asarray(self.encode(text), dtype=np.float32).reshape(-1)
            self._vectors[text] = vector / (np.linalg.norm(vector) or 1.0)
        return self._vectors[text]

    def scores(self, question: str, entries: Sequence[CuratedEntry]) -> list[CuratedHit]:
        """Every entry with its best similarity to the question, best first."""
        if not entries or not question.strip():
            return []
        q = np.asarray(self.encode(question.strip()), dtype=np.float32).reshape(-1)  # not kept: questions are endless
        q = q / (np.linalg.norm(q) or 1.0)
        hits = []
        for entry in entries:
            if self.compatible is not None and not self.compatible(question, entry):
                continue
            sims = [(float(q @ self._vector(t)), t) for t in entry.questions if t.strip()]
            if sims:
                score, text = max(sims)
                hits.append(CuratedHit(entry, score, text))
        return sorted(hits, key=lambda h: -h.score)

    def match(self, question: str, entries: Sequence[CuratedEntry]) -> CuratedHit | None:
        """The closest entry at or above the threshold, flagged or not (the caller decides whether to serve)."""
        hits = self.scores(question, entries)
        return hits[0] if hits and hits[0].score >= self.threshold else None
