"""An OpenAI-compatible chat API: POST /v1/chat/completions (streamed as server-sent events or not) and
GET /v1/models, over the same KnowledgeService as /api/ask, so any OpenAI client (the `openai` package,
LangChain, chat front-ends) gets the same answer and citations as /api/ask (docs/api.md).

- `messages` become the question (the last user message) and the history (the earlier user and
  assistant messages, kept within the chat's limits like the chat: `recent_history`); system and tool
  messages are ignored: answers come from the documents only. Unknown fields are ignored; a field of
  the wrong shape is a 400 in OpenAI's error format `{"error": {"message", "type", "param", "code"}}`.
- The content is /api/ask's `answer` (the body with its [n] markers, then a 来源 block); the whole
  /api/ask JSON (citations, notices, refused…) rides along in the extra field `ipkb`: of the response,
  and of a stream's last chunk. While an LLM writes, a stream's chunks carry its draft in `ipkb.draft`
  (what the chat shows meanwhile); `content` carries only the checked answer, which may differ.
- Keys: `Authorization: Bearer <one of api_keys>`; without keys the API is off unless openai_api_open.
  Each key (each client address, without a key) may ask api_asks_per_minute questions a minute.

The chat widget (web/widget.py) streams through `ChatCall` too, with its own gate (allowed origins).
"""
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from kb.core.errors import KbError
from kb.core.filters import Filters
from kb.core.records import Answer
from kb.core.settings import Settings
from kb.core.text import message_text
from web.middleware import ClientWindow
from web.requests import FiltersBody, Text, error_message, recent_history
from web.service import KnowledgeService

MODEL = "ipkb"  # the knowledge base this app serves, as /v1/models lists it
MODELS = {MODEL: "IPKB 知识产权政策知识库：依据本局政策文件作答，注明出处"}
OWNED_BY = "ipkb"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}  # nginx: pass each event on at once
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenAiError(Exception):
    """An error as OpenAI's API gives it."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    type: str = "invalid_request_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


# --- the request body
class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: Text | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[_Part] | None = None


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class _Extension(BaseModel):
    """`ipkb`: what /api/ask takes besides the question (OpenAI clients send it as an extra body field)."""

    model_config = ConfigDict(extra="ignore")
    region: Text | None = None
    filters: FiltersBody | None = None


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: Text = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: _StreamOptions | None = None
    n: StrictInt | None = None
    ipkb: _Extension | None = None


@dataclass(frozen=True)
class ChatCall:
    """What a chat request asks: the question, its history, and how to answer."""

    model: str
    question: str
    history: list[dict]
    filters: Filters | None
    region: str
    stream: bool
    include_usage: bool

    @property
    def prompt_chars(self) -> int:
        return len(self.question) + sum(len(m["content"]) for m in self.history)


_TAGS = {"str", "int", "list", "dict", "bool", "float", "none"}  # pydantic's names of a union's members


def _param(loc: tuple) -> str | None:
    """OpenAI's `param` of an error location: messages[0].role."""
    fields = [p for p in loc if isinstance(p, int) or (p.isidentifier() and p not in _TAGS)]
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(fields)) or None


