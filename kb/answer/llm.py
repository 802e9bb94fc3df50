"""The LLM strategy: the numbered passages and the question go to the configured model with the
prompt files; its answer is validated (kb/answer/validation.py) before anyone sees it.

`condense` rewrites a follow-up into a standalone question; `draft` streams the answer and
returns a Draft (LlmError propagates: the draft stage falls back to the extractive answer);
`events` is the same stream with a `FirstToken` event when the model's reply starts.

The answer is asked for as JSON of `answer_schema` — {"sentences": [{"text", "passage"}],
"refused"} — through the server's structured output when it has it (kb/models/llm.py), else as
text with [n] after each sentence. Either way it becomes "sentence。[n]…" text, cleaned of what
small models copy from the prompt (a passage's header line, 【n】, <<< >>>, a literal "[n]"),
and checked sentence by sentence as the reply comes in: only sentences their cited passage
supports are streamed and kept; the others are dropped and listed in the flags.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Generator
from dataclasses import dataclass

from kb.answer.compose import Draft, refusal
from kb.answer.prompts import Prompts
from kb.answer.tuning import Tuning
from kb.answer.validation import Validated, claim_spans, validate
from kb.core.citations import source_line
from kb.core.guard import neutralise
from kb.core.records import Passage
from kb.core.sentences import SENTENCE_END
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



def answer_schema(passages: int) -> dict:
    """The JSON schema of a structured answer over `passages` numbered passages."""
    return {
        "type": "object",
        "properties": {
            "sentences": {"type": "array", "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "passage": {"type": "integer", "enum": list(range(1, passages + 1))}},
                "required": ["text", "passage"], "additionalProperties": False}},
            "refused": {"type": "boolean"},
        },
        "required": ["sentences", "refused"], "additionalProperties": False,
    }


_HEADER_LINE = re.compile(r"^\s*(?:【\d+】|\[\d+\])\s*《")  # "【1】《标题》（文号）第1页 · 章节": a copied passage header
_FRAME = re.compile(r"<{3,}|>{3,}")
_PLACEHOLDER = re.compile(r"\[\s*(?:n|N|编号|段落编号)\s*\]|【\s*(?:n|N|编号|段落编号)\s*】")
_JSON_SENTENCE = re.compile(
    r'\{\s*"text"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"passage"\s*:\s*(\d+)\s*\}'
    r'|\{\s*"passage"\s*:\s*(\d+)\s*,\s*"text"\s*:\s*"((?:[^"\\]|\\.)*)"\s*\}')
_MARKERS_ONLY = re.compile(r"^[\s\[\]【】0-9,，、\-–~～]*$")


def sanitise(text: str, passages: list[Passage]) -> str:
    """An answer without what a model copies from the prompt: header lines of passages, passage
    frames, literal placeholders. Lines that only restate a passage's source line go too."""
    headers = [squeeze(source_line(p)) for p in passages]
    kept = []
    for line in text.split("\n"):
        if _HEADER_LINE.match(line):
            continue
        line = _PLACEHOLDER.sub("", _FRAME.sub("", line))
        bare = squeeze(re.sub(r"\[\d+\]|【\d+】", "", line)).rstrip(SENTENCE_END + ".")
        if len(bare) >= 6 and any(bare in h for h in headers):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def echoes_question(claim: str, question: str) -> bool:
    """A question (it ends in ？), or a piece of the asker's own question: small models repeat it."""
    bare = squeeze(_strip_markers(claim)).rstrip("。.!！")
    if bare.endswith(("？", "?")):
        return True
    asked = squeeze(question)
    return len(bare) >= 4 and bool(asked) and bare.rstrip("？?") in asked


class SentenceChecker:
    """Validates the reply sentence by sentence while it streams: `feed` the reply so far, get the
    newly completed sentences that hold; `finish` checks the rest. Sentences are `Validated`."""

    def __init__(self, passages: list[Passage], tokenizer: Tokenizer, tuning: Tuning, structured: bool,
                 question: str = ""):
        self.passages, self._tokenizer, self.tuning = passages, tokenizer, tuning
        self.question = question  # a sentence that only repeats it answers nothing
        self.structured = structured  # JSON was asked for; decided by the reply's first character
        self.mode: str | None = None  # "json" or "text", once the reply has started
        self._pos = 0  # of the reply, consumed up to here
        self.kept: list[Validated] = []
        self.dropped: list[Validated] = []
        self.refused = False

    def _check(self, claim: str) -> Validated | None:
        claim = sanitise(claim, self.passages)
        if len(squeeze(_strip_markers(claim))) < 4:
            return None  # markers only, a header, punctuation
        checked = validate(claim, self.passages, self._tokenizer, self.tuning)
        if echoes_question(claim, self.question):  # "南沙有额外奖励吗？[2]": its words are in the passage too
            checked.supported, checked.unsupported, checked.cited = 0, checked.unsupported + 1, {}
            checked.flags.append(f"repeats the question, not an answer: {_strip_markers(claim)}")
        if checked.supported and not checked.unsupported:
            self.kept.append(checked)
            return checked
        self.dropped.append(checked)
        return None

    def _claims(self, reply: str, final: bool) -> list[str]:
        """The completed claims of reply[_pos:] (all of them when `final`); advances _pos."""
        if self.mode is None:
            head = reply.lstrip()
            if not head:
                return []
            self.mode = "json" if self.structured and head[0] in "{`" else "text"
        out = []
        if self.mode == "json":
            for match in _JSON_SENTENCE.finditer(reply, self._pos):
                text, n = (match.group(1), match.group(2)) if match.group(1) is not None else (match.group(4), match.group(3))
                try:
                    text = json.loads(f'"{text}"')
                except json.JSONDecodeError:
                    continue
                text = _strip_markers(text).strip()
                if text:
                    out.append(text + ("" if text[-1] in SENTENCE_END + "）)”" else "。") + f"[{n}]")
                self._pos = match.end()
            if final and re.search(r'"refused"\s*:\s*true', reply):
                self.refused = True
            return out
        rest = reply[self._pos:]
        spans = claim_spans(rest)
        complete = len(spans) if final else len(spans) - 1
        if not final and spans and _MARKERS_ONLY.match(rest[spans[-1][0]:spans[-1][1]]):
            complete -= 1  # "甲。[1" — the marker of the sentence before may still be coming
        for start, end in spans[: max(complete, 0)]:
            out.append(rest[start:end])
        if complete > 0:
            self._pos += spans[complete - 1][1]
        return out

    def feed(self, reply: str) -> list[Validated]:
        return [c for c in (self._check(claim) for claim in self._claims(reply, final=False)) if c is not None]

    def finish(self, reply: str) -> list[Validated]:
        return [c for c in (self._check(claim) for claim in self._claims(reply, final=True)) if c is not None]


