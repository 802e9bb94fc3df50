"""The front of `--workers N` (web/proxy.py) against two stand-in workers (small ASGI apps on Unix
sockets, no e5): where each request goes, what is relayed, the limits it keeps; the shared count of
wrong admin passwords; the `workers` setting. The real app with real workers: tests/test_workers.py."""
from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from kb.core.errors import SettingsError
from kb.core.settings import Settings, load_settings, settings_from_values, settings_values
from web.attempts import Attempts, SharedAttempts
from web.proxy import Proxy
from web.worker import WorkerHeader
from web.workers import WorkerPool


def stand_in(index: int) -> Starlette:
    async def echo(request: Request):
        body = await request.body()
        return JSONResponse({"worker": index, "path": request.url.path, "query": request.url.query,
                             "client": request.client.host if request.client else None, "bytes": len(body),
                             "host": request.headers.get("host"), "xff": request.headers.get("x-forwarded-for")})

    async def events(request: Request):
        async def stream():
            for n in range(3):
                yield f"data: {n}\n\n".encode()
                await asyncio.sleep(0.2)
        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/gradio_api/queue/data", events),
                             Route("/{path:path}", echo, methods=["GET", "POST"])])


@pytest.fixture
def pool(tmp_path):
    """Two stand-in workers served by uvicorn on Unix sockets, as the pool knows them."""
    pool = WorkerPool(Settings().replace(workers=2), tmp_path)
    servers = []
    for worker in pool.workers:
        server = uvicorn.Server(uvicorn.Config(WorkerHeader(stand_in(worker.index), worker.index), uds=str(worker.socket),
                                               proxy_headers=True, forwarded_allow_ips="*", log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
    deadline = time.time() + 20
    while not all(w.socket.exists() for w in pool.workers):
        assert time.time() < deadline
        time.sleep(0.05)
    for worker in pool.workers:
        worker.ready = True
    yield pool
    for server in servers:
        server.should_exit = True


def front(pool, wait_for_worker_s: float = 60.0, **settings) -> httpx.AsyncClient:
    proxy = Proxy(pool, Settings().replace(**settings), wait_for_worker_s=wait_for_worker_s)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy, client=("203.0.113.7", 5555)),
                             base_url="http://ipkb.example:7860", timeout=20)


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_api_goes_to_both_workers_in_turn_with_the_clients_address(pool):
    async def go():
        async with front(pool) as http:
            replies = [await http.post("/api/ask?x=1", json={"question": "问"},
                                       headers={"x-forwarded-for": "10.9.9.9"}) for _ in range(4)]
            return replies

    replies = run(go())
    assert [r.json()["worker"] for r in replies] in ([0, 1, 0, 1], [1, 0, 1, 0])
    assert all(r.headers["x-ipkb-worker"] == str(r.json()["worker"]) for r in replies)
    first = replies[0].json()
    # the client's own X-Forwarded-For is dropped: the worker sees the address the front saw
    assert first["client"] == "203.0.113.7" and first["xff"] == "203.0.113.7"
    assert first["host"] == "ipkb.example:7860" and first["path"] == "/api/ask" and first["query"] == "x=1"
    assert first["bytes"] > 0


def test_a_browser_keeps_to_the_worker_its_page_came_from(pool):
    async def go():
        async with front(pool) as http:
            page = await http.get("/")
            cookie = page.cookies.get("ipkb-worker")
            later = [await http.post("/gradio_api/queue/join", json={"data": []}) for _ in range(4)]
            return page, cookie, later

    page, cookie, later = run(go())
    assert cookie in ("0", "1") and page.json()["worker"] == int(cookie)
    assert {r.json()["worker"] for r in later} == {int(cookie)}  # the cookie is sent back: the same worker
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Lax" in page.headers["set-cookie"]


def test_a_client_without_the_cookie_stays_on_the_first_worker(pool):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Proxy(pool, Settings())),
                                     base_url="http://ipkb", timeout=20) as http:
            return [await http.post("/gradio_api/upload", content=b"x" * 1000) for _ in range(3)]

    assert [r.json()["worker"] for r in run(go())] == [0, 0, 0]


