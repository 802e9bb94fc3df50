"""The JSON API's request models, their Chinese error messages, the body guard and the chat-history
limits (web/requests.py, web/api.py's JsonBodies), without a knowledge base: fast."""
from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from kb.core.filters import Filters
from kb.core.settings import Settings, load_settings
from web.requests import (
    BAD_UNICODE,
    AskRequest,
    JsonBodies,
    error_message,
    filters_from,
    recent_history,
    request_models,
)

SMALL = Settings().replace(max_question_chars=10, max_history_turns=3, max_history_chars=20)
Ask, Search = request_models(SMALL)


def problem(model, body) -> tuple[int, str]:
    """What the API answers for this body: (status, message)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    # FastAPI reports body errors under ("body", …)
    return error_message([{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()])


def user(text) -> dict:
    return {"role": "user", "content": text}


# --- the models
def test_defaults_follow_the_settings():
    assert Settings().answer.max_history_turns == 20 and Settings().answer.max_history_chars == 4000
    env = {"IPKB_MAX_HISTORY_TURNS": "6", "IPKB_MAX_HISTORY_CHARS": "900"}
    settings = load_settings(env, config_file=None)
    assert (settings.answer.max_history_turns, settings.answer.max_history_chars) == (6, 900)
    assert AskRequest.model_fields["history"].metadata[-2].max_length == 20  # the module's models: default limits
    body = Ask.model_validate({"question": "保险", "history": [user("专利质押？"), {"role": "assistant", "content": [
        {"type": "text", "text": "风险池。"}]}], "filters": {"doc_types": "答复", "date_from": "2019"}})
    assert [m.text() for m in body.history] == ["专利质押？", "风险池。"]
    assert body.filters.to_filters() == Filters(doc_types=("答复",), date_from="2019")
    assert Search.model_validate({"query": "保险"}).k == 10
    assert Ask.model_validate({"question": "保险", "history": None, "filters": None}).history == []
    assert Ask.model_validate({"question": "保险", "filters": {}}).filters.to_filters() is None


@pytest.mark.parametrize("body, expected", [
    ({}, (422, "缺少 question")),
    ({"question": "  "}, (422, "缺少 question")),
    ({"question": ""}, (422, "缺少 question")),
    ({"question": 42}, (422, "缺少 question")),
    ({"question": ["保险"]}, (422, "缺少 question")),
    ({"question": "专" * 11}, (422, "question 过长（11字，上限10字）")),
    ({"question": "保险\ud800"}, (422, f"question: {BAD_UNICODE}")),
    ({"question": "q", "history": 5}, (422, "history: 应为列表")),
    ({"question": "q", "history": "专利质押？"}, (422, "history: 应为列表")),
    ({"question": "q", "history": [5]}, (422, "history[0]: 应为 JSON 对象")),
    ({"question": "q", "history": [{"role": "system", "content": "x"}]}, (422, "history[0].role: 应为 'user' 或 'assistant'")),
    ({"question": "q", "history": [{"role": "user"}]}, (422, "history[0].content: 缺少该字段")),
    ({"question": "q", "history": [user(5)]},
     (422, 'history[0].content: 应为字符串或内容片段列表 [{"type": "text", "text": "…"}]')),
    ({"question": "q", "history": [user([{"text": 5}])]}, (422, "history[0].content[0].text: 应为字符串")),
    ({"question": "q", "history": [user([{"text": None}])]}, (422, "history[0].content[0].text: 应为字符串")),
    ({"question": "q", "history": [user("ok"), user("\udc00")]}, (422, f"history[1].content: {BAD_UNICODE}")),
    ({"question": "q", "history": [user("x")] * 4}, (422, "history: 最多 3 条（收到 4 条）")),
    ({"question": "q", "history": [{"role": "assistant", "content": "x" * 11}, user("y" * 10)]},
     (422, "history: 共21字，超过上限20字")),
    ({"question": "q", "history": [user("x"), user("y" * 11)]}, (422, "history: 第2条消息（用户的问题）11字，超过上限10字")),
    ({"question": "q", "history": [user([{"text": "y" * 6}, {"text": "y" * 6}])]},
     (422, "history: 第1条消息（用户的问题）13字，超过上限10字")),  # parts joined with a space
    ({"question": "q", "filters": "答复"}, (422, "filters: 应为 JSON 对象")),
    ({"question": "q", "filters": {"files": 7}}, (422, "filters.files: 应为字符串或字符串列表")),
    ({"question": "q", "filters": {"doc_types": [1]}}, (422, "filters.doc_types[0]: 应为字符串")),
    ({"question": "q", "filters": {"issuers": ["宁波\ud800"]}}, (422, f"filters.issuers[0]: {BAD_UNICODE}")),
    ({"question": "q", "filters": {"date_from": 2019}}, (422, "filters.date_from: 应为字符串")),
])
def test_ask_errors_in_chinese(body, expected):
    assert problem(Ask, body) == expected


@pytest.mark.parametrize("date", ["not-a-date", "2019年", "2019-13-40", "2019-02-30", "2019-7-1", "19", "2019-00",
                                  "2019/07/22", "2019-07-22T00:00"])
@pytest.mark.parametrize("name", ["date_from", "date_to"])
def test_dates_must_be_iso_dates_or_their_prefixes(name, date):
    status, message = problem(Ask, {"question": "q", "filters": {name: date}})
    assert status == 422 and message.startswith(f"filters.{name}: 应为日期 YYYY-MM-DD")
    with pytest.raises(ValidationError):
        filters_from({name: date})  # the 检索 tab's boxes: the same rule


@pytest.mark.parametrize("date", ["2019", "2019-07", "2019-07-22", "2020-02-29", " 2019-07 ", ""])
def test_iso_dates_and_prefixes_are_accepted(date):
    filters = filters_from({"date_from": date, "date_to": date})
    assert filters is None if not date else filters == Filters(date_from=date.strip(), date_to=date.strip())


# The sample letter's date, 2019-07-22, against the date boxes: a prefix means the whole year or month.
# (The one table of the date filter: the API, the UI and both stores apply this Filters.admits.)
@pytest.mark.parametrize("boxes, admitted", [
    ({"date_from": "2019"}, True),
    ({"date_from": "2019-07", "date_to": "2019-07"}, True),
    ({"date_to": "2019"}, True),
    ({"date_from": "2019-07-22", "date_to": "2019-07-22"}, True),
    ({"date_from": "2019-01-01", "date_to": "2019-12-31"}, True),
    ({"date_from": "2019-07-23"}, False),
    ({"date_from": "2019-08"}, False),
    ({"date_from": "2020-01-01"}, False),
    ({"date_to": "2019-07-21"}, False),
    ({"date_to": "2018"}, False),
])
def test_a_date_or_its_prefix_filters_documents_by_their_date(boxes, admitted):
    from dataclasses import replace

    from kb.core.records import Document, DocumentMeta

    meta = DocumentMeta(title="关于第130号提案的答复", doc_number="甬市监函〔2019〕25号", issuer="宁波市市场监督管理局",
                        date="2019-07-22", doc_type="答复")
    letter = Document(doc_id="letter", source_path="/corpus/letter.txt", file_name="letter.txt", kind="txt",
                      content_hash="h", meta=meta, text="正文", page_count=1)
    assert filters_from(boxes).admits(letter) is admitted
    assert not filters_from(boxes).admits(replace(letter, meta=replace(meta, date=None)))  # an undated one never


@pytest.mark.parametrize("body, expected", [
    ({"query": "q", "k": k}, (422, "k 应为 1 到 50 的整数")) for k in (0, 51, -1, "5", 2.5, True, None)
] + [
    ({"query": "\ud800"}, (422, f"query: {BAD_UNICODE}")),
    ({"q": "保险"}, (422, "缺少 query")),
    ({"query": "q", "filters": {"date_to": "2019-13-40"}}, (422, "filters.date_to: 应为日期 YYYY-MM-DD，或其前缀 YYYY、"
                                                                 "YYYY-MM（如 2019-01-01、2019-07、2019）")),
])
def test_search_errors_in_chinese(body, expected):
    assert problem(Search, body) == expected


def test_the_question_is_named_first_then_the_deepest_error():
    assert problem(Search, {"k": 0, "filters": {"date_from": "x"}}) == (422, "缺少 query")
    assert problem(Search, {"query": "q", "k": 0, "filters": {"date_from": "x"}})[1].startswith("filters.date_from: ")


def test_a_body_that_is_not_an_object():
    assert problem(Ask, ["question"]) == (400, "请求体应为 JSON 对象")
    assert error_message([{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error"}]) == \
        (400, "请求体不是合法的 JSON")


# --- the chat's history, cut to the same limits
def test_recent_history_keeps_the_most_recent_messages_within_the_limits():
    history = [user(f"问题{i}") for i in range(30)]  # 3 or 4 characters each
    kept = recent_history(history, 20, 4000, 500)
    assert kept == history[-20:]
    kept = recent_history(history, 20, 16, 500)
    assert kept == history[-4:] and sum(len(m["content"]) for m in kept) <= 16
    assert recent_history(history, 0, 4000, 500) == [] and recent_history([], 20, 4000, 500) == []
    answer = {"role": "assistant", "content": "答" * 50}
    assert recent_history([user("旧问题"), answer, user("新问题")], 20, 40, 10) == [user("新问题")]  # ends there
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "答" * 10}]}, user("那保险呢？")]
    assert recent_history(parts, 20, 15, 10) == parts
    # a refused over-long question stays in the chat: it is cut to the question's limit, answers are not
    cut = recent_history([user("长" * 30), {"role": "assistant", "content": "答" * 30}], 20, 4000, 10)
    assert cut == [user("长" * 10), {"role": "assistant", "content": "答" * 30}]


# --- the body guard, on a bare app (the real one is tested in test_api.py)
@pytest.fixture(scope="module")
def guarded():
    api = FastAPI()
    api.add_middleware(JsonBodies, limit_kb=1)

    @api.post("/api/echo")
    async def echo(body: dict):
        return body

    @api.post("/other")
    async def other(body: dict):
        return {"other": True}

    with TestClient(api) as client:
        yield client


@pytest.mark.parametrize("content, status, reply", [
    (b'{"question": "\\u4fdd\\u9669"}', 200, {"question": "保险"}),
    ("{\"question\": \"保险\"}".encode("utf-16"), 200, {"question": "保险"}),  # JSON in UTF-16 with a BOM
    (b"", 200, {}),  # handed on as {}: the model then names the missing field
    (b"{not json", 400, {"error": "请求体不是合法的 JSON"}),
    (b"\xff\xfe\x00", 400, {"error": "请求体不是合法的 JSON"}),
    (b" ", 400, {"error": "请求体不是合法的 JSON"}),
    (b"[" * 500 + b"]" * 500, 400, {"error": "请求体应为 JSON 对象"}),
    (b"[" * 1020 + b"]" * 1020, 413, {"error": "请求体过大（上限 1 KB）"}),
    (b'["question"]', 400, {"error": "请求体应为 JSON 对象"}),
    (b'"question"', 400, {"error": "请求体应为 JSON 对象"}),
])
def test_bodies_are_checked_before_the_endpoint(guarded, content, status, reply):
    # any content type: curl -d sends application/x-www-form-urlencoded
    for kind in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
        r = guarded.post("/api/echo", content=content, headers={"content-type": kind})
        assert (r.status_code, r.json()) == (status, reply)


def test_deeply_nested_json_is_a_400_not_a_500():
    api = FastAPI()
    api.add_middleware(JsonBodies, limit_kb=64)

    @api.post("/api/echo")
    async def echo(body: dict):
        return {"ok": True}

    with TestClient(api) as client:
        r = client.post("/api/echo", content=b'{"a": ' + b"[" * 30000 + b"]" * 30000 + b"}")
    assert r.status_code == 400 and r.json() == {"error": "请求体不是合法的 JSON"}


def test_the_limit_holds_without_a_content_length(guarded):
    r = guarded.post("/api/echo", content=iter([b'{"padding": "', b"x" * 600, b"x" * 600, b'"}']))
    assert r.status_code == 413 and r.json() == {"error": "请求体过大（上限 1 KB）"}
    r = guarded.post("/api/echo", content=b"{}", headers={"content-length": "5000"})
    assert r.status_code == 413


def test_other_paths_are_left_alone(guarded):
    assert guarded.post("/other", json={"padding": "x" * 5000}).json() == {"other": True}
    assert guarded.post("/other", content=b"[]", headers={"content-type": "application/json"}).status_code == 422
    assert json.loads(guarded.post("/api/echo", json={"a": 1}).text) == {"a": 1}
