"""Turning what people send (API bodies, Gradio chat messages) into library arguments.

The JSON API's request bodies are pydantic models: FastAPI validates them and documents them in
/openapi.json. `request_models(settings)` gives them with the configured limits (question length,
history size); `error_message` turns a validation error into the API's one-line Chinese message;
`JsonBodies` checks a body's size and JSON before FastAPI reads it. The chat (web/ui.py) keeps to the
same history limits with `recent_history`.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, create_model
from pydantic_core import PydanticCustomError
from starlette.responses import JSONResponse

from kb.core.places import Places
from kb.core.profile import LEVELS, STATUSES
from kb.core.settings import Settings
from kb.core.text import message_text
from kb.core.filters import Filters

K_ERROR = "k 应为 1 到 50 的整数"
ASK_EXAMPLE, SEARCH_EXAMPLE = "发明专利被侵权有保险吗？", "风险池基金"
_DEFAULTS = Settings()
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone halves of a UTF-16 pair: JSON allows "\ud800", UTF-8 cannot hold it
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


# --- field types
BAD_UNICODE = "含有无效的 Unicode 字符（孤立的代理项，如 \\ud800）"


def _valid_text(value: str) -> str:
    if _SURROGATE.search(value):
        raise PydanticCustomError("surrogate", BAD_UNICODE)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "不能为空")
    return value


def _iso_date(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    match = _DATE.fullmatch(value)
    try:
        if not match:
            raise ValueError(value)
        dt.date(int(match[1]), int(match[2] or 1), int(match[3] or 1))
    except ValueError:
        raise PydanticCustomError("date", "应为日期 YYYY-MM-DD，或其前缀 YYYY、YYYY-MM（如 2019-01-01、2019-07、2019）") from None
    return value


Text = Annotated[str, AfterValidator(_valid_text)]
Names = Text | list[Text] | None
IsoDate = Annotated[str | None, AfterValidator(_iso_date)]


# --- the request bodies
class FiltersBody(BaseModel):
    """Metadata filters; an empty or missing field does not filter."""

    doc_types: Names = Field(None, description="文件类型（答复、批复、法、条例、细则、解释、规定、办法、决定、措施、通知、意见、报告、其他）：字符串或字符串列表",
                             examples=[["答复"]])
    issuers: Names = Field(None, description="发文机关（包含即可）：字符串或字符串列表", examples=[["宁波市市场监督管理局"]])
    files: Names = Field(None, description="文件名或文档 id：字符串或字符串列表", examples=[[]])
    date_from: IsoDate = Field(None, description="成文日期自（含）：YYYY-MM-DD，或其前缀 YYYY、YYYY-MM",
                               examples=["2019-01-01"])
    date_to: IsoDate = Field(None, description="成文日期至（含）：YYYY-MM-DD，或其前缀 YYYY、YYYY-MM",
                             examples=["2019-12-31"])
    levels: list[Literal[LEVELS]] | None = Field(None, description="效力层级：法律、行政法规、地方性法规、规范性文件、答复、办事指南…",
                                                 examples=[["法律", "地方性法规"]])
    statuses: list[Literal[STATUSES]] | None = Field(None, description="状态：现行有效、已过期、已被取代、已废止、尚未施行、未知",
                                                     examples=[["现行有效"]])
    region: Text | None = Field(None, description="适用地区：只要适用于该地的文件（本地、上级地区、全国），如 宁波市",
                                examples=["宁波市"])

    def to_filters(self, places: Places | None = None) -> Filters | None:
        """The library's Filters; raises ValueError for a region that names no place."""
        names = lambda v: tuple(v) if isinstance(v, list) else ((v,) if v else ())  # noqa: E731
        region: tuple[str, ...] = ()
        if self.region:
            region = (places or Places()).normalise(self.region) or ()
            if not region:
                raise ValueError(f"filters.region: 无法识别的地名“{self.region}”")
        filters = Filters(doc_types=names(self.doc_types), issuers=names(self.issuers), files=names(self.files),
                          date_from=self.date_from, date_to=self.date_to, levels=names(self.levels),
                          statuses=names(self.statuses), region=region)
        return None if filters.empty else filters


class ContentPart(BaseModel):
    """A part of a message's content, as Gradio 6 and OpenAI send it: {"type": "text", "text": …}."""

    model_config = ConfigDict(extra="allow")
    type: str = "text"
    text: Text = ""


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: Text | list[ContentPart]

    def text(self) -> str:
        return message_text(self.model_dump()["content"])


