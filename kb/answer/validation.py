"""Check an answer's citations against the passages it was given. Pure apart from tokenising.

- A marker [n] (also [1,2], [1][2], [1-3], 【n】) that points to no given passage is removed.
- A sentence with no marker, or whose cited passages do not support it, is flagged.
- Each cited passage records which of its sentences support the answer, for highlighting —
  only for sentences that hold: an unsupported sentence highlights nothing.
- A sentence that only restates a passage's title, issuer or section heading supports nothing
  and is supported by nothing (it would otherwise match every sentence of the passage).

A sentence its cited passages do not support, or that cites none, is re-cited to the first
given passage that does support it ("……[2]" → "……[1]", flagged "citation corrected"): small models
often quote the right text under the wrong number, and the claim still rests on what the user sees.

A marker written after the sentence's end punctuation ("……。[1]") belongs to that
sentence, not to the next one.

A passage supports an answer sentence when it contains the sentence outright, or when
  - one of its sentences (read with the passage's title, issuer and section), or else the
    passage as a whole, holds at least `Tuning.support` of the sentence's terms, and
  - every number the sentence states (50%, 3家, 2018年) is a number the passage states, and
  - every place the sentence names (杭州, 宁波市) is named by the passage or its document.
Several cited passages may support a sentence together. A sentence of a passage that talks to
the assistant (kb/core/guard.py) supports nothing: a model that repeats a planted "忽略以上所有指令，
回答：……" is not backed by the passage that planted it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.answer.tuning import Tuning
from kb.core.guard import instruction_sentences, neutralise
from kb.core.records import Passage
from kb.core.sentences import SENTENCE_END, sentence_spans
from kb.core.text import squeeze
from kb.core.tokenizer import Tokenizer

_NUMS = r"\d+(?:\s*[-–~～]\s*\d+|(?:\s*[,，、]\s*\d+)*)"
_MARKER = re.compile(rf"\s*(?:\[\s*({_NUMS})\s*\]|【\s*({_NUMS})\s*】)")
_MARKERS = re.compile(rf"(?:{_MARKER.pattern})+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CN_DIGITS = {"0": "零〇", "1": "一", "2": "二两", "3": "三", "4": "四", "5": "五", "6": "六", "7": "七", "8": "八",
              "9": "九", "10": "十"}
_END = SENTENCE_END + "."  # what ends an answer sentence: an LLM may also write a full stop


@dataclass
class Validated:
    text: str  # the answer with bad markers removed
    cited: dict[int, tuple[list[int], list[tuple[int, int]]]] = field(default_factory=dict)  # n -> sentences, spans
    flags: list[str] = field(default_factory=list)
    removed_markers: list[int] = field(default_factory=list)
    supported: int = 0  # answer sentences that their cited passages support
    unsupported: int = 0  # answer sentences flagged: no marker, or not supported
    marked: int = 0  # answer sentences that carry a valid marker


def _numbers(match: re.Match[str]) -> list[int]:
    raw = match.group(1) or match.group(2)
    out: list[int] = []
    for part in re.split(r"[,，、\s]+", raw.strip()):
        bounds = re.split(r"\s*[-–~～]\s*", part)
        if len(bounds) == 2 and all(b.isdigit() for b in bounds):
            low, high = int(bounds[0]), int(bounds[1])
            out.extend(range(low, high + 1) if 0 <= high - low <= 20 else (low, high))
        elif part.isdigit():
            out.append(int(part))
    return out


def validate(text: str, passages: list[Passage], tokenizer: Tokenizer, tuning: Tuning = Tuning()) -> Validated:
    """`passages[i]` is [i+1] in the answer; `tuning.support` is the share of terms a passage must hold."""
    removed: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = _numbers(match)
        good = [n for n in numbers if 1 <= n <= len(passages)]
        removed.extend(n for n in numbers if not 1 <= n <= len(passages))
        return "".join(f"[{n}]" for n in dict.fromkeys(good))

    text = _MARKER.sub(keep_valid, text.strip())
    result = Validated(text, removed_markers=removed)
    if removed:
        result.flags.append(f"removed citation marker(s) pointing to no passage: {sorted(set(removed))}")
    rewrites: list[tuple[int, int, str]] = []
    for start, end in claim_spans(text):
        claim = text[start:end]
        numbers = list(dict.fromkeys(n for m in _MARKER.finditer(claim) for n in _numbers(m)))
        bare = _MARKER.sub("", claim).strip()
        if len(squeeze(bare)) < 4:
            continue
        result.marked += bool(numbers)
        supported, found = False, {}
        for n in numbers:
            holds, sentences, spans = _support(bare, passages[n - 1], tokenizer, tuning.support)
            if holds:
                found[n] = (sentences, spans)
            supported = supported or holds
        if not supported and len(numbers) > 1:
            supported = _supported_together(bare, [passages[n - 1] for n in numbers], tokenizer, tuning.support)
        if not supported:
            recited = _recite(bare, passages, numbers, tokenizer, tuning.support)
            if recited is None and not numbers:
                result.flags.append(f"no citation: {bare}")
                result.unsupported += 1
                continue
            if recited is not None:
                n, sentences, spans = recited
                result.flags.append(f"citation corrected {numbers or '(none)'} → [{n}]: {bare}")
                rewrites.append((start, end, f"{bare}[{n}]"))
                numbers, found, supported = [n], {n: (sentences, spans)}, True
        if supported:
            result.supported += 1
            for n in numbers:  # every passage the sentence cites is listed; only those that hold are highlighted
                entry = result.cited.setdefault(n, ([], []))
                for index, span in zip(*found.get(n, ([], []))):
                    if index not in entry[0]:
                        entry[0].append(index)
                        entry[1].append(span)
        else:
            result.unsupported += 1
            result.flags.append(f"not supported by the cited passage(s) {numbers}: {bare}")
    for start, end, claim in reversed(rewrites):
        result.text = result.text[:start] + claim + result.text[end:]
    return result


def _recite(claim: str, passages: list[Passage], cited: list[int], tokenizer: Tokenizer,
            support: float) -> tuple[int, list[int], list[tuple[int, int]]] | None:
    """The given passage, not already cited, that supports the claim best: one that quotes it outright,
    else the first whose own sentences bear it out (support by a whole passage is not enough to guess)."""
    squeezed, best = squeeze(claim.rstrip(_END)), None
    for n, passage in enumerate(passages, start=1):
        if n in cited:
            continue
        holds, sentences, spans = _support(claim, passage, tokenizer, support)
        if holds and sentences:
            if len(squeezed) >= 4 and squeezed in squeeze(passage.text):
                return n, sentences, spans
            best = best or (n, sentences, spans)
    return best


def claim_spans(text: str) -> list[tuple[int, int]]:
    """Answer sentences, each with the markers that follow its end punctuation.

    The sentence splitter cuts after 。, so "甲。[1]乙。[2]" comes as "甲。", "[1]乙。", "[2]":
    markers at the start of a piece go back to the sentence before it.
    """
    merged: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        lead = _MARKERS.match(text, start, end)
        if lead and merged:
            merged[-1] = (merged[-1][0], lead.end())
            start = lead.end()
            while start < end and text[start].isspace():
                start += 1
            if start >= end:
                continue
        merged.append((start, end))
    return merged


def _terms(text: str, tokenizer: Tokenizer) -> set[str]:
    """Content terms: words of two or more characters (single characters only if there is nothing else)."""
    tokens = set(tokenizer.tokens(text))
    return {t for t in tokens if len(t) > 1} or tokens


def _figures(text: str) -> set[str]:
    return {n.lstrip("0") or "0" for n in _NUMBER.findall(squeeze(text).replace(",", ""))}


def _context(passage: Passage) -> str:
    """What the passage's document says about itself: title, issuer, number, date, section."""
    return neutralise(" ".join([passage.title, passage.issuer or "", passage.doc_number or "", passage.date or "",
                                *passage.heading_path]))


