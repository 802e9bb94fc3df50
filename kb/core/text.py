"""Text primitives shared by ingestion, search, answers and evaluation. Pure."""
from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def squeeze(text: str) -> str:
    """The text with all whitespace removed: how Chinese text is compared (line breaks and
    spaces inside a sentence are layout, not content)."""
    return _SPACE.sub("", text)


def message_text(content: object) -> str:
    """The text of a chat message's content: a string, or Gradio 6 / OpenAI content parts
    ([{"type": "text", "text": …}]); anything else gives ""."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text") or "") for part in content
                        if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""
