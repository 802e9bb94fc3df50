"""What ends a sentence, in one place; the one sentence splitter. Pure.

- `sentence_spans` splits text into the sentences extractive answers quote. Ingestion runs it
  once per chunk and stores the spans with the chunk (`Chunk.sentences`); answers read the
  stored spans (`Passage.sentence_spans`), so the sentences ingestion embeds are the ones the
  answerer looks up. Ingestion also cuts over-long paragraphs at these sentence ends.
- `ends_sentence` and `first_sentence_end` read lines of layout: whether a line closes its
  sentence (ingest/clean.py joins the lines that do not), where a heading's own words end
  (ingest/headings.py). A colon ends a line's sentence ("刘正义委员：", a list's lead-in) but
  does not split a quotable sentence.
"""
from __future__ import annotations

import re

SENTENCE_END = "。！？!?；;"  # where a sentence ends, for splitting and for reading lines
COLONS = "：:"  # end a line's sentence (a salutation, a lead-in), not a quotable one
ELLIPSIS = "…"  # at a line's end, the sentence trails off there
CLOSING_QUOTES = "”’」』\"'"  # stay with the sentence end before them
CLOSING = CLOSING_QUOTES + "）)"  # what the splitter keeps with a sentence end: quotes, a closing bracket

# A sentence ends at SENTENCE_END (one or more) with whatever closes after it, or at a line end.
_SENTENCE = re.compile(rf"[^\n{SENTENCE_END}]+(?:[{SENTENCE_END}]+[{re.escape(CLOSING)}]*)?")
_LINE_END = re.compile(rf"[{SENTENCE_END}{COLONS}{ELLIPSIS}][{re.escape(CLOSING_QUOTES)}]*$")
_LINE_END_NO_COLON = re.compile(rf"[{SENTENCE_END}{ELLIPSIS}][{re.escape(CLOSING_QUOTES)}]*$")
_FIRST_END = re.compile(rf"[{SENTENCE_END}{COLONS}]")
_FIRST_END_NO_COLON = re.compile(rf"[{SENTENCE_END}]")


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


def ends_sentence(line: str, colon: bool = True) -> bool:
    """Whether a line closes its sentence: it ends (before closing quotes) with sentence-ending
    punctuation, an ellipsis, or (`colon`) a colon."""
    return bool((_LINE_END if colon else _LINE_END_NO_COLON).search(line))


def first_sentence_end(text: str, colon: bool = True) -> int | None:
    """Offset of the first sentence-ending punctuation (or colon, with `colon`) in `text`, or None."""
    match = (_FIRST_END if colon else _FIRST_END_NO_COLON).search(text)
    return match.start() if match else None
