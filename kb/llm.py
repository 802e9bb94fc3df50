"""The LLM answerer's client: an OpenAI-compatible chat endpoint through langchain-openai.

DeepSeek, Qwen (DashScope), Ollama, vLLM and llama.cpp servers all speak this API. Every
failure — timeout, HTTP error, refused connection, malformed stream — becomes an
`LlmError` with a short Chinese reason, and the caller falls back to the extractive answer.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from kb.citations import source_line
from kb.guard import neutralise
from kb.prompts import Prompts
from kb.records import Passage
from kb.settings import Settings


class LlmError(RuntimeError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # shown to users, e.g. "超时"


def _data(text: str) -> str:
    """Document text as the model reads it: instruction-like sentences replaced, and no <<< or >>>
    inside that could end the passage's frame early."""
    return re.sub(r"<{3,}|>{3,}", lambda m: "‹" * len(m.group()) if m.group()[0] == "<" else "›" * len(m.group()),
                  neutralise(text))


def format_passages(passages: list[Passage]) -> str:
    """Numbered passages; instruction-like sentences are replaced before the model sees them
    (in the source line too: a title can come from a file's first line or its name)."""
    return "\n\n".join(f"【{i}】{_data(source_line(p))}\n<<<\n{_data(p.text)}\n>>>" for i, p in enumerate(passages, 1))


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
        content = message.get("content")
        if isinstance(content, list):  # Gradio 6 content parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        if role and content:
            lines.append(f"{role}：{str(content).strip()[:300]}")
    return "\n".join(lines)


class LlmClient:
    def __init__(self, settings: Settings, prompts: Prompts):
        from langchain_openai import ChatOpenAI

        self.prompts = prompts
        self._chat = ChatOpenAI(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key or "none", model=settings.llm_model,
            temperature=settings.llm_temperature, timeout=settings.llm_timeout, max_retries=0,
        )

    def _messages(self, system: str, user: str) -> list:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(system), HumanMessage(user)]

    def condense(self, question: str, history: list[dict]) -> str:
        prompt = self.prompts.condense.replace("{history}", format_history(history)).replace("{question}", question)
        with _translated_errors():
            reply = self._chat.invoke(self._messages("你负责改写问题。", prompt))
        return clean_condensed(str(reply.content), question)

    def stream_answer(self, question: str, passages: list[Passage]) -> Iterator[str]:
        system = self.prompts.system.replace("{refusal}", self.prompts.refusal)
        user = self.prompts.answer.replace("{passages}", format_passages(passages)).replace("{question}", question)
        with _translated_errors():
            for chunk in self._chat.stream(self._messages(system, user)):
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content


class _translated_errors:
    """Turn openai/httpx errors into LlmError with a reason people understand."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (LlmError, GeneratorExit)):
            return False
        import openai

        if isinstance(exc, openai.APITimeoutError):
            raise LlmError("超时", str(exc)) from None
        if isinstance(exc, openai.APIConnectionError):
            raise LlmError("无法连接", str(exc)) from None
        if isinstance(exc, openai.APIStatusError):
            raise LlmError(f"服务返回错误 {exc.status_code}", str(exc)[:200]) from None
        if isinstance(exc, Exception):
            raise LlmError("返回内容无法解析", f"{type(exc).__name__}: {exc}"[:200]) from None
        return False
