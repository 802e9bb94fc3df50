"""Repair the damage that page layout does to text. Pure functions, no I/O.

The main entry point, `clean_pages`, takes the raw text of each page and returns one
cleaned text plus where each page starts in it, so chunks can cite page numbers.
Only page-number lines are removed; every other character survives, though line
breaks inside sentences are joined and layout spaces are collapsed.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from ingest.headings import detect_heading
from ingest.records import CleanText
from kb.core.sentences import COLONS, ends_sentence

# A line that is only a page number: "- 1 -", "—16—", "第 3 页", "第1页 共5页", "3/5".
_PAGE_NUMBER = re.compile(
    r"^(?:[-—–－‒―~]+\s*\d{1,4}\s*[-—–－‒―~]+"
    r"|第\s*\d{1,4}\s*页(?:\s*[,，/]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4})$"
)
_BARE_NUMBER = re.compile(r"^\d{1,4}$")
# Punctuation after which a sentence certainly goes on.
_SOFT_END = re.compile(r"[，,、（(“‘《「『—-]$")
_STARTS_WITH_CLOSING_PUNCT = re.compile(r"^[，,。、；;：:！？!?）)”’》」』]")
_SALUTATION = re.compile(r"^[^，,。；;：:]{2,30}[：:]$")  # "刘正义委员：", "各位代表："
_WHOLE_LINE_PARENTHESIS = re.compile(r"^[（(][^（()）]*[）)]$")
_BULLET_BEFORE_HEADING = re.compile(r"^[-*•·]\s+(?=\S)")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff\u00ad"), None)
_WIDE_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u3000\t\x0b\x0c]")
_NON_ASCII = r"[^\x00-\x7f]"
# Whitespace between two non-ASCII characters (CJK text and full-width punctuation),
# or between a non-ASCII character and a digit: layout spacing, never meaningful in Chinese.
_LAYOUT_SPACE = re.compile(rf"(?<={_NON_ASCII})\s+(?={_NON_ASCII}|\d)|(?<=\d)\s+(?={_NON_ASCII})")
_TABLE_PUNCT = re.compile(r"[。；;！？!?，,：:]")
_NUMERIC = re.compile(r"^[-+]?[\d.,%％]+$")
_MAX_CELL = 20
# A form's field label: a short word alone on its line ("申请条件", "备注") or before a space and its value
# ("受理部门 政务大厅政策兑现窗口"). One seen at least _LABEL_MIN times in a document (a 政策兑现清单's records
# repeat their form) starts a line of its own: joined to the line above, "政策依据《…》申请条件" out-covered
# the line that answers.
_LABEL = re.compile(r"^([\u4e00-\u9fff]{2,6})(?:$|\s+\S)")
_LABEL_MIN = 3

# Bounds (characters) on the length from which an unfinished line counts as wrapped.
_MAX_JOIN_WIDTH = 40
_MIN_JOIN_WIDTH = 12


@dataclass
class _Line:
    text: str
    page: int
    blank_before: bool  # a blank line or page break separated it from the previous line
    table: bool = False


def is_page_number(line: str) -> bool:
    return bool(_PAGE_NUMBER.match(line.strip()))


def normalize_whitespace(line: str) -> str:
    """Unify exotic spaces, drop invisible characters, strip the ends."""
    line = line.translate(_INVISIBLE)
    return _WIDE_SPACES.sub(" ", line).strip()


def collapse_spaced_text(line: str) -> str:
    """'号 ， 邮 编 ：' -> '号，邮编：' and '2023 年' -> '2023年'; keeps spaces between ASCII words."""
    return re.sub(r" {2,}", " ", _LAYOUT_SPACE.sub("", line))


# A dated line of a law's header (LawRefBook): "2011年4月11日 宁波市…公告第28号公布",
# "2020年8月31日 最高人民法院审判委员会第1811次会议", "2023年12月11日 《…》第三次修订）".
LAW_HEADER_LINE = re.compile(
    r"^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,300}?(?:通过|公布|发布|修订|修正|施行|批准|会议|根据)[）)\s]*$")
_CHAPTER_RANKS = (0, 1)  # 第X章/编/节, 附件


def _table_cells(line: str) -> list[str] | None:
    """Cells of a line that could be a table row: short cells, no sentence punctuation. A chapter
    heading ("第一章 总 则") or a dated line of a law's header is never a row, however spaced."""
    cells = line.split()
    if len(cells) < 2 or _TABLE_PUNCT.search(line) or max(map(len, cells)) > _MAX_CELL:
        return None
    if LAW_HEADER_LINE.match(line.strip()):
        return None
    heading = detect_heading(line)
    if heading is not None and heading.rank in _CHAPTER_RANKS:
        return None
    return cells


def looks_like_table_row(line: str) -> bool:
    """A clear row: a number among its cells, or three cells or more."""
    cells = _table_cells(line)
    return bool(cells) and (len(cells) >= 3 or any(_NUMERIC.match(c) for c in cells))


