"""The OpenAI-compatible API of the real app (uvicorn on 127.0.0.1, the real answerer over the sample
letter's knowledge base): the `openai` client, streaming and not, and LangChain's ChatOpenAI get the same
answer and citations as /api/ask for every question of eval/testsets/sample.jsonl."""
from __future__ import annotations

import warnings

import httpx
import openai
import pytest
from app_server import running_app
from tests_support import REPO

from eval.testset import load_testset

pytestmark = pytest.mark.slow  # starts the app with e5

KEY = "ipkb-app-test-key-0123456789"
SAMPLE = [q.question for q in load_testset(REPO / "eval" / "testsets" / "sample.jsonl")]
SAME = ("answer", "refused", "citations", "notices", "body", "sources", "standalone_question")


@pytest.fixture(scope="module")
def app(letter_settings, copy_kb):
    with running_app(copy_kb(letter_settings, api_keys=[KEY], api_asks_per_minute=10_000)) as (base, service):
        yield base, service


@pytest.fixture(scope="module")
def client(app) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app[0]}/v1", api_key=KEY, max_retries=0, timeout=120)


def test_every_sample_question_gets_the_answer_of_api_ask_streamed_or_not(app, client):
    base, _ = app
    cited = 0
    with httpx.Client(timeout=120) as http:
        for question in SAMPLE:
            expected = http.post(f"{base}/api/ask", json={"question": question}).json()
            messages = [{"role": "user", "content": question}]
            reply = client.chat.completions.create(model="ipkb", messages=messages)
            assert reply.choices[0].message.content == expected["answer"], question
            got = reply.model_extra["ipkb"]
            assert {f: got[f] for f in SAME} == {f: expected[f] for f in SAME}, question
            chunks = list(client.chat.completions.create(model="ipkb", messages=messages, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected["answer"], question
            last = chunks[-1].model_extra["ipkb"]
            assert chunks[-1].choices[0].finish_reason == "stop"
            assert {f: last[f] for f in SAME} == {f: expected[f] for f in SAME}, question
            cited += bool(expected["citations"])
            if expected["citations"]:  # a plain client shows the sources: markers and the 来源 block
                assert "[1]" in reply.choices[0].message.content and "\n\n来源：\n[1] 《" in reply.choices[0].message.content
    assert cited >= len(SAMPLE) // 2  # the comparison is about cited answers, not only refusals


def test_a_follow_up_is_answered_as_in_the_chat(app, client):
    base, _ = app
    history = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"}]
    first = client.chat.completions.create(model="ipkb", messages=history).choices[0].message.content
    history.append({"role": "assistant", "content": first})
    expected = httpx.post(f"{base}/api/ask", json={"question": "那保险呢？", "history": history}, timeout=120).json()
    reply = client.chat.completions.create(model="ipkb", messages=[*history, {"role": "user", "content": "那保险呢？"}])
    assert reply.choices[0].message.content == expected["answer"] and "保险" in expected["answer"]
    assert reply.model_extra["ipkb"]["standalone_question"] == expected["standalone_question"] != "那保险呢？"


def test_bad_keys_and_bodies_over_http(app):
    base, _ = app
    with pytest.raises(openai.AuthenticationError) as wrong:
        openai.OpenAI(base_url=f"{base}/v1", api_key="wrong-key-0123456789", max_retries=0).models.list()
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    r = httpx.post(f"{base}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "ipkb", "messages": [{"role": "user", "content": ["x"]}]})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_langchains_chat_openai_pointed_at_the_app(app):
    """langchain-openai is not in requirements.lock: LangChain's ChatOpenAI of langchain_community (over the
    same `openai` client) is the one the locked packages hold."""
    base, _ = app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain-openai
        from langchain_community.chat_models.openai import ChatOpenAI
        from langchain_core.messages import HumanMessage, SystemMessage

        chat = ChatOpenAI(model="ipkb", openai_api_key=KEY, openai_api_base=f"{base}/v1", max_retries=0,
                          request_timeout=120)
    question = "发明专利被侵权有保险吗？"
    expected = httpx.post(f"{base}/api/ask", json={"question": question}, timeout=120).json()
    assert expected["citations"]
    assert chat.invoke([SystemMessage("请简要回答"), HumanMessage(question)]).content == expected["answer"]
    assert "".join(c.content for c in chat.stream(question)) == expected["answer"]


def test_with_an_llm_the_stream_carries_its_draft_apart_and_the_checked_answer_as_content(letter_settings, copy_kb):
    """The LLM's sentences stream as `ipkb.draft` while it writes; `content` is the answer /api/ask gives."""
    from fake_openai import FakeOpenAI
    from test_llm import honest_reply

    question = "专利质押贷款出了坏账谁兜底？"
    with FakeOpenAI(responder=honest_reply) as llm:
        settings = copy_kb(letter_settings, api_keys=[KEY], llm_base_url=llm.base_url, llm_model="fake-model",
                           llm_structured="off")
        with running_app(settings) as (base, _):
            expected = httpx.post(f"{base}/api/ask", json={"question": question}, timeout=120).json()
            client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=120)
            chunks = list(client.chat.completions.create(model="ipkb", stream=True,
                                                         messages=[{"role": "user", "content": question}]))
    assert expected["answerer"] == "llm" and expected["citations"]
    drafts = [c.model_extra["ipkb"]["draft"] for c in chunks if "draft" in (c.model_extra.get("ipkb") or {})]
    assert drafts and "风险池" in "".join(drafts)
    assert all(not c.choices[0].delta.content for c in chunks if "draft" in (c.model_extra.get("ipkb") or {}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected["answer"]
    assert chunks[-1].model_extra["ipkb"]["answerer"] == "llm"
