"""Split a cleaned document along its own headings into chunks. Pure functions.

Each heading (一、 （一） 1、 第X条 一是 下一步 …) opens a section whose heading path is
the stack of headings above it. A section is one chunk when it fits, else it is packed
into chunks of about TARGET_MIN–TARGET_MAX characters, never over CAP, cut at paragraph
or sentence ends. A heading never ends a chunk without its body, and a chunk that
starts inside a table repeats the table's header row.

Laws and regulations are cited by article: inside a 第X条 its enumerated items (（一）… 一、…
1. … (1) …) are the article's text, never headings, and an article is one chunk up to CAP;
a longer one is cut only between its own paragraphs (items, 款), each part under the
article's number. The document's title and a LawRefBook header of dates never make a chunk
of their own: they go with the first body text.

A form repeated down the document, each copy opened by the same line with its number ("普惠类兑现清单(1)",
"(2)"… of a 政策兑现清单), is a series of records: each record is a top-level section named by its opening
line and the line after it ("事项名称…"), kept whole up to CAP like an article.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from ingest.clean import LAW_HEADER_LINE, table_flags
from ingest.headings import ARTICLE, LABEL_MAX, Heading, detect_heading
from ingest.records import CleanText
from kb.core.records import Chunk
from kb.core.sentences import sentence_spans

TARGET_MIN = 300
TARGET_MAX = 500
CAP = 800
LIST_RANKS = (5, 6)  # 1、/1. and （1）/①: items of a list (ingest/headings.py), kept together when they fit
_SOFT_BREAK = re.compile(r"[，,、]")
CHAPTER_RANKS = (0, 1)  # 第X章/编/节, 附件: they end an article
_INTRO_END = re.compile(r"[：:]\s*$")  # "…有下列情形之一的：": a lead-in never ends a chunk without its items
_SPACES = re.compile(r"\s+")
_RECORD = re.compile(r"^(\S{2,24}?)\s*[（(]\s*(\d{1,3})\s*[)）]$")  # "普惠类兑现清单(12)" on a line of its own
RECORD_MIN = 3  # copies with distinct numbers before a repeated line counts as a series of records


@dataclass
class _Para:
    index: int
    start: int
    end: int
    heading: bool  # the paragraph is nothing but a heading line, e.g. "1、加强知识产权创造。"
    table_header: int | None  # paragraph index of the header row of the table this row is in
    lead: bool = False  # no body of its own: a heading line, the title, a dated line of a law's header
    intro: bool = False  # ends with a colon: introduces what follows
    record: str | None = None  # the label of the record this line opens (see the module's docstring)


@dataclass
class _Section:
    path: list[str]
    paras: list[_Para] = field(default_factory=list)
    article: bool = False  # a 第X条 or a record: packed up to CAP and cut only between its paragraphs


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    para: _Para


def _squeeze(text: str) -> str:
    return _SPACES.sub("", text)


def _is_title_line(line: str, title: str) -> bool:
    """The title, or a piece of a title wrapped over lines ("最高人民法院" / "关于…的规定")."""
    line, title = _squeeze(line), _squeeze(title)
    return len(line) >= 3 and bool(title) and line in title and not _INTRO_END.search(line)


def record_labels(lines: list[str]) -> dict[int, str]:
    """Line index -> label of each line that opens a record: the same words numbered (1), (2)… at least
    RECORD_MIN times, labelled with the next line when that is short ("普惠类兑现清单(1) 事项名称企业主板上市奖励")."""
    series: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, line in enumerate(lines):
        if m := _RECORD.match(line.strip()):
            series[m.group(1)].append((i, int(m.group(2))))
    labels = {}
    for hits in series.values():
        if len({n for _, n in hits}) < RECORD_MIN:
            continue
        for i, _ in hits:
            nxt = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
            label = lines[i].strip()
            if nxt and len(label) + 1 + len(nxt) <= LABEL_MAX and not _RECORD.match(nxt):
                label += " " + nxt
            labels[i] = label
    return labels


def _paragraphs(text: str, title: str = "") -> list[_Para]:
    lines = text.split("\n")
    flags = table_flags(lines)
    records = record_labels(lines)
    paras, offset, header = [], 0, None
    for i, (line, table) in enumerate(zip(lines, flags)):
        if table:
            header = i if header is None else header
        else:
            header = None
        if line.strip():
            found = None if table else detect_heading(line)
            heading = i in records or (found is not None and len(line.strip().rstrip("。.：:；;")) <= len(found.label))
            lead = heading or (not table and (_is_title_line(line, title) or bool(LAW_HEADER_LINE.match(line.strip()))))
            paras.append(_Para(i, offset, offset + len(line), heading, header if table else None, lead,
                               bool(_INTRO_END.search(line)), records.get(i)))
        offset += len(line) + 1
    return paras


def _bare_heading(text: str, para: _Para) -> bool:
    """A line that is a heading and nothing else ("二、管理"), not an item ("（七）…其他财产权利。")."""
    return para.heading and not re.search(r"[。；;，,：:.．]$", text[para.start : para.end].strip())


def _closes_article(text: str, paras: list[_Para], found: list, i: int) -> bool:
    """Whether a numbered line inside an article is a heading that ends it ("二、管理" right before
    "第三条"), not one of the article's items ("（七）法律、行政法规规定可以出质的其他财产权利。")."""
    if not _bare_heading(text, paras[i]):
        return False
    nxt = found[i + 1] if i + 1 < len(paras) else None
    return nxt is not None and (nxt.rank == ARTICLE or nxt.rank in CHAPTER_RANKS)


