"""Turning what people send (API bodies, Gradio chat messages) into library arguments."""
from __future__ import annotations

import html

from kb.core.text import message_text
from kb.search.filters import Filters


def filters_from(raw: dict | None) -> Filters | None:
    if not raw:
        return None
    as_tuple = lambda v: tuple(v) if isinstance(v, (list, tuple)) else ((v,) if v else ())  # noqa: E731
    return Filters(doc_types=as_tuple(raw.get("doc_types")), issuers=as_tuple(raw.get("issuers")),
                   date_from=raw.get("date_from") or None, date_to=raw.get("date_to") or None,
                   files=as_tuple(raw.get("files")))


def filters_error(raw: object) -> str | None:
    """Why an API `filters` value cannot be used (None when it can): a wrong type must be a 422, not a 500."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return "filters 应为 JSON 对象"
    for name in ("doc_types", "issuers", "files"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str) and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"filters.{name} 应为字符串或字符串列表"
    for name in ("date_from", "date_to"):
        if raw.get(name) is not None and not isinstance(raw.get(name), str):
            return f"filters.{name} 应为日期字符串，如 2019-01-01"
    return None


def history_from(messages: list | None) -> list[dict]:
    """Gradio chat messages (or API history) as [{"role", "content"}] with text content."""
    out = []
    for m in messages or []:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        out.append({"role": m["role"], "content": html.unescape(message_text(m.get("content")))})  # chat text is escaped
    return out
