"""Metric definitions, fixed so numbers compare across versions. Pure functions.

A passage *supports* an evidence string when, ignoring all whitespace, it contains it,
or they share a common substring of at least 60% of the evidence's length.
"""
from __future__ import annotations

import math
from difflib import SequenceMatcher

from kb.core.text import squeeze

SUPPORT_OVERLAP = 0.6


def supports(passage: str, evidence: str) -> bool:
    p, e = squeeze(passage), squeeze(evidence)
    if not e:
        return False
    if e in p:
        return True
    match = SequenceMatcher(None, p, e, autojunk=False).find_longest_match(0, len(p), 0, len(e))
    return match.size >= SUPPORT_OVERLAP * len(e)


def first_hit(passages: list[str], evidence: list[str], k: int = 10) -> int | None:
    """1-based rank of the first passage in the top k that supports some evidence string."""
    for rank, text in enumerate(passages[:k], start=1):
        if any(supports(text, e) for e in evidence):
            return rank
    return None


def hit_at(passages: list[str], evidence: list[str], k: int) -> float:
    return float(first_hit(passages, evidence, k) is not None)


def reciprocal_rank(passages: list[str], evidence: list[str], k: int = 10) -> float:
    rank = first_hit(passages, evidence, k)
    return 1.0 / rank if rank else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def keypoint_recall(answer: str, keypoints: list[str]) -> float:
    """Share of keypoints found in the answer, whitespace ignored (1.0 when there are none)."""
    if not keypoints:
        return 1.0
    body = squeeze(answer)
    return sum(squeeze(k) in body for k in keypoints) / len(keypoints)


def citation_precision(cited_texts: list[str], evidence: list[str]) -> float | None:
    """Share of cited passages that support some evidence string; None when nothing is cited."""
    if not cited_texts:
        return None
    return sum(any(supports(t, e) for e in evidence) for t in cited_texts) / len(cited_texts)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