def chat_call(data: object, settings: Settings, service: KnowledgeService, default_model: str | None = None) -> ChatCall:
    """The ChatCall of a decoded JSON body; raises OpenAiError (400, or 404 for an unknown model)."""
    if not isinstance(data, dict):
        raise OpenAiError(400, "请求体应为 JSON 对象")
    if default_model is not None:
        data = {"model": default_model, **data}
    try:
        body = ChatBody.model_validate(data)
    except ValidationError as exc:
        errors = list(exc.errors())
        _, message = error_message([{**e, "loc": ("body", *e["loc"])} for e in errors])  # the chat API's words
        first = max(errors, key=lambda e: len(e["loc"]))
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
        raise OpenAiError(400, message, _param(first["loc"]), code) from None
    if body.model not in MODELS:
        raise OpenAiError(404, f"模型 {body.model!r} 不存在：可用的模型见 GET /v1/models（{', '.join(MODELS)}）",
                          "model", "model_not_found")
    if body.n not in (None, 1):
        raise OpenAiError(400, "n 只能为 1：每个问题一个答案", "n", "invalid_value")
    turns: list[tuple[int, dict]] = []  # (index in messages, the message as the chat's history has it)
    for i, message in enumerate(body.messages):
        for j, part in enumerate(message.content if isinstance(message.content, list) else []):
            if part.type != "text" or part.text is None:
                raise OpenAiError(400, "只接受文字内容（type 为 text）", f"messages[{i}].content[{j}]", "invalid_value")
        if message.role in ("user", "assistant"):  # system and tool messages cannot change what is answered
            turns.append((i, {"role": message.role, "content": message_text(message.model_dump()["content"])}))
    if not turns or turns[-1][1]["role"] != "user":
        raise OpenAiError(400, "最后一条消息应为用户的问题（role 为 user）", "messages", "invalid_value")
    at, question, limits = turns[-1][0], turns[-1][1]["content"].strip(), settings.answer
    if not question:
        raise OpenAiError(400, "问题不能为空", f"messages[{at}].content", "invalid_value")
    if len(question) > limits.max_question_chars:
        raise OpenAiError(400, f"问题过长（{len(question)}字，上限{limits.max_question_chars}字）",
                          f"messages[{at}].content", "string_above_max_length")
    # as the chat does: the most recent messages within the limits (a client sends the whole conversation)
    earlier = [m for _, m in turns[:-1] if m["content"].strip()]
    history = recent_history(earlier, limits.max_history_turns, limits.max_history_chars, limits.max_question_chars)
    extension = body.ipkb or _Extension()
    places = service.places
    try:
        filters = extension.filters.to_filters(places) if extension.filters else None
    except ValueError as exc:
        raise OpenAiError(400, f"ipkb.{exc}", "ipkb.filters", "invalid_value") from None
    if extension.region and not places.normalise(extension.region):
        raise OpenAiError(400, f"无法识别的地名“{extension.region}”", "ipkb.region", "invalid_value")
    return ChatCall(body.model, question, history, filters, extension.region or "", body.stream,
                    bool(body.stream_options and body.stream_options.include_usage))


async def read_json(request: Request, limit_kb: int) -> object:
    """The request's JSON body, at most `limit_kb` (413), counted as it arrives; 400 when not JSON."""
    limit, raw = limit_kb * 1024, b""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OpenAiError(413, f"请求体过大（上限 {limit_kb} KB）", code="request_too_large")
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise OpenAiError(413, f"请求体过大（上限 {limit_kb} KB）", code="request_too_large")
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise OpenAiError(400, "请求体不是合法的 JSON", code="invalid_json") from None


# --- the responses (pure)
def usage(call: ChatCall, answer: Answer) -> dict:
    """Characters, not tokens: IPKB has no tokenizer of the client's model (a Chinese character is about one)."""
    completion = len(answer.answer)
    return {"prompt_tokens": call.prompt_chars, "completion_tokens": completion,
            "total_tokens": call.prompt_chars + completion}


def completion(call: ChatCall, answer: Answer, completion_id: str, created: int) -> dict:
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage(call, answer), "system_fingerprint": None, "ipkb": answer.to_json()}


def chunk(completion_id: str, created: int, model: str, delta: dict, finish: str | None = None,
          extra: dict | None = None) -> dict:
    out = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
           "system_fingerprint": None,
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return {**out, "ipkb": extra} if extra is not None else out


def sse(data: dict) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
_PIECE = re.compile(r"[^。！？；\n]*[。！？；\n]+|[^。！？；\n]+")


def pieces(text: str, longest: int = 40) -> list[str]:
    """The answer in small pieces for a stream: sentence by sentence, none over `longest` characters."""
    return [s[i:i + longest] for s in _PIECE.findall(text) for i in range(0, len(s), longest)]


def events(service: KnowledgeService, call: ChatCall, completion_id: str, created: int) -> Iterator[bytes]:
    """The server-sent events of a streamed answer (a sync generator: Starlette runs each step in a thread)."""
    say = lambda delta, finish=None, extra=None: sse(chunk(completion_id, created, call.model, delta, finish, extra))  # noqa: E731
    yield say({"role": "assistant", "content": ""})
    answer = None
    try:
        for event in service.stream(call.question, call.history, call.filters, call.region):
            if isinstance(event, Answer):
                answer = event
            elif event:
                yield say({}, extra={"draft": event})  # the LLM writing: shown by the widget, replaced by the answer
    except Exception as exc:  # noqa: BLE001 - the stream has begun: the error is told in it, as OpenAI does
        log.exception("streamed answer failed")
        message = str(exc) if isinstance(exc, (KbError, ValueError)) else "答案生成失败，请稍后再试"
        yield sse(OpenAiError(500, message, type="server_error", code="answer_failed").body())
        yield DONE
        return
    assert answer is not None
    for piece in pieces(answer.answer):
        yield say({"content": piece})
    yield say({}, "stop", answer.to_json())
    if call.include_usage:
        yield sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": call.model,
                   "system_fingerprint": None, "choices": [], "usage": usage(call, answer)})
    yield DONE


