"""Profile a document at ingestion, and work out every document's status as of a date.

``profile_document`` reads one document alone: its level (效力层级), the region it applies to,
its dates and the titles it abolishes. ``resolve_statuses`` then looks across the knowledge base:
expiry, a later version of the same title (已被取代), another document abolishing it (已废止).

Where the dates come from:

- a LawRefBook Markdown file: the header of dated lines before ``<!-- INFO END -->``
  ("2003年9月26日 宁波市第十二届人民代表大会常务委员会第五次会议通过", "…修正", "…公布", "… 施行"), read by
  ingest/lawheader.py; the loader hands it over apart from the text (the ``header`` argument);
- the text: "本条例自2016年1月1日起施行", "本办法自2017年1月1日起施行，有效期5年", "有效期至…",
  "自…起施行…至…止", "自印发之日起施行"; the header wins over the text for 施行;
- an official letter (答复, 通知): the date line it is signed with (成文日期) for ``promulgated``,
  else its "…印发" date.

The file name is never a source of a date or a place (it is ours, not the issuer's). Nothing is
guessed: what a document does not state stays None.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata

from ingest.lawheader import header_events, in_force_on_publication, iso_date
from kb.core.places import Places
from kb.store.status import normalise_title
from kb.core.profile import (
    LEVEL_ADMIN_REGULATION,
    LEVEL_GUIDE,
    LEVEL_JUDICIAL_INTERPRETATION,
    LEVEL_LAW,
    LEVEL_LOCAL_REGULATION,
    LEVEL_NORMATIVE,
    LEVEL_OTHER,
    LEVEL_REPLY,
    LEVEL_RULE,
    NATIONAL,
    STATUS_UNKNOWN,
    DocumentProfile,
)

INFO_END = "<!-- INFO END -->"

# ---- dates

_CN_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "○": 0, "Ｏ": 0, "O": 0, "两": 2}
_CN_YEAR = "〇零○ＯO一二三四五六七八九"
_CN_DATE = re.compile(rf"([{_CN_YEAR}]{{4}})\s*年\s*([一二三四五六七八九十]{{1,2}})\s*月\s*([一二三四五六七八九十]{{1,3}})\s*日")
_D = r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")


def _cn_number(s: str) -> int:
    """'七' -> 7, '十二' -> 12, '二十二' -> 22, '5' -> 5."""
    if s.isdigit():
        return int(s)
    if "十" not in s:
        return _CN_DIGIT[s]
    tens, _, ones = s.partition("十")
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0)


def _arabic_dates(text: str) -> str:
    """Full-width digits to ASCII, and 二〇一七年一月一日 to 2017年1月1日, so that one pattern reads all."""
    text = text.translate({0xFF10 + i: 0x30 + i for i in range(10)})

    def sub(m: re.Match[str]) -> str:
        year = "".join(str(_CN_DIGIT[c]) for c in m.group(1))
        return f"{year}年{_cn_number(m.group(2))}月{_cn_number(m.group(3))}日"

    return _CN_DATE.sub(sub, text)


def _add_period(start: str, count: int, unit: str) -> str:
    """The last day of a period of ``count`` years or months that starts on ``start``."""
    d = dt.date.fromisoformat(start)
    months = count * 12 if unit == "年" else count
    y, m = divmod(d.month - 1 + months, 12)
    y, m = d.year + y, m + 1
    end = dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))
    if d.day > calendar.monthrange(y, m)[1]:  # 2月29日 + 1年: the period ends on 2月28日
        return end.isoformat()
    return (end - dt.timedelta(days=1)).isoformat()


# ---- the LawRefBook header (ingest/lawheader.py)


def split_header(text: str) -> tuple[str | None, str]:
    """(header, body): the part before ``<!-- INFO END -->`` and the rest; (None, text) without one."""
    if INFO_END in text:
        head, body = text.split(INFO_END, 1)
        return head, body
    return None, text


# ---- 施行 and 有效期 in the text

_SELF = (  # "本办法", "本条例": the document speaking of itself
    r"本(?:法典|法|实施细则|实施办法|细则|条例|办法|规定|决定|措施|意见|通知|规则|指南|方案|政策|清单"
    r"|公告|通告|标准|制度|计划)"
)
_EFFECTIVE = re.compile(
    rf"{_SELF}[^。；;\n]{{0,24}}?自\s*(?P<when>{_D}|公布之日|发布之日|颁布之日|印发之日|下发之日|签发之日)\s*起\s*(?:施行|执行|实施|生效|试行)"
)
_VALID_FOR = re.compile(r"有效期(?:为|是)?\s*(\d{1,3}|[一二两三四五六七八九十]{1,3})\s*(年|个月)")
_VALID_UNTIL = re.compile(rf"有效期(?:至|到|截至|截止到?|延长至)\s*({_D})")
_UNTIL = re.compile(rf"至\s*({_D})\s*(?:止|废止|失效|终止|截止)")
_SENTENCE = re.compile(r"[^。；;\n]+")
_SELF_VALIDITY = re.compile(rf"{_SELF}(?:的)?有效期")


def _effective_clauses(body: str, promulgated: str | None, printed: str | None) -> tuple[str | None, str | None]:
    """(effective_from, effective_until) stated in the text; each None when not stated."""
    effective_from = effective_until = None
    sentences = [m.group(0) for m in _SENTENCE.finditer(body)]
    for s in sentences:
        for m in _EFFECTIVE.finditer(s):
            when = m.group("when")
            if _DATE.match(when):
                effective_from = iso_date(when)
            elif when == "印发之日":
                effective_from = printed or promulgated
            else:
                effective_from = promulgated
    # 有效期 only in a sentence about this document itself (not "注册商标的有效期为十年")
    for s in sentences:
        if not (_EFFECTIVE.search(s) or _SELF_VALIDITY.search(s)):
            continue
        if m := _VALID_UNTIL.search(s):
            effective_until = iso_date(m.group(1))
        elif m := _UNTIL.search(s):
            effective_until = iso_date(m.group(1))
        elif m := _VALID_FOR.search(s):
            start = effective_from
            if own := _EFFECTIVE.search(s):
                start = iso_date(own.group("when")) or start
            if start:
                effective_until = _add_period(start, _cn_number(m.group(1)), m.group(2))
    return effective_from, effective_until


# ---- the signature date of an official letter

_PRINTED = re.compile(rf"({_D})\s*印发\s*$")
_DATE_LINE = re.compile(rf"^\s*({_D})\s*$")


def _signature_dates(body: str) -> tuple[str | None, str | None]:
    """(成文日期, 印发 date) from the last lines of an official document."""
    lines = [x.strip() for x in body.strip().split("\n") if x.strip()][-15:]
    signed = printed = None
    for line in lines:
        if m := _PRINTED.search(line):
            printed = iso_date(m.group(1))
        elif (m := _DATE_LINE.match(line)) and signed is None:
            signed = iso_date(m.group(1))
    return signed, printed


# ---- what a document abolishes

_ABOLISH_AFTER_TITLE = re.compile(r"》\s*(?:[（(][^）)]{0,60}[）)])?\s*(?:同时|即行|予以|一并|相应)?\s*废止")
_ABOLISH_LIST = re.compile(r"(?:同时|即行|予以|一并)?废止\s*[：:]")
_TITLE = re.compile(r"《([^《》]{2,80})》")


def _abolished_titles(body: str) -> tuple[str, ...]:
    titles: list[str] = []
    for m in _ABOLISH_AFTER_TITLE.finditer(body):
        start = max(body.rfind(c, 0, m.start()) for c in "。；;\n") + 1
        titles += [t.group(1) for t in _TITLE.finditer(body, start, m.start() + 1)]
    for m in _ABOLISH_LIST.finditer(body):
        tail = body[m.end() : m.end() + 600]
        stop = re.search(r"\n\s*第[一二三四五六七八九十百零〇]+条|\n\s*\n\s*\n", tail)
        titles += [t.group(1) for t in _TITLE.finditer(tail[: stop.start() if stop else len(tail)])]
    out: list[str] = []
    for t in titles:
        t = t.strip()
        if "废止" not in t and t not in out:  # 《关于废止…的决定》 names the act, not the abolished text
            out.append(t)
    return tuple(out)


# ---- level

_NPC = re.compile(r"全国人民代表大会|全国人大")
_LOCAL_PC = re.compile(r"(?<!全国)人民代表大会")
_COURT = re.compile(r"最高人民(?:法院|检察院)")
_STATE_COUNCIL_ORDER = re.compile(r"国务院令")
# the State Council issuing or approving: "中华人民共和国国务院令第306号公布", "国务院批准", "国务院第23次常务会议",
# "中华人民共和国国务院、中华人民共和国中央军事委员会令第418号公布"
_STATE_COUNCIL_ACT = re.compile(r"国务院(?:[、和]中华人民共和国中央军事委员会|[、和]中央军事委员会)?(?:令|批准|发布|公布|第\d+次常务会议)")
_ORDER = re.compile(r"(?:政府|局|部|委员会|委|署|总局|办公厅)令\s*(?:第\s*\d+\s*号|〔\d{4}〕)|令第\s*\d+\s*号")
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fa5]{1,10}[〔\[［【(（]\s*\d{4}\s*[〕\]］】)）]\s*\d{1,5}\s*号")
_STATUS_BRACKETS = re.compile(r"[（(](?:试行|暂行|草案|征求意见稿|修订|修正|\d{4}[^）)]*)[）)]\s*$")
_NORMATIVE_END = re.compile(
    r"(?:办法|规定|细则|措施|意见|通知|决定|方案|清单|规则|规划|标准|规范|制度|纲要|公告|通告|批复|实施意见|若干措施)$"
)
_NORMATIVE_SELF = re.compile(r"本(?:办法|规定|细则|措施|意见|通知|方案|清单|规则|决定|实施细则|暂行办法)")


def _level(title: str, issuer: str, header: str, body: str, doc_type: str, region: tuple[str, ...]) -> str:
    t = _STATUS_BRACKETS.sub("", re.sub(r"\s+", "", title or ""))
    head = body[:800]
    who = f"{issuer}\n{header}"
    # where an order number (令第N号) speaks for the document itself: the issuer, the header and the
    # short lines of the 版头 -- not a long preamble citing "（国务院令第N号）"
    short_lines = [x.strip() for x in body.split("\n") if x.strip()][:12]
    masthead = who + "\n" + "\n".join(x for x in short_lines if len(x) <= 40 and not x.startswith("《"))
    if re.search(r"答复|复函", t) or (doc_type == "答复" and "批复" not in t):
        return LEVEL_REPLY
    if _COURT.search(t + who) and re.search(r"解释|规定|批复|决定", t):
        return LEVEL_JUDICIAL_INTERPRETATION
    national = region == (NATIONAL,)
    if re.search(r"(?<![办方做])法$|法典(?:[\u4e00-\u9fa5]{1,4}编)?$", t) and (
            t.startswith("中华人民共和国") or _NPC.search(who) or national):
        return LEVEL_LAW  # 中华人民共和国专利法, 中华人民共和国民法典物权编
    if t.startswith("全国人民代表大会") and t.endswith("决定"):
        return LEVEL_LAW
    by_state_council = (t.startswith(("中华人民共和国", "国务院")) or (issuer or "").strip() == "国务院"
                        or (issuer or "").startswith("国务院、")
                        or bool(_STATE_COUNCIL_ACT.search(header)))
    if _STATE_COUNCIL_ORDER.search(masthead) or (re.search(r"(?:条例|实施细则|细则)$", t) and by_state_council):
        return LEVEL_ADMIN_REGULATION
    if by_state_council and re.search(r"(?:规定|办法)$", t):
        return LEVEL_ADMIN_REGULATION  # 国务院关于涉外知识产权纠纷处理的规定
    if t.endswith("条例") and national and not _LOCAL_PC.search(who):
        return LEVEL_ADMIN_REGULATION  # a 条例 for the whole country without a header: 保障中小企业款项支付条例
    if _ORDER.search(masthead):
        return LEVEL_RULE
    if t.endswith("条例") and region and not national:
        return LEVEL_LOCAL_REGULATION
    if _LOCAL_PC.search(header) and re.search(r"通过|批准", header):
        return LEVEL_LOCAL_REGULATION
    if re.search(r"指南|须知|指引|办事流程|操作规程", t):
        return LEVEL_GUIDE
    if _NORMATIVE_END.search(t) or _NORMATIVE_SELF.search(body) or _DOC_NUMBER.search(head):
        return LEVEL_NORMATIVE
    return LEVEL_OTHER


# ---- profile_document


def profile_document(
    title: str,
    issuer: str | None,
    text: str,
    file_name: str,
    doc_type: str,
    places: Places,
    header: str | None = None,
) -> DocumentProfile:
    """The profile of one document, read from it alone. ``status`` is left 未知: it depends on
    the date asked about and on the other documents (``resolve_statuses``).

    ``header``: the LawRefBook header when the loader took it apart from the text (ingest/loaders.py);
    else it is read from ``text`` (the part before ``<!-- INFO END -->``).
    ``file_name`` is only a label: no date or place is read from it."""
    del file_name  # kept in the signature for the caller's logs; the issuer's text is the only source

    def norm(x: str) -> str:
        return _arabic_dates(unicodedata.normalize("NFC", (x or "").replace("\r\n", "\n").replace("\r", "\n")))

    text = norm(text)
    if header is None:
        header, body = split_header(text)
    else:
        header, body = norm(header), text
    title = (title or "").strip()

    promulgated = adopted = amended = header_effective = None
    if header is not None:
        events = header_events(header)
        passed = sorted(e.date for e in events if e.event == "通过")
        published = sorted(e.date for e in events if e.event in ("公布", "发布"))
        changed = sorted(e.date for e in events if e.event in ("修订", "修正"))
        started = sorted(e.date for e in events if e.event == "施行")
        adopted = passed[0] if passed else None
        promulgated = published[-1] if published else None
        amended = changed[-1] if changed else None
        header_effective = started[-1] if started else None
        if header_effective is None and promulgated and in_force_on_publication(header):
            header_effective = promulgated

    signed = printed = None
    if header is None:  # a LawRefBook header states its own dates; an official letter is signed
        signed, printed = _signature_dates(body)
        promulgated = signed or printed

    published = promulgated
    if published is None and header is not None:
        # "本法自公布之日起施行" without a 公布 line: a law is promulgated on the day it is adopted or amended
        dated = sorted(e.date for e in header_events(header) if e.event != "施行")
        published = dated[-1] if dated else None
    text_effective, effective_until = _effective_clauses(body, published, printed)
    effective_from = header_effective or text_effective
    if effective_from and amended and effective_from < amended:
        # "本细则自2001年7月1日起施行" in the text of the 2023 revision, "2005年1月1日 施行" above a 2011
        # 修正 in a header: the first version's date. This version is not in force before its own amendment.
        effective_from = amended

    region = ()
    for layer in (f"{title}\n{issuer or ''}", header or "", body):
        region = places.region_of_text(layer)
        if region:
            break

    level = _level(title, issuer or "", header or "", body, doc_type or "", region)
    if level in (LEVEL_LAW, LEVEL_ADMIN_REGULATION, LEVEL_JUDICIAL_INTERPRETATION):
        # national law applies everywhere, whatever places its title names ("…北京、上海、广州知识产权法院…")
        region = (NATIONAL,)
    own = normalise_title(title)
    abolishes = tuple(t for t in _abolished_titles(body) if normalise_title(t) != own)  # an earlier version of itself
    return DocumentProfile(
        level=level,
        region=region,
        promulgated=promulgated,
        adopted=adopted,
        amended=amended,
        effective_from=effective_from,
        effective_until=effective_until,
        status=STATUS_UNKNOWN,
        abolishes=abolishes,
    )
