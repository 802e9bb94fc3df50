"""How a passage's source is written for people: 《标题》（发文字号）第X页 · section."""
from __future__ import annotations

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
    return line