def _sections(text: str, paras: list[_Para]) -> list[_Section]:
    sections = [_Section([])]
    stack: list[tuple[int, str, bool]] = []  # (rank, label, a heading line without body of its own)
    found = [Heading(0, p.record) if p.record else None if p.table_header is not None
             else detect_heading(text[p.start : p.end]) for p in paras]
    in_article = False
    # a text of articles: a law, a regulation, or a book of one; a report whose tables cite "第二十条第（一）项"
    # four times is not one
    law = len({h.label for h in found if h is not None and h.rank == ARTICLE}) >= 3
    for i, para in enumerate(paras):
        heading = found[i]
        numbered = heading is not None and heading.rank != ARTICLE and heading.rank not in CHAPTER_RANKS
        if law and numbered and ((in_article and not _closes_article(text, paras, found, i))
                                 or not _bare_heading(text, para)):
            # an item of an article ("（一）…", "1. …", "一、…") or of a decision ("一、将第五条修改为：“…”"):
            # part of the text, never a heading
            heading = None
            para.heading = para.lead = False
        if heading and heading.rank in LIST_RANKS:
            last = i + 1 == len(paras)
            if not para.heading or last or (found[i + 1] is not None and found[i + 1].rank <= heading.rank):
                # a numbered item ("2.申报单位…不超过4亿元", "(1)高新技术企业") is part of its list, not a
                # section (the packer splits a long list): unless it is a heading line with a body after it. It belongs to the
                # list's parent, not to a longer sibling item that became a section before it.
                if stack and stack[-1][0] >= heading.rank:
                    while stack and stack[-1][0] >= heading.rank:
                        stack.pop()
                    sections.append(_Section([label for _, label, _ in stack]))
                heading = None
                para.lead = False  # an item of a list is body text (a list of contents is not a title)
        if heading:
            # An article is not filed under an item with text of its own ("十、将第二十四条修改为：“…”"
            # of an amending decision before the amended text), only under a heading line ("一、总则").
            while stack and (stack[-1][0] >= heading.rank or (heading.rank == ARTICLE and not stack[-1][2]
                                                                and stack[-1][0] not in CHAPTER_RANKS)):
                stack.pop()
            stack.append((heading.rank, heading.label, para.heading))
            in_article = heading.rank == ARTICLE
            sections.append(_Section([label for _, label, _ in stack], article=in_article or bool(para.record)))
        sections[-1].paras.append(para)
    sections = [s for s in sections if s.paras]
    # A section without body ("一、总体情况" right before "（一）…"; the title and a law's header of
    # dates before "第一章 总则") joins the next one; the last one joins the one before it.
    merged: list[_Section] = []
    carry: list[_Para] = []
    for section in sections:
        section.paras = carry + section.paras
        carry = []
        if all(p.lead for p in section.paras) and section is not sections[-1]:
            carry = section.paras
            continue
        if all(p.lead for p in section.paras) and merged and not section.article:
            merged[-1].paras += section.paras
            continue
        merged.append(section)
    return merged


