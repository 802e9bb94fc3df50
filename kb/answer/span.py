"""The quoted span: the extractive answer's candidate sentences, and what completes the ones it chose. Pure.

A chosen sentence that lacks the asked-for kind of fact (an amount, a date…) is completed with the neighbour
in its passage that states it ("…发给发明人或者设计人奖金。" then "一项发明专利的奖金最低不少于三千元"); a
sentence that announces a list ("专利专项资金用于：") with the items after it; a label that only names what
follows ("一、政策依据", "印证材料"), quoted for a question that asks no figure or date, with the line
after it (and the items, if a list).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from kb.answer.intent import has_value
from kb.core.records import Passage

# the start of a numbered list item: 1. 1、 1） （1） (1) 一、 （一） ① 第一步, and a form's bare "1 权利人为…",
# "2取得…的企业" (a table cell's number, its punctuation lost: not "3个月内", "12月", "10万元")
ITEM = re.compile(r"(?m)^\s*(?:\d{1,2}[.、．）)]|[（(]\d{1,2}[）)]|[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十]{1,3}[）)]"
                   r"|[①-⑳]|第[一二三四五六七八九十]步"
                   r"|\d{1,2}\s*(?![年月日号时分秒个元万千百亿件项次条名人家户岁周天倍层级批类种])(?=[\u4e00-\u9fff]))")


@dataclass
class Candidate:
    passage: Passage
    index: int  # sentence number within the passage
    span: tuple[int, int]
    text: str
    coverage: float
    score: float = 0.0
    order: int = 0  # position of its chunk within a quoted section (reading order across chunks)
    echo: float = 0.0  # the part of `coverage` the sentence holds only by repeating its document's title words


def siblings_of(candidates: list[Candidate]) -> dict[str, list[Candidate]]:
    """Each passage's candidate sentences in reading order (chunk id -> sentences)."""
    out: dict[str, list[Candidate]] = {}
    for c in candidates:
        out.setdefault(c.passage.chunk_id, []).append(c)
    for sentences in out.values():
        sentences.sort(key=lambda c: c.index)
    return out


# A line that only names what follows: a section heading ("三、申请时间"), a table's field ("印证材料"), an
# item's name ("12、高新技术企业研发投入补贴"): short, no punctuation inside or at its end.
LABEL_MAX_CHARS = 20
_INNER_PUNCT = re.compile(r"[，。；：！？,;:!?]")


def is_label(sentence: str) -> bool:
    """A line that names what follows rather than saying anything: quoted, it is quoted with what follows."""
    text = sentence.strip()
    return 0 < len(text) <= LABEL_MAX_CHARS and not _INNER_PUNCT.search(text)


def neighbours(c: Candidate, siblings: dict[str, list[Candidate]]) -> list[Candidate]:
    """The sentences just after and just before `c` in its passage, in that order."""
    sentences = siblings.get(c.passage.chunk_id, [])
    at = next((i for i, s in enumerate(sentences) if s.index == c.index), None)
    if at is None:
        return []
    return [sentences[i] for i in (at + 1, at - 1) if 0 <= i < len(sentences)]


def paragraph(c: Candidate, siblings: dict[str, list[Candidate]], max_chars: int) -> list[Candidate]:
    """The other sentences of the line (paragraph) `c` stands in, when that line is at most max_chars long."""
    text = c.passage.text
    start, end = text.rfind("\n", 0, c.span[0]) + 1, text.find("\n", c.span[1])
    end = len(text) if end < 0 else end
    if end - start > max_chars:
        return []
    return [s for s in siblings.get(c.passage.chunk_id, []) if s.index != c.index and start <= s.span[0] < end]


def completed(chosen: list[Candidate], wanted: list[str], siblings: dict[str, list[Candidate]],
               list_max_chars: int, ranked: list[Candidate] = (), paragraph_chars: int = 0) -> list[Candidate]:
    """The chosen sentences with what completes them: for each asked-for kind of fact (amount, date…)
    a sentence lacks, the neighbour in its passage that states it ("…发给发明人奖金。" is followed by
    "奖金最低不少于三千元") — for the best sentence (the first chosen), failing a neighbour, the best-ranked
    sentence of `ranked` in its passage that does (a record's "补贴标准…最高300万元" four lines below its name);
    a sentence that opens a list ("…用于：") with the items after it, up to `list_max_chars` characters; with
    `paragraph_chars`, each with the rest of its paragraph (a rule with its exception)."""
    have = {(c.passage.chunk_id, c.index) for c in chosen}
    out = list(chosen)

    def add(c: Candidate, like: Candidate) -> None:
        if (c.passage.chunk_id, c.index) not in have:
            have.add((c.passage.chunk_id, c.index))
            out.append(Candidate(c.passage, c.index, c.span, c.text, like.coverage, like.score, like.order))

    for c in chosen:
        for n in paragraph(c, siblings, paragraph_chars) if paragraph_chars else []:
            add(n, c)
        for kind in wanted:
            if has_value(c.text, kind):
                continue
            found = next((n for n in neighbours(c, siblings) if has_value(n.text, kind)), None)
            if found is None and c is chosen[0]:
                found = next((n for n in ranked if n.passage.chunk_id == c.passage.chunk_id
                              and has_value(n.text, kind)), None)
            if found is not None:
                add(found, c)
        # (not when a figure or date is asked: "申请材料要交几份" wants the number, not the list)
        label = not wanted and is_label(c.text)
        if label or c.text.rstrip().endswith(("：", ":")):  # the items it announces, as long as they run
            sentences = siblings.get(c.passage.chunk_id, [])
            length = len(c.text)
            for at, n in enumerate(s for s in sentences if s.index > c.index):
                # a label ("三、申请时间", "印证材料") heads what follows, whatever it is
                if (not ITEM.match(n.text) and not (label and at == 0)) or length + len(n.text) > list_max_chars:
                    break
                length += len(n.text)
                add(n, c)
    return out