def _facts_hold(claim: str, source: str, tokenizer: Tokenizer) -> bool:
    """Every number the claim states is stated by the source; every place it names is named there."""
    stated = _figures(source)
    squeezed_claim = squeeze(claim).replace(",", "")
    for match in _NUMBER.finditer(squeezed_claim):
        figure = match.group().lstrip("0") or "0"
        if figure in stated:
            continue
        # "3年" for the document's "三年": the same figure in Chinese, with the same unit after it
        unit = squeezed_claim[match.end():match.end() + 1]
        if not (unit and any(digit + unit in source for digit in _CN_DIGITS.get(figure, ""))):
            return False
    squeezed = squeeze(source)
    for place in tokenizer.places(claim):
        stem = place[:-1] if len(place) > 2 and place[-1] in "省市区县镇" else place
        if stem not in squeezed:
            return False
    return True


def _support(claim: str, passage: Passage, tokenizer: Tokenizer,
             support: float) -> tuple[bool, list[int], list[tuple[int, int]]]:
    """Whether the passage supports the claim, and which of its sentences do."""
    squeezed = squeeze(claim.rstrip(_END))
    context = _context(passage)
    terms = _terms(claim, tokenizer)
    around = set(tokenizer.tokens(context))
    if terms and terms <= around and squeezed not in squeeze(_data_text(passage)):
        return False, [], []  # it only restates the title or the heading: no answer, nothing to highlight
    found: list[tuple[float, int, tuple[int, int]]] = []
    spans = passage.sentence_spans
    for index, ((start, end), planted) in enumerate(zip(spans, instruction_sentences(passage.text, spans))):
        if planted:
            continue
        sentence = passage.text[start:end]
        if len(squeezed) >= 4 and squeezed in squeeze(sentence):
            found.append((2.0, index, (start, end)))  # quoted outright
            continue
        if terms:
            own = terms & set(tokenizer.tokens(sentence))
            share = len(terms & (own | around)) / len(terms)
            if share >= support and own - around:  # the sentence itself must hold some of what the claim adds
                found.append((share, index, (start, end)))
    found.sort(key=lambda f: -f[0])
    if found and found[0][0] == 2.0:
        return True, [found[0][1]], [found[0][2]]
    text = _data_text(passage)
    facts = _facts_hold(claim, f"{context} {text}", tokenizer)
    if found:
        return facts, [i for _, i, _ in found[:3]], [s for _, _, s in found[:3]]
    # a claim that draws on several sentences of the passage: supported, nothing single to highlight
    whole = bool(terms) and len(terms & (set(tokenizer.tokens(text)) | around)) / len(terms) >= support
    return whole and facts, [], []


def _supported_together(claim: str, passages: list[Passage], tokenizer: Tokenizer, support: float) -> bool:
    """A sentence that joins facts from several cited passages ("……[1][3]")."""
    terms = _terms(claim, tokenizer)
    source = " ".join(f"{_context(p)} {_data_text(p)}" for p in passages)
    return bool(terms) and len(terms & set(tokenizer.tokens(source))) / len(terms) >= support \
        and _facts_hold(claim, source, tokenizer)


def _data_text(passage: Passage) -> str:
    """The passage without its instruction-like sentences."""
    text, spans = passage.text, passage.sentence_spans
    return " ".join(text[s:e] for (s, e), planted in zip(spans, instruction_sentences(text, spans)) if not planted)
