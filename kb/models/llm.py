"""The LLM client: an OpenAI-compatible chat endpoint through langchain-openai.

DeepSeek, Qwen (DashScope), Ollama, vLLM and llama.cpp servers all speak this API. Every
failure — timeout, HTTP error, refused connection, malformed stream — becomes an
`LlmError` with a short Chinese reason, and the caller falls back to the extractive answer.
"""
from __future__ import annotations

from collections.abc import Iterator

from kb.core.errors import LlmError
from kb.core.settings import Settings


class LlmClient:
    """Chat completions from an OpenAI-compatible endpoint: whole replies or streamed text."""

    def __init__(self, settings: Settings):
        from langchain_openai import ChatOpenAI

        self._chat = ChatOpenAI(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key or "none", model=settings.llm_model,
            temperature=settings.llm_temperature, timeout=settings.llm_timeout, max_retries=0,
        )

    @staticmethod
    def _messages(system: str, user: str) -> list:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(system), HumanMessage(user)]

    def complete(self, system: str, user: str) -> str:
        with _translated_errors():
            return str(self._chat.invoke(self._messages(system, user)).content)

    def stream(self, system: str, user: str) -> Iterator[str]:
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
