"""The JSON API in the real app (e5, a built knowledge base, uvicorn): date and profile filters
on each store, the largest history in bounded time, and one search per 检索 query. The request models'
422s, the history limits, /openapi.json and /docs run in-process in tests/test_web.py."""
from __future__ import annotations

import time
from types import SimpleNamespace

import httpx
import pytest
from app_server import running_app
from gradio_client import Client
from test_web import history_of, user
from tests_support import STORES

import kb.search.retriever

pytestmark = pytest.mark.slow  # builds a knowledge base (e5) and starts the app

QUESTION = "发明专利被侵权有保险吗？"
ON_EACH_STORE = pytest.mark.parametrize("app", STORES, indirect=True)


@pytest.fixture(scope="module", autouse=True)
def no_heartbeat():
    """No gradio_client heartbeat stream: it would hold up the app's shutdown (see test_app.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Client, "_stream_heartbeat", staticmethod(lambda *args: None))
        yield


@pytest.fixture(scope="module", params=["local"])
def app(request, copy_kb):
    """The app over the letter; the tests of ask and search also run it over Milvus (`ON_EACH_STORE`)."""
    settings = copy_kb(request.getfixturevalue("letter_milvus_settings" if request.param == "milvus" else "letter_settings"))
    with running_app(settings) as (base, service):
        yield SimpleNamespace(base=base, service=service, settings=settings)


@pytest.fixture
def http(app):
    with httpx.Client(base_url=app.base, timeout=60) as h:
        yield h


# --- what the real search and answers do (the web layer's own behaviour: tests/test_web.py)
# What a date or its prefix admits is one pure table (tests/test_requests.py), and the Milvus store filters
# as the local one (tests/test_milvus.py): here only that the API's date boxes reach the search.
@pytest.mark.parametrize("filters, found", [({"date_from": "2019-07", "date_to": "2019"}, True), ({"date_to": "2018"}, False)])
@ON_EACH_STORE
def test_date_filters_reach_the_search(http, filters, found):
    r = http.post("/api/search", json={"query": "发明专利被侵权保险", "filters": filters})
    assert r.status_code == 200
    assert bool(r.json()["passages"]) is found


def test_the_largest_accepted_history_is_answered_in_bounded_time(http, app):
    turns, chars = app.settings.answer.max_history_turns, app.settings.answer.max_history_chars
    history = history_of(turns, chars)
    plain = http.post("/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？那保险呢？"}).json()  # warm up
    print(f"\nbaseline, no history: server timings {plain['timings_ms']}")
    start = time.perf_counter()
    r = http.post("/api/ask", json={"question": "那保险呢？", "history": history})
    elapsed = time.perf_counter() - start
    print(f"\n/api/ask with {turns} messages, {chars} characters of history: {elapsed * 1000:.0f} ms "
          f"(server timings {r.json().get('timings_ms')})")
    assert r.status_code == 200, r.text
    data = r.json()
    assert "专利质押贷款出了坏账谁兜底" in data["standalone_question"] and "保险" in data["answer"]
    # the costliest shape: the longest question a follow-up can lean on, the rest one long answer
    limit = app.settings.answer.max_question_chars
    longest = [user(("专利质押贷款出了坏账谁兜底？" * limit)[:limit]),
               {"role": "assistant", "content": "风" * (chars - limit)}]
    start = time.perf_counter()
    r = http.post("/api/ask", json={"question": "那保险呢？", "history": longest})
    elapsed = time.perf_counter() - start
    print(f"/api/ask leaning on a {limit}-character question, {chars} characters of history: {elapsed * 1000:.0f} ms "
          f"(server timings {r.json().get('timings_ms')})")
    assert r.status_code == 200, r.text
    start = time.perf_counter()
    alone = http.post("/api/ask", json={"question": longest[0]["content"]})
    print(f"baseline, that question alone: {(time.perf_counter() - start) * 1000:.0f} ms")
    assert alone.status_code == 200


# --- one search per 检索 query
def test_one_search_per_lookup(app, monkeypatch):
    calls = []
    real_search = kb.search.retriever.Retriever.search

    def counted(self, query, *args, **kwargs):
        calls.append(query)
        return real_search(self, query, *args, **kwargs)

    monkeypatch.setattr(kb.search.retriever.Retriever, "search", counted)
    client = Client(app.base, verbose=False)
    for k in (5, 10, 20):
        calls.clear()
        results, aloud = client.predict("发明专利被侵权保险", k, [], [], "", "", api_name="/search")
        assert calls == ["发明专利被侵权保险"], calls  # the passages and the read-aloud answer from one search
        # the passages of the search, less those far below the best (search_min_score_ratio)
        assert results.count('<div class="ipkb-card"') == len(app.service.lookup("发明专利被侵权保险", k=k)[0])
        assert "发明专利被侵权保险" in aloud and "出处：" in aloud
    calls.clear()
    results, aloud = client.predict("发明专利被侵权保险", 5, ["答复"], [], "2019", "2019-07", api_name="/search")
    assert len(calls) == 1 and results.count('<div class="ipkb-card"') == 5
    calls.clear()
    http = httpx.post(f"{app.base}/api/ask", json={"question": QUESTION}, timeout=60)
    assert http.status_code == 200 and len(calls) == 1


def test_the_lookup_reads_aloud_what_the_passages_say(app):
    """The answer from reused passages is the answer the answerer gives by itself."""
    passages, answer = app.service.lookup(QUESTION, k=3)
    alone = app.service.answerer.answer(QUESTION)
    assert len(passages) == 3 and len(answer.passages) == len(alone.passages) >= 10
    assert answer.body == alone.body and [c.chunk_id for c in answer.citations] == [c.chunk_id for c in alone.citations]
    assert [p.chunk_id for p in passages] == [p.chunk_id for p in app.service.search(QUESTION, k=3)]


@ON_EACH_STORE
def test_the_askers_region_and_profile_filters_through_the_api(http):
    answer = http.post("/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？", "region": "宁波市"}).json()
    assert not answer["refused"] and answer["citations"][0]["region"] == ["浙江省", "宁波市"]
    elsewhere = http.post("/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？", "region": "北京市"}).json()
    assert elsewhere["refused"] and any("北京市" in n for n in elsewhere["notices"])
    found = http.post("/api/search", json={"query": "风险池基金", "filters": {"levels": ["答复"], "region": "宁波"}}).json()
    assert found["passages"] and all(p["level"] == "答复" for p in found["passages"])
    none = http.post("/api/search", json={"query": "风险池基金", "filters": {"levels": ["法律"]}}).json()
    assert none["passages"] == []