def _history_limits(chars: int, question_chars: int):
    def check(history: list[Message]) -> list[Message]:
        for n, message in enumerate(history, 1):  # a user's message is a question: the question's limit
            if message.role == "user" and len(message.text()) > question_chars:
                raise PydanticCustomError("history_question", "第{n}条消息（用户的问题）{length}字，超过上限{limit}字",
                                          {"n": n, "length": len(message.text()), "limit": question_chars})
        total = sum(len(m.text()) for m in history)
        if total > chars:
            raise PydanticCustomError("history_chars", "共{total}字，超过上限{limit}字", {"total": total, "limit": chars})
        return history
    return check


def _question(name: str, limit: int, example: str):
    return Annotated[str, Field(min_length=1, max_length=limit, description=f"{name}，至多 {limit} 字（max_question_chars）",
                                examples=[example]), AfterValidator(_not_blank), AfterValidator(_valid_text)]


def _history(turns: int, chars: int, question_chars: int):
    return Annotated[list[Message], BeforeValidator(lambda v: [] if v is None else v), Field(
        max_length=turns, description=f"此前的对话，旧的在前：至多 {turns} 条消息（max_history_turns），"
                                      f"文字共至多 {chars} 字（max_history_chars），用户的每条至多 {question_chars} 字"
                                      f"（max_question_chars）"), AfterValidator(_history_limits(chars, question_chars))]


Question = _question("问题", _DEFAULTS.answer.max_question_chars, ASK_EXAMPLE)
Query = _question("检索内容", _DEFAULTS.answer.max_question_chars, SEARCH_EXAMPLE)
History = _history(_DEFAULTS.answer.max_history_turns, _DEFAULTS.answer.max_history_chars, _DEFAULTS.answer.max_question_chars)


class AskRequest(BaseModel):
    """POST /api/ask: a question, the conversation so far (for follow-ups), optional filters."""

    question: Question
    history: History = []
    filters: FiltersBody | None = None
    region: Text | None = Field(None, description="提问者所在地，如 宁波市、广州市南沙区：问题未提地名时按此选用适用的文件",
                                examples=["宁波市"])


class SearchRequest(BaseModel):
    """POST /api/search: a query, how many passages (k), optional filters."""

    query: Query
    k: Annotated[StrictInt, Field(ge=1, le=50, description="返回的段落数，1 到 50")] = 10
    filters: FiltersBody | None = None


def request_models(settings: Settings) -> tuple[type[AskRequest], type[SearchRequest]]:
    """AskRequest and SearchRequest with the limits of these settings."""
    limit = settings.answer.max_question_chars
    ask = create_model("AskRequest", __base__=AskRequest, __doc__=AskRequest.__doc__,
                       question=(_question("问题", limit, ASK_EXAMPLE), ...),
                       history=(_history(settings.answer.max_history_turns, settings.answer.max_history_chars, limit), []))
    search = create_model("SearchRequest", __base__=SearchRequest, __doc__=SearchRequest.__doc__,
                          query=(_question("检索内容", limit, SEARCH_EXAMPLE), ...))
    return ask, search


class ApiError(BaseModel):
    """Every error of the JSON API."""

    error: str = Field(examples=["缺少 question"])


# --- validation errors as one Chinese line
_MESSAGES = {
    "missing": "缺少该字段",
    "string_type": "应为字符串",
    "list_type": "应为列表",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "int_type": "应为整数",
    "string_too_short": "不能为空",
}
_EITHER = {"content": '应为字符串或内容片段列表 [{"type": "text", "text": "…"}]',
           **dict.fromkeys(("doc_types", "issuers", "files"), "应为字符串或字符串列表")}
_TYPE_ERRORS = {"string_type", "list_type", "model_type", "model_attributes_type", "dict_type", "int_type"}
_TAGS = {"str", "int", "list", "dict", "bool", "float", "none"}  # pydantic's names for the members of a union


def _path(loc: tuple) -> list[str | int]:
    """The fields of an error location: no "body", no union member names like "list[ContentPart]"."""
    return [p for p in loc[1:] if isinstance(p, int) or (p.isidentifier() and p not in _TAGS)]


def _dotted(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path))