def _units(text: str, para: _Para) -> list[_Unit]:
    """A paragraph, or its sentences when it is over CAP, or CAP-sized pieces of a huge sentence."""
    if para.end - para.start <= CAP:
        return [_Unit(para.start, para.end, para)]
    units = []
    # Pieces from one sentence end to the next (kb/core/sentences.py), so they cover the paragraph.
    ends = [para.start + end for _, end in sentence_spans(text[para.start : para.end])]
    if ends:
        ends[-1] = para.end
    start = para.start
    for end in ends:
        while end - start > CAP:
            # Prefer a comma in the last third of the window for the forced cut.
            window = text[start + CAP * 2 // 3 : start + CAP]
            soft = [x.end() for x in _SOFT_BREAK.finditer(window)]
            cut = start + CAP * 2 // 3 + soft[-1] if soft else start + CAP
            units.append(_Unit(start, cut, para))
            start = cut
        if end > start:
            units.append(_Unit(start, end, para))
        start = end
    return units


def _pack(units: list[_Unit], article: bool = False) -> list[list[_Unit]]:
    """Groups of units, one chunk each. An article fills a chunk up to CAP (it is cut only where it
    must be); other text aims at TARGET_MIN–TARGET_MAX."""
    target = CAP if article else TARGET_MAX
    groups: list[list[_Unit]] = []
    for unit in units:
        if groups:
            cur = groups[-1]
            cur_len = cur[-1].end - cur[0].start
            new_len = unit.end - cur[0].start
            only_lead = all(u.para.lead for u in cur)
            if new_len <= target or ((cur_len < TARGET_MIN or only_lead) and new_len <= CAP):
                cur.append(unit)
                continue
        groups.append([unit])
    # A heading or a lead-in ("…下列情形之一的：") left at the end of a group moves to the next one, with its body.
    for i in range(len(groups) - 1):
        while len(groups[i]) > 1 and (groups[i][-1].para.heading or groups[i][-1].para.lead or groups[i][-1].para.intro):
            groups[i + 1].insert(0, groups[i].pop())
    # A group without body (the title, a header of dates) joins the next one, whatever its length.
    i = 0
    while i < len(groups) - 1:
        if all(u.para.lead for u in groups[i]):
            lead = groups.pop(i)
            groups[i][:0] = lead
        else:
            i += 1
    # A short tail goes back into the group before it when that fits.
    if len(groups) >= 2 and groups[-1][-1].end - groups[-1][0].start < TARGET_MIN // 2:
        if groups[-1][-1].end - groups[-2][0].start <= CAP:
            groups[-2].extend(groups.pop())
    return groups


def chunk_document(doc_id: str, title: str, clean: CleanText, paged: bool = True) -> list[Chunk]:
    """The chunks of a cleaned document. `paged`: the file has pages (a PDF); chunks of a text,
    Markdown, HTML or DOCX file cite no page."""
    text = clean.text
    paras = _paragraphs(text, title)
    chunks: list[Chunk] = []
    for section in _sections(text, paras):
        units = [u for p in section.paras for u in _units(text, p)]
        for group in _pack(units, section.article):
            start, end = group[0].start, group[-1].end
            body = text[start:end]
            first = group[0].para
            if first.table_header is not None and first.table_header != first.index:
                header_line = text.split("\n")[first.table_header]
                body = f"{header_line}\n{body}"
            path = list(section.path)
            prefix = "\n".join(x for x in (title, " > ".join(path)) if x)
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}-{len(chunks):04d}",
                    doc_id=doc_id,
                    ordinal=len(chunks),
                    heading_path=path,
                    pages=clean.pages_between(start, end) if paged else [],
                    start=start,
                    end=end,
                    text=body,
                    search_text=f"{prefix}\n{body}",
                    sentences=sentence_spans(body),
                )
            )
    return chunks
