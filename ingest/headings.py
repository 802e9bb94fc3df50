"""Recognise the numbering that structures Chinese official documents.

The ranks follow the usual hierarchy: 第X章 > 一、 > （一） > 第X条 > 1、/1. > （1） > 一是.
Closing parts (下一步, 最后, 抄送) sit at the top level so that what follows
them (e.g. the 1、…6、 plans after 下一步) nests under them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from kb.core.sentences import first_sentence_end

CN_NUM = "一二三四五六七八九十百零〇两"

# (rank, pattern); the first match wins, so more specific patterns come first.
_PATTERNS: list[tuple[int, re.Pattern[str]]] = [
    (0, re.compile(rf"^附件\s*[0-9{CN_NUM}]*\s*[:：]?")),
    (0, re.compile(rf"^第[{CN_NUM}0-9]+分?[章编]")),
    (1, re.compile(rf"^第[{CN_NUM}0-9]+节")),
    (2, re.compile(rf"^[{CN_NUM}]+\s*[、．.]")),
    (3, re.compile(rf"^[（(]\s*[{CN_NUM}]+\s*[）)]")),
    (4, re.compile(rf"^第[{CN_NUM}0-9]+条")),
    (5, re.compile(r"^[0-9]{1,2}\s*(?:、|[．.](?![0-9]))")),
    (6, re.compile(r"^[（(]\s*[0-9]{1,2}\s*[）)]")),
    (6, re.compile(r"^[①②③④⑤⑥⑦⑧⑨⑩]")),
    (7, re.compile(rf"^[{CN_NUM}]{{1,3}}是(?=[^，,。])")),
]
ARTICLE = 4  # 第X条: the unit of laws and regulations

# Closing parts of a letter or report: same rank as 一、 so they end the body parts.
_CLOSING = re.compile(r"^(下一步|最后|抄送)(?=[，,：:])")

LABEL_MAX = 40


@dataclass(frozen=True)
class Heading:
    rank: int
    label: str  # short text used in heading paths


def heading_label(line: str) -> str:
    """The heading's own words: up to its first sentence end, at most LABEL_MAX chars."""
    end = first_sentence_end(line)
    label = line if end is None else line[:end]
    return label.strip()[:LABEL_MAX]


def detect_heading(line: str) -> Heading | None:
    """Return the heading a line starts with, or None for body text."""
    line = line.strip()
    if not line:
        return None
    m = _CLOSING.match(line)
    if m:
        return Heading(2, m.group(1))
    for rank, pattern in _PATTERNS:
        m = pattern.match(line)
        if m:
            # an article's label is its number: "第十一条", not the first sentence of its text
            return Heading(rank, m.group(0) if rank == ARTICLE else heading_label(line))
    return None