def _strip_markers(text: str) -> str:
    return re.sub(r"\s*(?:\[\s*[\d,，、\-\s]*\]|【\s*[\d,，、\-\s]*】)", "", text)


@dataclass(frozen=True)
class FirstToken:
    """The model's reply started, `ms` after it was asked (`LlmStrategy.events`)."""

    ms: float


class LlmStrategy:
    def __init__(self, client: LlmClient, prompts: Prompts, tokenizer: Tokenizer, tuning: Tuning = Tuning()):
        self.client = client
        self.prompts = prompts
        self._tokenizer = tokenizer
        self.tuning = tuning

    def condense(self, question: str, history: list[dict]) -> str:
        prompt = self.prompts.condense.replace("{history}", format_history(history)).replace("{question}", question)
        return clean_condensed(self.client.complete("你负责改写问题。", prompt), question)

    def keeps_terms(self, question: str, condensed: str) -> bool:
        """Whether a condensed question keeps every content term of the follow-up ("那保险呢？" → 保险)."""
        squeezed = squeeze(condensed)
        return all(squeeze(term) in squeezed for term in set(self._tokenizer.tokens(question)))

    def _refuses(self, text: str) -> bool:
        """Whether the model's reply is the refusal text (or the start of it)."""
        squeezed, refusal_text = squeeze(text), squeeze(self.prompts.refusal)
        t = self.tuning
        return not squeezed or refusal_text[: t.refusal_prefix_chars] in squeezed or (
            len(squeezed) >= t.refusal_min_chars and squeezed.rstrip("。.") in refusal_text)

    def draft(self, question: str, passages: list[Passage]) -> Generator[str, None, Draft]:
        """Streams the sentences that hold, each once validated; returns the Draft of them. A reply
        with none is withheld (a refused Draft with `withheld` set); LlmError propagates."""
        events = self.events(question, passages)
        try:
            while True:
                try:
                    event = next(events)
                except StopIteration as done:
                    return done.value
                if isinstance(event, str):
                    yield event
        finally:
            events.close()  # the caller stopped reading: close the model's stream too

    def events(self, question: str, passages: list[Passage]) -> Generator[str | FirstToken, None, Draft]:
        """`draft`'s stream, with one `FirstToken` when the model's reply starts."""
        structured = bool(getattr(self.client, "uses_schema", lambda: False)())
        system = self.prompts.system.replace("{refusal}", self.prompts.refusal)
        numbered = format_passages(passages)
        text_user = self.prompts.answer.replace("{passages}", numbered).replace("{question}", question)
        user = self.prompts.answer_json.replace("{passages}", numbered).replace("{question}", question) \
            if structured else text_user
        checker = SentenceChecker(passages, self._tokenizer, self.tuning, structured, question)
        reply = ""
        started = time.perf_counter()
        pieces = self.client.stream(system, user, answer_schema(len(passages)), text_user) if structured else \
            self.client.stream(system, user)
        for piece in pieces:
            if not reply:
                yield FirstToken((time.perf_counter() - started) * 1000)
            reply += piece
            for checked in checker.feed(reply):
                yield checked.text
        for checked in checker.finish(reply):
            yield checked.text
        flags = [f for c in checker.dropped for f in c.flags] + [f for c in checker.kept for f in c.flags]
        if not checker.kept:
            said = " ".join(_strip_markers(c.text) for c in checker.dropped)
            if checker.refused or self._refuses(sanitise(said if checker.mode == "json" else reply, passages)):
                draft = refusal("the LLM found no answer")
                draft.flags = flags
                return draft
            why = ("no sentence supported by its cited passage" if any(c.marked for c in checker.dropped)
                   else "no valid citation")
            withheld = refusal(f"the LLM answer was withheld ({why})")
            withheld.withheld = True
            withheld.flags = [f"LLM answer withheld ({why}): {reply.strip()[:200]}", *flags]
            withheld.dropped = len(checker.dropped)
            return withheld
        cited: dict[int, tuple[list[int], list[tuple[int, int]]]] = {}
        for checked in checker.kept:
            for n, (sentences, spans) in checked.cited.items():
                entry = cited.setdefault(n, ([], []))
                for index, span in zip(sentences, spans):
                    if index not in entry[0]:
                        entry[0].append(index)
                        entry[1].append(span)
        text = "".join(c.text for c in checker.kept)
        draft = Draft(text, [(passages[n - 1], s, sp) for n, (s, sp) in sorted(cited.items())], renumbered=False,
                      flags=flags)
        draft.supported, draft.dropped = len(checker.kept), len(checker.dropped)
        return draft
