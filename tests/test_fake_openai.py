"""The scripted OpenAI-compatible test server (tests/fake_openai.py), over real loopback HTTP."""
from __future__ import annotations

import ast
import base64
import json
import math
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fake_openai import FAKE_MODEL, FakeOpenAI, fake_embedding

HERE = Path(__file__).resolve().parent

NEAR_A = "国家知识产权局关于加强专利侵权纠纷行政裁决工作的通知"
NEAR_B = "国家知识产权局关于加强专利侵权纠纷行政裁决的通知"
FAR = "今天天气晴朗，我们一起去公园散步吧"


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.base_url, timeout=5.0) as c:
        yield c


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _chat(client: httpx.Client, content: str = "你好", **extra) -> httpx.Response:
    return client.post("/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": content}], **extra})


def _sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of a server-sent-events body, in order."""
    return [line[len("data:"):].strip() for line in response.iter_lines() if line.startswith("data:")]


# ------------------------------------------------------------------ lifecycle
def test_base_url_and_clean_shutdown():
    with FakeOpenAI() as s:
        assert s.base_url.startswith("http://127.0.0.1:") and s.base_url.endswith("/v1")
        port = s.port
        assert port > 0
        assert httpx.get(f"{s.base_url}/models", timeout=2).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)


def test_models_and_unknown_path(server, client):
    r = client.get("/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == [FAKE_MODEL]
    r = client.post("/nope", json={})
    assert r.status_code == 404
    assert "error" in r.json() and r.json()["error"]["message"]
    assert [req["path"] for req in server.requests] == ["/v1/models", "/v1/nope"]


# ----------------------------------------------------------------- embeddings
def test_embeddings_shape_determinism_and_norm(server, client):
    texts = [NEAR_A, NEAR_B, FAR, "专", ""]
    r = client.post("/embeddings", json={"model": "emb", "input": texts})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["model"] == "emb"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert [d["index"] for d in body["data"]] == list(range(len(texts)))
    for d, text in zip(body["data"], texts):
        assert d["object"] == "embedding"
        assert len(d["embedding"]) == 64
        assert math.isclose(math.sqrt(sum(v * v for v in d["embedding"])), 1.0, rel_tol=1e-9)
        assert d["embedding"] == pytest.approx(fake_embedding(text, 64))
    # same text, same vector, across requests; a single string input works too
    again = client.post("/embeddings", json={"model": "emb", "input": NEAR_A}).json()
    assert len(again["data"]) == 1
    assert again["data"][0]["embedding"] == body["data"][0]["embedding"]
    assert server.requests[0]["json"] == {"model": "emb", "input": texts}


def test_embedding_dim_is_configurable():
    with FakeOpenAI(dim=16) as s:
        r = httpx.post(f"{s.base_url}/embeddings", json={"model": "e", "input": ["专利"]}, timeout=2)
    assert len(r.json()["data"][0]["embedding"]) == 16
    assert len(fake_embedding("专利", 128)) == 128


def test_embedding_similarity_ordering():
    a, b, far = (fake_embedding(t) for t in (NEAR_A, NEAR_B, FAR))
    assert _cos(a, b) > 0.8
    assert _cos(a, b) > _cos(a, far) + 0.5
    assert _cos(a, a) == pytest.approx(1.0)


def test_embeddings_base64(client):
    r = client.post("/embeddings", json={"model": "e", "input": [NEAR_A, FAR], "encoding_format": "base64"})
    assert r.status_code == 200
    for d, text in zip(r.json()["data"], [NEAR_A, FAR]):
        assert isinstance(d["embedding"], str)
        raw = base64.b64decode(d["embedding"])
        assert len(raw) == 64 * 4
        assert list(struct.unpack("<64f", raw)) == pytest.approx(fake_embedding(text), abs=1e-6)


def test_embeddings_bad_input(client):
    assert client.post("/embeddings", json={"model": "e"}).status_code == 400
    assert client.post("/embeddings", json={"model": "e", "input": [1.5]}).status_code == 400
    r = client.post("/embeddings", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_project_embedder_against_fake(server):
    """The project's own OpenAI-compatible embedder understands the fake's replies."""
    np = pytest.importorskip("numpy")
    from kb.models.embeddings import OpenAICompatibleEmbeddings

    emb = OpenAICompatibleEmbeddings(server.base_url, "fake-embed", api_key="k", timeout=5)
    m = emb.encode_passages([NEAR_A, FAR])
    assert m.shape == (2, 64)
    assert np.allclose(m[0], fake_embedding(NEAR_A), atol=1e-6)
    assert server.requests[-1]["headers"]["authorization"] == "Bearer k"


def test_concurrent_requests_are_all_recorded(server):
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            r = httpx.post(f"{server.base_url}/embeddings", json={"model": "e", "input": f"文本{i}"}, timeout=5)
            assert r.status_code == 200
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r["json"]["input"] for r in server.requests) == sorted(f"文本{i}" for i in range(16))


# ----------------------------------------------------------------------- auth
def test_auth_required_when_api_key_set():
    with FakeOpenAI(api_key="sk-test") as s:
        r = httpx.post(f"{s.base_url}/embeddings", json={"model": "e", "input": "x"}, timeout=2)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(f"{s.base_url}/chat/completions", json={"model": "m", "messages": []},
                       headers={"Authorization": "Bearer wrong"}, timeout=2)
        assert r.status_code == 401
        r = httpx.post(f"{s.base_url}/embeddings", json={"model": "e", "input": "x"},
                       headers={"Authorization": "Bearer sk-test"}, timeout=2)
        assert r.status_code == 200
        assert [req["headers"].get("authorization") for req in s.requests] == [
            None, "Bearer wrong", "Bearer sk-test"]


# ----------------------------------------------------------------------- chat
def test_chat_non_stream(server, client):
    server.script = ["根据《专利法》第六十五条，……"]
    r = _chat(client, "专利侵权怎么赔偿？")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "m"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "根据《专利法》第六十五条，……"}
    assert choice["finish_reason"] == "stop"
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["json"]["messages"][0]["content"] == "专利侵权怎么赔偿？"
    assert req["headers"]["content-type"] == "application/json"


def test_chat_stream_reassembles_and_ends_with_done(server, client):
    reply = "商标注册申请应当向国家知识产权局提交。"
    server.script = [reply]
    with client.stream("POST", "/chat/completions",
                       json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "问"}]}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    content_chunks = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) > 3  # really split into pieces
    assert "".join(c["choices"][0]["delta"]["content"] for c in content_chunks) == reply
    assert all(c["choices"][0]["finish_reason"] is None for c in content_chunks)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}


def test_chat_stream_usage_chunk(server, client):
    server.script = ["好"]
    with client.stream("POST", "/chat/completions", json={
            "model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "问"}]}) as r:
        events = _sse_events(r)
    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 1


def test_chat_scripted_status(server, client):
    server.script = [{"status": 500}, {"status": 429, "content": "Rate limit reached"}, "恢复了"]
    r = _chat(client)
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    r = _chat(client)
    assert r.status_code == 429 and r.json()["error"]["message"] == "Rate limit reached"
    r = _chat(client)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "恢复了"
    # a scripted error in a stream request is also a plain HTTP error
    server.script = [{"status": 503}]
    with client.stream("POST", "/chat/completions",
                       json={"model": "m", "stream": True, "messages": []}) as r:
        assert r.status_code == 503


def test_chat_delay_triggers_client_timeout(server):
    server.script = [{"delay": 1.0, "content": "太慢了"}, "及时"]
    with httpx.Client(base_url=server.base_url, timeout=0.2) as c:
        t0 = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            _chat(c)
        assert time.monotonic() - t0 < 0.9
    with httpx.Client(base_url=server.base_url, timeout=5) as c:
        assert _chat(c).json()["choices"][0]["message"]["content"] == "及时"


def test_chat_short_delay_is_honoured(server, client):
    server.script = [{"delay": 0.15, "content": "稍等"}]
    t0 = time.monotonic()
    r = _chat(client)
    assert time.monotonic() - t0 >= 0.15
    assert r.json()["choices"][0]["message"]["content"] == "稍等"


def test_stop_cuts_a_pending_delay_short():
    s = FakeOpenAI(script=[{"delay": 30}])
    s.start()
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{s.base_url}/chat/completions", json={"model": "m", "messages": []}, timeout=0.1)
    finally:
        t0 = time.monotonic()
        s.stop()
    assert time.monotonic() - t0 < 2


def test_chat_malformed_stream(server, client):
    server.script = [{"content": "半截回答就断了", "malformed": True}]
    with client.stream("POST", "/chat/completions",
                       json={"model": "m", "stream": True, "messages": []}) as r:
        assert r.status_code == 200
        events = _sse_events(r)
    assert len(events) >= 2
    first = json.loads(events[0])
    assert first["choices"][0]["delta"]["content"] == "半截回"
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1])
    assert "[DONE]" not in events


def test_chat_malformed_non_stream(server, client):
    server.script = [{"malformed": True}]
    r = _chat(client)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_script_consumed_in_order_then_default_reply(server, client):
    server.script = ["一", {"content": "二"}, "三"]
    got = [_chat(client).json()["choices"][0]["message"]["content"] for _ in range(5)]
    assert got == ["一", "二", "三", "好的。", "好的。"]
    assert server.script == []
    server.default_reply = "收到"
    assert _chat(client).json()["choices"][0]["message"]["content"] == "收到"
    assert len(server.chat_requests()) == 6


def test_responder_overrides_script(server, client):
    seen: list[list[dict]] = []

    def responder(messages):
        seen.append(messages)
        question = messages[-1]["content"]
        if "错误" in question:
            return {"status": 502}
        return f"你问的是：{question}"

    server.script = ["不该用到"]
    server.responder = responder
    assert _chat(client, "商标是什么").json()["choices"][0]["message"]["content"] == "你问的是：商标是什么"
    assert _chat(client, "制造错误").status_code == 502
    assert server.script == ["不该用到"]
    assert [m[-1]["content"] for m in seen] == ["商标是什么", "制造错误"]


def test_responder_exception_becomes_500(server, client):
    def responder(messages):
        raise RuntimeError("boom")

    server.responder = responder
    r = _chat(client)
    assert r.status_code == 500 and "boom" in r.json()["error"]["message"]


# --------------------------------------------------------------- dependencies
def test_fake_uses_only_the_standard_library():
    tree = ast.parse((HERE / "fake_openai.py").read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - {"__future__"} <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)


@pytest.mark.slow
def test_langchain_openai_not_needed():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import fake_openai\n"
        "with fake_openai.FakeOpenAI() as s: pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('langchain_openai', 'openai', 'httpx')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code, str(HERE)], check=True, timeout=30)
