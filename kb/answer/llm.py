"""The LLM strategy: the numbered passages and the question go to the configured model with the
prompt files; its answer is validated (kb/answer/validation.py) before anyone sees it.

`condense` rewrites a follow-up into a standalone question; `draft` streams the model's text
and returns a Draft, or None when the model failed and the extractive answer must stand in.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Generator

from kb.answer.compose import Draft, refusal
from kb.answer.prompts import Prompts
from kb.answer.tuning import Tuning
from kb.answer.validation import validate
from kb.core.citations import source_line
from kb.core.guard import neutralise
from kb.core.records import Passage
from kb.core.text import message_text, squeeze
from kb.core.tokenizer import Tokenizer
from kb.models.llm import LlmClient

log = logging.getLogger(__name__)


def _data(text: str, spans: list[tuple[int, int]] | None = None) -> str:
    """Document text as the model reads it: instruction-like sentences (of `spans`, a passage's
    stored ones, else the splitter's) replaced, and no <<< or >>> inside that could end the
    passage's frame early."""
    return re.sub(r"<{3,}|>{3,}", lambda m: "‹" * len(m.group()) if m.group()[0] == "<" else "›" * len(m.group()),
                  neutralise(text, spans))


def format_passages(passages: list[Passage]) -> str:
    """Numbered passages; instruction-like sentences are replaced before the model sees them
    (in the source line too: a title can come from a file's first line or its name)."""
    return "\n\n".join(f"【{i}】{_data(source_line(p))}\n<<<\n{_data(p.text, p.sentence_spans)}\n>>>"
                       for i, p in enumerate(passages, 1))


_CONDENSE_LABEL = re.compile(r"^(?:改写后的问题|改写后|问题|独立问题|standalone question)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』《》"
MAX_CONDENSED = 200


def clean_condensed(reply: str, question: str) -> str:
    """The rewritten question out of a condense reply: its first non-blank line, without a
    label ("改写后的问题：") or surrounding quotes; the original question when nothing usable is left."""
    for line in reply.strip().splitlines():
        line = _CONDENSE_LABEL.sub("", line.strip()).strip()
        if line:
            if line[0] in _QUOTES and line[-1] in _QUOTES and line[0] != "《":
                line = line[1:-1].strip()
            return line if 0 < len(line) <= MAX_CONDENSED else question
    return question


def format_history(history: list[dict], limit: int = 6) -> str:
    lines = []
    for message in history[-limit:]:
        role = {"user": "用户", "assistant": "助手"}.get(message.get("role", ""), "")
        content = message_text(message.get("content"))
        if role and content.strip():
            lines.append(f"{role}：{str(content).strip()[:300]}")
    return "\n".join(lines)



class LlmStrategy:
    def __init__(self, client: LlmClient, prompts: Prompts, tokenizer: Tokenizer, tuning: Tuning = Tuning()):
        self.client = client
        self.prompts = prompts
        self._tokenizer = tokenizer
        self.tuning = tuning

    def condense(self, question: str, history: list[dict]) -> str:
        prompt = self.prompts.condense.replace("{history}", format_history(history)).replace("{question}", question)
        return clean_condensed(self.client.complete("你负责改写问题。", prompt), question)

    def _refuses(self, text: str) -> bool:
        """Whether the model's reply is the refusal text (or the start of it)."""
        squeezed, refusal_text = squeeze(text), squeeze(self.prompts.refusal)
        t = self.tuning
        return not squeezed or refusal_text[: t.refusal_prefix_chars] in squeezed or (
            len(squeezed) >= t.refusal_min_chars and squeezed.rstrip("。.") in refusal_text)

    def draft(self, question: str, passages: list[Passage]) -> Generator[str, None, Draft]:
        """Streams the model's text; returns the validated Draft. LlmError propagates (the caller falls back)."""
        system = self.prompts.system.replace("{refusal}", self.prompts.refusal)
        user = self.prompts.answer.replace("{passages}", format_passages(passages)).replace("{question}", question)
        pieces: list[str] = []
        for piece in self.client.stream(system, user):
            pieces.append(piece)
            yield piece
        text = "".join(pieces).strip()
        if self._refuses(text):
            return refusal("the LLM found no answer")
        checked = validate(text, passages, self._tokenizer, self.tuning)
        if not checked.cited or not checked.supported:
            # nothing in the answer is tied to a passage that bears it out: not shown as an answer
            why = "no valid citation" if not checked.cited else "no sentence supported by its cited passage"
            withheld = refusal(f"the LLM answer was withheld ({why})")
            withheld.flags = [f"LLM answer withheld ({why}): {text[:200]}", *checked.flags]
            return withheld
        cited = [(passages[n - 1], sentences, spans) for n, (sentences, spans) in sorted(checked.cited.items())]
        return Draft(checked.text, cited, renumbered=False, flags=checked.flags)
