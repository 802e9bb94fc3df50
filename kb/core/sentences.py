"""Split passage text into sentences (spans), the unit extractive answers quote. Pure."""
from __future__ import annotations

import re

# A sentence ends at 。！？； (and their ASCII forms) with any closing quotes, or at a line end.
_SENTENCE = re.compile(r"[^\n。！？!?；;]+(?:[。！？!?；;]+[”’」』\"'）)]*)?")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence, whitespace trimmed."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]
