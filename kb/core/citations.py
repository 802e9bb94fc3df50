"""How a passage's source is written for people: 《标题》（发文字号）第X页 · section."""
from __future__ import annotations

from kb.core.profile import STATUS_EXPIRED, STATUS_IN_FORCE, STATUS_UNKNOWN, DocumentProfile
from kb.core.records import Passage


def pages_text(pages: list[int]) -> str:
    if not pages:
        return ""
    return f"第{pages[0]}页" if len(pages) == 1 else f"第{pages[0]}–{pages[-1]}页"


def source_line(passage: Passage) -> str:
    parts = [f"《{passage.title}》"]
    if passage.doc_number:
        parts.append(f"（{passage.doc_number}）")
    line = "".join(parts)
    if passage.pages:
        line += pages_text(passage.pages)
    if passage.heading_path:
        line += " · " + " › ".join(passage.heading_path)
    if passage.profile.status not in (STATUS_IN_FORCE, STATUS_UNKNOWN):
        line += f"〔{passage.profile.status}〕"  # never let an expired rule pass for a current one
    return line


def chinese_date(iso: str) -> str:
    y, m, d = (int(x) for x in iso.split("-"))
    return f"{y}年{m}月{d}日"


def profile_text(profile: DocumentProfile) -> str:
    """"地方性法规 · 浙江省宁波市 · 现行有效（2004年1月1日起施行）" for citations and the document list."""
    parts = [profile.level]
    if profile.region:
        parts.append("".join(profile.region))
    status = profile.status
    if profile.effective_from and profile.effective_until:
        status += f"（{chinese_date(profile.effective_from)}至{chinese_date(profile.effective_until)}）"
    elif profile.effective_from:
        status += f"（{chinese_date(profile.effective_from)}起施行）"
    elif profile.status == STATUS_EXPIRED and profile.effective_until:
        status += f"（有效期至{chinese_date(profile.effective_until)}）"
    parts.append(status)
    return " · ".join(parts)
