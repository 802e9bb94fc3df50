"""Extract official-document elements (GB/T 9704-2012) from cleaned text. Pure functions.

The 版头 (category mark, issuing organ, document number, title, addressee) is read from
the head of the document, the 版记 (signature, date, contact, cc, printing) from its
tail. An element that is not found stays None: nothing is guessed.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ingest.lawheader import header_events
from kb.core.guard import looks_like_instruction
from kb.core.places import Places
from kb.core.records import DocumentMeta

HEAD_LINES = 12
TAIL_LINES = 12

_CN_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0, "O": 0, "○": 0, "Ｏ": 0}
_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_CN_DATE = re.compile(r"([〇零○OＯ一二三四五六七八九]{4})年([一二三四五六七八九十]{1,2})月([一二三四五六七八九十]{1,3})日")
_DOC_NUMBER = re.compile(r"([\u4e00-\u9fa5]{1,15})\s*[〔\[［【(（]\s*(\d{4})\s*[〕\]］】)）]\s*(\d{1,5})\s*号")
_CATEGORY = re.compile(r"类别标记\s*[:：]\s*([A-Za-zＡ-Ｚ\u4e00-\u9fa5]{1,6})")
_ISSUER_HEAD = re.compile(r"^([\u4e00-\u9fa5（）()]{2,40}?)(?:文件|函)$")
_ORGAN = re.compile(r"^[\u4e00-\u9fa5（）()]{2,40}(?:政府|委员会|办公室|办公厅|厅|局|委|部|院|署|中心|协会|联合会|监督管理局)$")
_ADDRESSEE = re.compile(r"^([^，,。；;：:]{2,40})[：:]$")
_CONTACT = re.compile(r"联系人\s*[:：]\s*([\u4e00-\u9fa5·]{2,8})")
_PHONE = re.compile(r"(?:联系)?电话\s*[:：]\s*([0-9０-９][0-9０-９\-－—()（） ]{4,20}[0-9０-９])")
_CC = re.compile(r"^抄送\s*[:：]\s*(.+?)[。.]?$")
_PRINTED = re.compile(r"^(?:(.+?)\s*)?(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)\s*印发$")
_TITLE_END = re.compile(r"(答复|复函|办法|细则|规定|措施|通知|意见|报告|决定|方案|批复|函|公告|通告|规划|条例|指南|纲要|解释)$")
_TITLE_START = re.compile(r"^关于")
# (type, title endings); the first that ends the title wins, else the first the title contains.
# Laws and regulations are typed by their own name: 法, 条例, 细则, 解释, 规定, 办法, 决定.
_DOC_TYPES = [
    ("答复", ("答复", "复函")),
    ("批复", ("批复",)),
    ("条例", ("条例",)),
    ("细则", ("细则",)),
    ("解释", ("解释",)),
    ("规定", ("规定",)),
    ("办法", ("办法",)),
    ("决定", ("决定",)),
    ("措施", ("措施",)),
    ("通知", ("通知",)),
    ("意见", ("意见",)),
    ("报告", ("报告",)),
]
_CONTAINS_ORDER = ("答复", "批复", "办法", "规定", "细则", "条例", "措施", "通知", "意见", "报告")
_LAW_TITLE = re.compile(r"(?<![办方做])法$|法典(?:[\u4e00-\u9fa5]{1,4}编)?$")  # 专利法, 民法典, 民法典物权编
_TRAILING_BRACKETS = re.compile(r"\s*[（(][^（）()]{0,20}[）)]\s*$")  # （试行）, （三）, （2010修订）
_CJK_SPACE = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")


def parse_date(text: str) -> str | None:
    """'2019年7月22日' or '二〇一九年七月二十二日' -> '2019-07-22'; None if absent or invalid."""
    m = _DATE.search(text)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = _CN_DATE.search(text)
        if not m:
            return None
        y = int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))
        mo, d = _cn_small_number(m.group(2)), _cn_small_number(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return None
    return f"{y:04d}-{mo:02d}-{d:02d}"


def _cn_small_number(s: str) -> int:
    """'七' -> 7, '十二' -> 12, '二十二' -> 22, '三十一' -> 31."""
    if "十" not in s:
        return _CN_DIGITS[s]
    tens, _, ones = s.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def normalize_doc_number(m: re.Match[str]) -> str:
    return f"{m.group(1)}〔{m.group(2)}〕{m.group(3)}号"


def doc_type_of(title: str) -> str:
    t = (title or "").strip()
    while _TRAILING_BRACKETS.search(t):
        t = _TRAILING_BRACKETS.sub("", t)
    if _LAW_TITLE.search(t):
        return "法"
    for doc_type, words in _DOC_TYPES:
        if t.endswith(words):
            return doc_type
    types = dict(_DOC_TYPES)
    for doc_type in _CONTAINS_ORDER:
        if any(w in t for w in types[doc_type]):
            return doc_type
    return "其他"


# ---- laws and regulations: issuer and date from a LawRefBook header (ingest/profile.py header_events)

_ORGAN_NAMES = re.compile(r"全国人民代表大会常务委员会|全国人大常委会|全国人民代表大会|最高人民法院|最高人民检察院|国务院|中央军事委员会")
_LOCAL_CONGRESS = re.compile(
    r"([\u4e00-\u9fa5]{2,12}?(?:省|自治区|市|自治州|州|盟|县|区))(?:第[一二三四五六七八九十百零〇\d]+届)?"
    r"(人民代表大会常务委员会|人大常委会|人民代表大会)")
_SHORT_CONGRESS = re.compile(r"^[市省]?[一二三四五六七八九十]+届(人民代表大会常务委员会|人大常委会|人民代表大会)")
_ORGAN_LIST = re.compile(r"^[\u4e00-\u9fa5、]{2,80}(?:委员会|局|部|院|署|厅|办公室|政府)$")


def _congress(kind: str) -> str:
    return "人民代表大会" if kind == "人民代表大会" else "人民代表大会常务委员会"


def organ_of(who: str, place: str | None) -> str | None:
    """The issuing organ named in a header line's words: "第九届全国人民代表大会常务委员会第二十八次会议" ->
    全国人民代表大会常务委员会; "宁波市第十三届人民代表大会常务委员会公告第28号" -> 宁波市人民代表大会常务委员会;
    "中华人民共和国国务院令第306号" -> 国务院; "市十二届人大常委会第二十二次会议" -> the title's `place`'s."""
    names: list[str] = []
    for m in _ORGAN_NAMES.finditer(who):
        name = "全国人民代表大会常务委员会" if m.group(0) == "全国人大常委会" else m.group(0)
        if name not in names:
            names.append(name)
    if names:
        return "、".join(names)
    if m := _LOCAL_CONGRESS.search(who):
        return m.group(1) + _congress(m.group(2))
    if (m := _SHORT_CONGRESS.match(who)) and place:
        return place + _congress(m.group(1))
    if _ORGAN_LIST.match(who):
        return who  # "国家经济委员会、国家基本建设委员会、国家科学技术委员会、国家档案局"
    return None


def law_elements(meta: DocumentMeta, header: str | None, places: Places) -> DocumentMeta:
    """A LawRefBook file's type, issuing organ and date, from its title and header: the organ that
    published it (公布/发布), else the one that adopted it (通过: a city's congress, not the province
    approving it), else the one that amended it; else the organ its title names ("国务院关于…",
    "最高人民法院、最高人民检察院关于…"), the place's congress for a local 条例 and the State Council
    for a national one. The date is the header's latest but 施行. ``header`` None: not a law file."""
    if header is None:
        return meta
    title = meta.title or ""
    region = places.region_of_text(title)
    place = region[-1] if region and region != ("全国",) else None
    events = header_events(header)
    issuer = None
    for kinds in (("公布", "发布"), ("通过",), ("修订", "修正")):
        organs = [o for e in events if e.event in kinds and (o := organ_of(e.who, place))]
        if organs:
            issuer = "、".join(dict.fromkeys("、".join(organs).split("、")))
            break
    if issuer is None and "关于" in title:
        issuer = organ_of(title.split("关于", 1)[0], None)
    if issuer is None and meta.doc_type == "条例":
        issuer = f"{place}人民代表大会常务委员会" if place else "国务院"
    dates = sorted(e.date for e in events if e.event != "施行")
    return replace(meta, issuer=issuer or meta.issuer, date=dates[-1] if dates else meta.date)