def _describe(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("surrogate", "string_unicode"):  # pydantic says string_unicode where it checks a length
        return BAD_UNICODE
    if kind in ("date", "blank", "history_chars", "history_question"):
        return error["msg"]
    if kind == "literal_error":
        return f"应为 {str(ctx.get('expected', '')).replace(' or ', ' 或 ')}"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 条（收到 {ctx.get('actual_length')} 条）"
    if kind == "string_too_long":
        return f"过长（{len(error.get('input') or '')}字，上限{ctx.get('max_length')}字）"
    return _MESSAGES.get(kind, "取值无效")


def error_message(errors: list[dict]) -> tuple[int, str]:
    """(status, message) for a request body that failed validation: the most specific error, in Chinese."""
    if not errors:
        return 422, "请求无效"
    paths = [_path(tuple(e.get("loc") or ())) for e in errors]
    # the question (or query) first; else the deepest error; of equals (the members of a union), one that is
    # about the value, not its type
    chosen = max(range(len(errors)), key=lambda i: (paths[i][:1] in (["question"], ["query"]), len(paths[i]),
                                                    errors[i]["type"] not in _TYPE_ERRORS))
    error, path = errors[chosen], paths[chosen]
    if error["type"] == "json_invalid":  # (JsonBodies has parsed the body already: FastAPI will not see this)
        return 400, "请求体不是合法的 JSON"
    if not path:  # the body as a whole
        return 400, "请求体应为 JSON 对象"
    field = path[0]
    if field in ("question", "query") and len(path) == 1:
        if error["type"] == "string_too_long":
            return 422, f"{field} {_describe(error)}"
        if error["type"] not in ("surrogate", "string_unicode"):
            return 422, f"缺少 {field}"
    if field == "k":
        return 422, K_ERROR
    alternatives = sum(1 for p in paths if p == path) > 1 and error["type"] in _TYPE_ERRORS  # no member's type fits
    last = next((p for p in reversed(path) if isinstance(p, str)), field)
    message = _EITHER[last] if alternatives and last in _EITHER else _describe(error)
    return 422, f"{_dotted(path)}: {message}"


# --- the bodies as they arrive
class JsonBodies:
    """POST /api/* bodies, before FastAPI reads them: at most `limit` bytes, counted as they arrive (413
    before anything is parsed, with or without a Content-Length), JSON (400) holding an object (400).
    The body is then handed on as application/json, `{}` when empty (so a missing field is named)."""

    def __init__(self, app, limit_kb: int):
        self.app, self.limit_kb, self.limit = app, limit_kb, limit_kb * 1024

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        fail = lambda status, message: JSONResponse({"error": message}, status_code=status)(scope, receive, send)  # noqa: E731
        too_big = f"请求体过大（上限 {self.limit_kb} KB）"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await fail(413, too_big)
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if len(raw) > self.limit:
                return await fail(413, too_big)
            if not message.get("more_body"):
                break
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, RecursionError):  # not JSON, not UTF-8/16/32, or nested beyond reason
            return await fail(400, "请求体不是合法的 JSON")
        if not isinstance(data, dict):
            return await fail(400, "请求体应为 JSON 对象")
        body = raw or b"{}"
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        scope = {**scope, "headers": headers + [(b"content-type", b"application/json"),
                                                (b"content-length", str(len(body)).encode())]}
        await self.app(scope, replayed(body, receive), send)


# --- Gradio chat messages and filter boxes
def replayed(body: bytes, receive):
    """An ASGI `receive` that gives the body already read, once, then the client's further messages."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def filters_from(raw: dict | None, places: Places | None = None) -> Filters | None:
    """Filters from FiltersBody fields (the 检索 tab's boxes); raises pydantic's ValidationError for a bad
    date and ValueError for a place it does not know."""
    return FiltersBody.model_validate(raw or {}).to_filters(places)


def history_from(messages: list | None) -> list[dict]:
    """Gradio chat messages (or API history) as [{"role", "content"}] with text content."""
    out = []
    for m in messages or []:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        out.append({"role": m["role"], "content": html.unescape(message_text(m.get("content")))})  # chat text is escaped
    return out


def recent_history(history: list[dict], turns: int, chars: int, question_chars: int) -> list[dict]:
    """The most recent messages within the API's limits: at most `turns` messages, `chars` characters in all,
    a user's message cut to `question_chars` (a question that long was refused, but the chat still shows it)."""
    kept, total = [], 0
    for message in reversed(history[-turns:] if turns > 0 else []):
        text = message_text(message.get("content"))
        if message.get("role") == "user" and len(text) > question_chars:
            message, text = {**message, "content": text[:question_chars]}, text[:question_chars]
        total += len(text)
        if total > chars:
            break
        kept.append(message)
    return kept[::-1]