def test_a_worker_that_is_down_hands_its_browsers_to_another(pool):
    pool.workers[1].ready = False

    async def go():
        async with front(pool) as http:
            http.cookies.set("ipkb-worker", "1")
            return await http.post("/gradio_api/queue/join", json={})

    r = run(go())
    assert r.json()["worker"] == 0 and "ipkb-worker=0" in r.headers["set-cookie"]


def test_an_unreachable_worker_is_marked_down_and_the_api_call_tried_on_the_other(pool):
    pool.workers[0].socket.unlink()  # as if the process had died

    async def go():
        async with front(pool) as http:
            return [await http.post("/api/search", json={"query": "q"}) for _ in range(3)]

    assert [r.json()["worker"] for r in run(go())] == [1, 1, 1]
    assert not pool.workers[0].ready and pool.workers[1].ready


def test_no_worker_ready_is_a_503(pool):
    for worker in pool.workers:
        worker.ready = False

    async def go():
        async with front(pool, wait_for_worker_s=0.5) as http:
            return await http.post("/api/ask", json={"question": "问"}), await http.get("/")

    started = time.monotonic()
    api, page = run(go())
    assert api.status_code == page.status_code == 503 and "请稍候" in api.json()["error"]
    assert time.monotonic() - started >= 1.0  # each waited for a worker before giving up


def test_a_request_waits_for_a_worker_that_comes_back(pool):
    for worker in pool.workers:
        worker.ready = False
    threading.Timer(0.5, lambda: setattr(pool.workers[1], "ready", True)).start()  # restarted, serving again

    async def go():
        async with front(pool, wait_for_worker_s=10) as http:
            return await http.post("/api/ask", json={"question": "问"})

    answered = run(go())
    assert answered.status_code == 200 and answered.headers["x-ipkb-worker"] == "1"


def test_an_api_body_over_the_limit_is_refused_by_the_front(pool):
    async def go():
        async with front(pool, max_body_kb=1) as http:
            declared = await http.post("/api/ask", content=b"x" * 2000)

            async def chunks():  # no Content-Length: counted as it comes
                for _ in range(3):
                    yield b"x" * 800
            streamed = await http.post("/api/ask", content=chunks())
            small = await http.post("/api/ask", content=b"x" * 1000)
            return declared, streamed, small

    declared, streamed, small = run(go())
    assert declared.status_code == streamed.status_code == 413
    assert declared.json() == {"error": "请求体过大（上限 1 KB）"}
    assert small.status_code == 200 and small.json()["bytes"] == 1000


def test_server_sent_events_stream_through(pool):
    async def go():
        async with front(pool) as http:
            arrived = []
            start = time.perf_counter()
            async with http.stream("GET", "/gradio_api/queue/data?session_hash=abc") as r:
                async for chunk in r.aiter_text():
                    arrived.append((round(time.perf_counter() - start, 1), chunk))
            return r, arrived

    r, arrived = run(go())
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "".join(c for _, c in arrived) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert pool.workers[0].busy == pool.workers[1].busy == 0


def test_shared_attempts_are_one_count_for_every_process(tmp_path):
    one, other = SharedAttempts(tmp_path / "attempts.json"), SharedAttempts(tmp_path / "attempts.json")
    with one.locked():
        one["10.0.0.1"] = (2, 0.0)
    assert other.get("10.0.0.1") == (2, 0.0) and dict(other) == {"10.0.0.1": (2, 0.0)}
    with other.locked():
        other["10.0.0.1"] = (other["10.0.0.1"][0] + 1, 5.0)
    assert one["10.0.0.1"] == (3, 5.0)
    assert one.pop("10.0.0.1", None) == (3, 5.0) and other == {} and one.pop("nobody", None) is None
    assert isinstance(Attempts(), dict)


def test_workers_setting():
    assert Settings().web.workers == 1
    assert load_settings(env={"IPKB_WORKERS": "4"}, config_file=None).web.workers == 4
    for bad in ("0", "17", "-1"):
        with pytest.raises(SettingsError, match="workers"):
            load_settings(env={"IPKB_WORKERS": bad})
    settings = Settings().replace(workers=3, port=8000, corpus=[Settings().store.kb_dir / "x"], embed_cache=None)
    assert settings_from_values(settings_values(settings)) == settings