def _head(lines: list[str]) -> list[str]:
    """The 版头: lines up to the first body paragraph (a line ending a sentence)."""
    head = []
    for line in lines[:HEAD_LINES]:
        if line.endswith(("。", "！", "？")) or len(line) > 80:
            break
        head.append(line)
    return head


def _find_title(head: list[str], skip: set[int]) -> str | None:
    """Title lines: starting with 关于 or ending with a document-type word, wrapped lines joined."""
    for i, line in enumerate(head):
        if i in skip or not (_TITLE_START.match(line) or _TITLE_END.search(line)) or looks_like_instruction(line):
            continue  # a line addressing an assistant is never a title, whatever it ends with
        parts, j = [line], i
        # A wrapped title continues until it ends with a document-type word.
        while not _TITLE_END.search(parts[-1]) and j + 1 < len(head) and j + 1 not in skip:
            nxt = head[j + 1]
            if nxt.startswith(("——", "—", "（", "(")) or nxt.endswith(("：", ":")):
                break
            parts.append(nxt)
            j += 1
        if not _TITLE_END.search(parts[-1]):
            continue
        # Unpunctuated lines just above belong to it: an organ name ("洪泽区人民政府" /
        # "2023年…报告") or the first half of a wrapped title.
        k = i - 1
        while k >= 0 and k not in skip and not _TITLE_START.match(parts[0]) and not re.search(r"[。，：:；]$", head[k]):
            parts.insert(0, head[k])
            k -= 1
        return _CJK_SPACE.sub("", "".join(parts))
    return None


