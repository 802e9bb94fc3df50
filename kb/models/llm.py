"""The LLM client: an OpenAI-compatible chat endpoint (the `openai` client langchain-openai is built on).

DeepSeek, Qwen (DashScope), Ollama, vLLM and llama.cpp servers all speak this API; with
`llm_gguf` set, llama.cpp's server runs inside this process (kb/models/local_llm.py). Every
failure — timeout, HTTP error, refused connection, malformed stream — becomes an `LlmError`
with a short Chinese reason, and the caller falls back to the extractive answer.

Two deadlines: the first piece of text must come within `llm_first_token_timeout` (a CPU model
reads a 1,000-token prompt for 20–30 s before it writes anything), the whole answer within
`llm_timeout`. When either passes, or the caller stops reading, the stream is closed: the
server sees the connection go and stops generating (llama.cpp does), instead of computing an
answer nobody will read while the next question waits.

Structured output (`llm_structured`): "json_schema" sends OpenAI's `response_format` with the
given JSON schema; "auto" does too, and after a 400/422 answer naming it (a server without
structured output) retries as text and never sends it again to that endpoint in this process;
"off" never sends it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from kb.core.errors import LlmError
from kb.core.settings import Settings

log = logging.getLogger(__name__)

# endpoints (base_url, model) that rejected response_format: text for the rest of the process
_NO_SCHEMA: set[tuple[str, str]] = set()
_NO_SCHEMA_LOCK = threading.Lock()


class LlmClient:
    """Chat completions from an OpenAI-compatible endpoint: whole replies or streamed text."""

    def __init__(self, settings: Settings):
        import openai

        base_url, model = settings.llm.llm_base_url, settings.llm.llm_model
        if settings.llm.llm_gguf:
            from kb.models.local_llm import local_server

            server = local_server(settings)
            base_url, model = server.base_url, model or server.model
        self.base_url, self.model = base_url, model
        self.structured = settings.llm.llm_structured  # one of LlmStructured: checked when the settings were read
        self.temperature = settings.llm.llm_temperature
        self.max_tokens = settings.llm.llm_max_tokens
        self.timeout = settings.llm.llm_timeout
        self.first_token_timeout = min(settings.llm.llm_first_token_timeout, settings.llm.llm_timeout)
        # the read timeout bounds each wait for bytes: the first one is the wait for the first token
        self._client = openai.OpenAI(
            base_url=base_url, api_key=settings.llm.llm_api_key or "none", max_retries=0,
            # openai's own Timeout: the HTTP library under openai changes between releases (httpx, httpx2)
            timeout=openai.Timeout(self.first_token_timeout, connect=min(10.0, self.first_token_timeout)),
        )

    # --- structured output
    def uses_schema(self) -> bool:
        if self.structured == "off":
            return False
        with _NO_SCHEMA_LOCK:
            return (self.base_url, self.model) not in _NO_SCHEMA

    def _give_up_schema(self) -> None:
        with _NO_SCHEMA_LOCK:
            _NO_SCHEMA.add((self.base_url, self.model))

    # --- calls
    def complete(self, system: str, user: str) -> str:
        return "".join(self.stream(system, user))

    def stream(self, system: str, user: str, schema: dict | None = None, text_user: str | None = None) -> Iterator[str]:
        """The reply's text as it comes. With `schema` (and structured output on), the reply is JSON
        of that schema; a server that rejects it (mode "auto") is asked again as text, with
        `text_user` (the text-format prompt) when given."""
        if schema is not None and self.uses_schema():
            try:
                yield from self._stream(system, user, schema, retry_as_text=self.structured == "auto")
                return
            except _SchemaRejected:
                log.warning("%s rejected response_format json_schema: text from now on", self.base_url)
                self._give_up_schema()
                user = text_user or user
        yield from self._stream(system, user, None, retry_as_text=False)

    def _stream(self, system: str, user: str, schema: dict | None, retry_as_text: bool) -> Iterator[str]:
        import openai

        extra = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "answer", "strict": True, "schema": schema}}
        if self.max_tokens:
            extra["max_tokens"] = self.max_tokens
        start = time.monotonic()
        deadline = start + self.timeout
        stream = None
        with _translated_errors():
            try:
                stream = self._client.chat.completions.create(
                    model=self.model, messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    temperature=self.temperature, stream=True, **extra)
            except openai.APIStatusError as exc:
                if schema is not None and retry_as_text and exc.status_code in (400, 422, 501):
                    raise _SchemaRejected() from None
                raise
            try:
                for chunk in stream:
                    if time.monotonic() > deadline:
                        raise LlmError("超时", f"no complete answer within {self.timeout:.0f} s")
                    if not chunk.choices:
                        continue
                    piece = chunk.choices[0].delta.content
                    if piece:
                        yield piece
            finally:
                stream.close()  # on a timeout or when the caller stops reading: the server stops generating


class _SchemaRejected(Exception):
    pass


class _translated_errors:
    """Turn openai/httpx errors into LlmError with a reason people understand."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (LlmError, GeneratorExit, _SchemaRejected)):
            return False
        import openai

        if isinstance(exc, openai.APITimeoutError):
            raise LlmError("超时", str(exc)) from None
        if isinstance(exc, openai.APIConnectionError):
            if _is_timeout(exc.__cause__):
                raise LlmError("超时", str(exc)) from None
            raise LlmError("无法连接", str(exc)) from None
        if isinstance(exc, openai.APIStatusError):
            raise LlmError(f"服务返回错误 {exc.status_code}", str(exc)[:200]) from None
        if _is_timeout(exc):  # a read timeout mid-stream reaches us unwrapped
            raise LlmError("超时", str(exc)) from None
        if isinstance(exc, Exception):
            raise LlmError("返回内容无法解析", f"{type(exc).__name__}: {exc}"[:200]) from None
        return False


def _is_timeout(exc: BaseException | None) -> bool:
    """A timeout of whichever HTTP library openai runs on (httpx's and httpx2's share the class name)."""
    return exc is not None and any(k.__name__ == "TimeoutException" for k in type(exc).__mro__)
