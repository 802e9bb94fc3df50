"""The header of a LawRefBook law file: the dated lines before ``<!-- INFO END -->``
("2011年4月11日 宁波市第十三届人民代表大会常务委员会公告第28号公布", "…第三次修订）"). Pure functions;
ingest/profile.py reads the dates from it, ingest/metadata.py the issuing organ."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

_D = r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")


def iso_date(s: str) -> str | None:
    """The first 2023年12月11日 in `s` as 2023-12-11 (None for none, or no such day)."""
    m = _DATE.search(s)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


_HEADER_EVENTS = ("通过", "公布", "发布", "修订", "修正", "施行", "批准")
_EVENT_WORD = re.compile("|".join(_HEADER_EVENTS))
_QUOTED_TITLE = re.compile(r"《[^《》]*》")
_DATE_AT = re.compile(_D)
# "发布之日施行", "自公布之日起施行": in force from the header's 公布/发布 date
_FROM_PUBLICATION = re.compile(r"^(?:自)?(?:公布|发布)之日(?:起)?施行")


@dataclass(frozen=True)
class HeaderEvent:
    """One dated event of a LawRefBook header: "2011年4月11日 宁波市…公告第28号公布"."""

    event: str  # 通过, 公布, 发布, 修订, 修正, 施行, 批准
    date: str  # ISO
    who: str  # the words before the event, outside 《》: "宁波市第十三届人民代表大会常务委员会公告第28号"


def _event_of(segment: str) -> tuple[str | None, str]:
    """(event, who) of one dated segment of a header line. A 修订/修正 outside 《》 wins ("修订通过",
    "批准的《…决定》修正"); else the last event word; a segment ending at "…会议" has none (it shares
    the next one's: "第1331次会议、2004年11月11日最高人民检察院…通过")."""
    outside = _QUOTED_TITLE.sub("", segment)
    words = list(_EVENT_WORD.finditer(outside))
    if not words or outside.rstrip().endswith("批准的"):
        # "…会议批准的2011年11月15日青岛市…《…决定》修正": the approval is of the amendment that follows
        return None, outside.strip(" 、，,）)")
    change = [w for w in words if w.group(0) in ("修订", "修正")]
    chosen = (change or words)[-1]
    who = outside[: words[0].start()]
    return chosen.group(0), re.sub(r"^(?:根据|于)|(?:根据|于|的)$", "", who.strip(" 、，,）)")).strip()


def header_events(header: str | None) -> list[HeaderEvent]:
    """Every dated event of a LawRefBook header, in order. A line may hold several dates
    ("…会议通过《…》根据1993年7月23日…第一次修正2004年9月17日…修订"); an organ written over
    several lines ("1980年12月27日 国家经济委员会" / "国家基本建设委员会" / … / "国家档案局发布")
    is read as one line; full-width spaces and a stray closing bracket do not matter."""
    if not header:
        return []
    entries: list[str] = []
    for raw in header.split("\n"):
        line = unicodedata.normalize("NFKC", raw).strip()
        if not line or line.startswith("#"):
            continue
        if _DATE_AT.match(line):
            entries.append(line)
        elif entries and not _EVENT_WORD.search(_QUOTED_TITLE.sub("", entries[-1])):
            entries[-1] += "、" + line
    events: list[HeaderEvent] = []
    for entry in entries:
        starts = [m for m in _DATE_AT.finditer(entry)]
        pending: list[tuple[str, str]] = []  # (date, who) of segments waiting for the next one's event
        for k, m in enumerate(starts):
            segment = entry[m.end() : starts[k + 1].start() if k + 1 < len(starts) else len(entry)]
            date = iso_date(m.group(0))
            event, who = _event_of(segment)
            if date is None:
                continue
            if event is None:
                pending.append((date, who))
                continue
            events += [HeaderEvent(event, d, w) for d, w in pending] + [HeaderEvent(event, date, who)]
            pending = []
        # "2020年8月31日 最高人民法院审判委员会第1811次会议": a meeting without an event word adopted it
        events += [HeaderEvent("通过", d, w) for d, w in pending if "会议" in w]
    return events


def in_force_on_publication(header: str | None) -> bool:
    return bool(header) and any(_FROM_PUBLICATION.match(unicodedata.normalize("NFKC", x).strip())
                                for x in header.split("\n"))