def extract_metadata(text: str, file_name: str, file_title: str | None = None) -> DocumentMeta:
    """Read the official-document elements of a cleaned text."""
    lines = [x.strip() for x in text.split("\n") if x.strip()]
    head = _head(lines)
    tail = lines[-TAIL_LINES:]
    skip: set[int] = set()

    category = doc_number = issuer = addressee = None
    for i, line in enumerate(head):
        if (m := _CATEGORY.search(line)) and category is None:
            category, _ = m.group(1), skip.add(i)
        elif (m := _DOC_NUMBER.search(line)) and doc_number is None and len(line) <= 30:
            doc_number, _ = normalize_doc_number(m), skip.add(i)
        elif (m := _ISSUER_HEAD.match(line)) and issuer is None:
            issuer, _ = m.group(1), skip.add(i)
        elif (m := _ADDRESSEE.match(line)) and addressee is None and i > 0:
            addressee, _ = m.group(1), skip.add(i)

    title = _find_title(head, skip)
    if issuer is None:
        issuer = next((x for j, x in enumerate(head) if j not in skip and _ORGAN.match(x)), None)

    date = printed_by = printed_date = cc = None
    for i, line in enumerate(tail):
        if m := _PRINTED.match(line):
            printed_date = parse_date(m.group(2))
            printed_by = m.group(1) or (tail[i - 1] if i > 0 and _ORGAN.match(tail[i - 1]) else None)
        elif m := _CC.match(line):
            cc = m.group(1).rstrip("。.")
        elif date is None and _DATE.fullmatch(line) or _CN_DATE.fullmatch(line):
            date = parse_date(line)
            # The signature above the date names the issuer when the 版头 did not.
            if issuer is None and i > 0 and _ORGAN.match(re.sub(r"[（(].*?[）)]", "", tail[i - 1])):
                issuer = re.sub(r"[（(].*?[）)]", "", tail[i - 1])

    joined_tail = "\n".join(tail)
    contact = m.group(1) if (m := _CONTACT.search(joined_tail)) else None
    phone = m.group(1).strip() if (m := _PHONE.search(joined_tail)) else None

    from_filename = title is None and not file_title
    final_title = title or (file_title or "").strip() or Path(file_name).stem
    return DocumentMeta(
        title=final_title,
        doc_type=doc_type_of(final_title),
        issuer=issuer,
        doc_number=doc_number,
        date=date,
        addressee=addressee,
        cc=cc,
        printed_by=printed_by,
        printed_date=printed_date,
        contact=contact,
        phone=phone,
        category_mark=category,
        title_from_filename=from_filename,
    )