async def respond(service: KnowledgeService, call: ChatCall, headers: dict[str, str] | None = None):
    """The answer to a ChatCall: streamed events, or one chat.completion."""
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if call.stream:
        return StreamingResponse(events(service, call, completion_id, created), media_type="text/event-stream",
                                 headers={**SSE_HEADERS, **(headers or {})})
    import anyio

    try:
        answer = await anyio.to_thread.run_sync(
            lambda: service.ask(call.question, call.history, call.filters, call.region))
    except (KbError, ValueError) as exc:
        return OpenAiError(400, str(exc), code="invalid_value").response(headers)
    return JSONResponse(completion(call, answer, completion_id, created), headers=headers)


# --- who may ask
class Keys:
    """The API keys and each one's budget of questions a minute."""

    def __init__(self, settings: Settings, clock=time.time):
        web = settings.web
        self.keys = [k.encode() for k in web.api_keys]
        self.open = web.openai_api_open
        self.window = ClientWindow(web.api_asks_per_minute, 60.0, clock)

    def caller(self, request: Request) -> str:
        """Who is asking ("key:<digest>", or "addr:<address>" when open and no key is sent); raises OpenAiError."""
        if not self.keys and not self.open:
            raise OpenAiError(403, "OpenAI 兼容接口未开启：管理员需设置 api_keys（或 openai_api_open = true）",
                              code="api_disabled", type="permission_error")
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            if self.open:
                return f"addr:{request.client.host if request.client else ''}"
            raise OpenAiError(401, "缺少 API 密钥：请在请求头 Authorization 中提供 Bearer <密钥>", code="invalid_api_key")
        given_bytes = given.strip().encode()
        # every key compared in full: the time taken says nothing about which one, or how much of it, matched
        if not any([hmac.compare_digest(given_bytes, key) for key in self.keys]):
            raise OpenAiError(401, "API 密钥不正确", code="invalid_api_key")
        return "key:" + hashlib.sha256(given_bytes).hexdigest()[:16]

    def take(self, caller: str) -> None:
        if not self.window.take(caller):
            raise OpenAiError(429, f"提问过于频繁：每个密钥每分钟最多 {self.window.limit:g} 次，请稍后再试",
                              code="rate_limit_exceeded", type="requests")


def add_openai_routes(api: FastAPI, service: KnowledgeService, settings: Settings) -> None:
    keys = Keys(settings)
    known = {"/v1/chat/completions": "POST", "/v1/models": "GET"}

    @api.post("/v1/chat/completions", include_in_schema=False)
    async def chat_completions(request: Request):
        try:
            keys.take(keys.caller(request))
            call = chat_call(await read_json(request, settings.web.max_body_kb), settings, service)
        except OpenAiError as error:
            return error.response()
        return await respond(service, call)

    @api.get("/v1/models", include_in_schema=False)
    async def models(request: Request):
        try:
            keys.caller(request)
        except OpenAiError as error:
            return error.response()
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": OWNED_BY,
                                            "description": text} for name, text in MODELS.items()]}

    @api.get("/v1/models/{name}", include_in_schema=False)
    async def model(name: str, request: Request):
        try:
            keys.caller(request)
        except OpenAiError as error:
            return error.response()
        if name not in MODELS:
            return OpenAiError(404, f"模型 {name!r} 不存在", "model", "model_not_found").response()
        return {"id": name, "object": "model", "created": 0, "owned_by": OWNED_BY, "description": MODELS[name]}

    @api.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def elsewhere(rest: str, request: Request):
        path = f"/v1/{rest}"
        if path in known:  # a known path, another method
            return OpenAiError(405, f"{path} 只接受 {known[path]} 请求", code="method_not_allowed").response(
                {"allow": known[path]})
        return OpenAiError(404, f"没有这个接口：{path}（支持 /v1/chat/completions 与 /v1/models）",
                           code="unknown_url").response()