def table_flags(lines: list[str]) -> list[bool]:
    """Which lines are table rows: runs of two or more cell-like lines with a clear row.

    A lone line such as '2023 年政府信息公开工作年度报告' is a title, not a table.
    """
    flags = [False] * len(lines)
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _table_cells(lines[j]):
            j += 1
        if j - i >= 2 and any(looks_like_table_row(x) for x in lines[i:j]):
            flags[i:j] = [True] * (j - i)
        i = max(j, i + 1)
    return flags


def _typical_width(lines: list[_Line]) -> float:
    """Length of a full body line (80th percentile): wrapped PDF lines are all about this long."""
    lengths = [len(x.text) for x in lines if not x.table]
    if len(lengths) < 2:
        return float(lengths[0]) if lengths else float(_MAX_JOIN_WIDTH)
    return statistics.quantiles(lengths, n=5)[-1]


def _joins(prev: _Line, nxt: _Line, typical: float) -> bool:
    """Does `nxt` continue the sentence that `prev` left unfinished?"""
    if prev.table or nxt.table:
        return False
    if _STARTS_WITH_CLOSING_PUNCT.match(nxt.text):
        return True
    if detect_heading(nxt.text) or _SALUTATION.match(nxt.text) or _WHOLE_LINE_PARENTHESIS.match(prev.text):
        return False
    if ends_sentence(prev.text):
        # A colon at the end of a full hard-wrapped line ("电子邮箱：" + "hzz@…") goes on;
        # elsewhere it closes a salutation or introduces a list.
        wrapped = not nxt.blank_before and len(prev.text) >= 0.9 * typical
        return prev.text[-1] in COLONS and wrapped
    if _SOFT_END.search(prev.text):
        return True
    if detect_heading(prev.text) and len(prev.text) < min(0.85 * typical, _MAX_JOIN_WIDTH):
        return False  # a short numbered heading line is complete on its own
    # A line this long that stops mid-sentence was wrapped or broken by a page, not ended;
    # shorter ones are titles, signatures and the like.
    return len(prev.text) >= max(_MIN_JOIN_WIDTH, min(_MAX_JOIN_WIDTH, 0.7 * typical))


def _glue(left: str, right: str) -> str:
    if left and right and left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        return " "
    return ""


def _page_lines(pages: list[str], first_page: int) -> list[_Line]:
    lines: list[_Line] = []
    blank = True
    for number, page in enumerate(pages, start=first_page):
        raw = [normalize_whitespace(x) for x in page.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        nonempty = [i for i, x in enumerate(raw) if x]
        edges = {nonempty[0], nonempty[-1]} if nonempty else set()
        blank = True  # a page break separates like a blank line
        for i, text in enumerate(raw):
            if not text:
                blank = True
                continue
            if is_page_number(text) or (i in edges and _BARE_NUMBER.match(text)):
                continue
            text = _BULLET_BEFORE_HEADING.sub("", text) if detect_heading(_BULLET_BEFORE_HEADING.sub("", text)) else text
            lines.append(_Line(text, number, blank))
            blank = False
    return lines


def form_labels(lines: list[str]) -> set[str]:
    """The field labels of a form repeated in the document (see _LABEL): lines as loaded, spaces kept."""
    counts: dict[str, int] = {}
    for line in lines:
        if m := _LABEL.match(line):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return {label for label, n in counts.items() if n >= _LABEL_MIN}


def clean_pages(pages: list[str], first_page: int = 1, authored: bool = False) -> CleanText:
    """Clean a document given as a list of page texts; paragraphs end up one per line.

    `authored`: text written as text (Markdown), not laid out on pages: a blank line always
    ends a paragraph and spaces are the author's, so neither is repaired."""
    lines = _page_lines(pages, first_page)
    labels = form_labels([x.text for x in lines])
    labelled = [bool((m := _LABEL.match(x.text)) and m.group(1) in labels) for x in lines]
    for line, table in zip(lines, table_flags([x.text for x in lines])):
        line.table = table
        if not table and not authored:
            line.text = collapse_spaced_text(line.text)
    typical = _typical_width(lines)

    out: list[str] = []
    page_starts: list[tuple[int, int]] = []
    offset = 0
    prev: _Line | None = None
    for line, label in zip(lines, labelled):
        if prev is not None and not label and not (authored and line.blank_before) and _joins(prev, line, typical):
            sep = _glue(out[-1], line.text)
            out[-1] += sep + line.text
        else:
            sep = "\n" if out else ""
            out.append(line.text)
        start = offset + len(sep)
        offset = start + len(line.text)
        if not page_starts or page_starts[-1][1] != line.page:
            page_starts.append((start, line.page))
        prev = line
    if not page_starts:
        page_starts = [(0, first_page)]
    return CleanText("\n".join(out), page_starts)
