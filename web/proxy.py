"""The front of `python app.py --workers N`: an ASGI app that relays each request to a worker (web/workers.py).

- The JSON API and its documents (/api/…, /files/…, /docs, /openapi.json), the OpenAI-compatible API
  (/v1/…) and the chat widget (/widget.js, /widget/…) go to the least busy worker;
  a worker that cannot be reached is marked down and the request tried once on another.
- Everything else is Gradio's (the page, its assets, /config, /gradio_api/…: queue/join, the SSE stream
  queue/data, uploads, files). A Gradio session lives in one process, so each client keeps to one worker:
  the page (GET /) and /config, which gradio_client fetches first, hand out a worker (least busy) in the
  cookie `ipkb-worker`; the browser and gradio_client send it back with every later request (gradio_client
  keeps the cookies of /config for this very purpose: replicas behind cookie affinity). A client with no
  cookie goes to the first worker that answers; one whose worker is down is given another.
- Responses stream back as they come (Gradio's server-sent events included); request bodies stream on.
  Every check of the app itself (body limits, JSON, file inputs, the rate limit of admin passwords) runs in
  the workers, as in one process; the front also refuses an API body over `max_body_kb` before relaying it,
  and sets X-Forwarded-For to the client's address (never the client's own header), which the workers read
  for the per-client rate limit.
"""
from __future__ import annotations

import asyncio
import time

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, StreamingResponse

from kb.core.settings import Settings
from web.workers import Worker, WorkerPool

COOKIE = "ipkb-worker"
BALANCED = ("/api/", "/files/", "/docs", "/v1/", "/widget")  # and /openapi.json
ASSIGNING = ("/", "/config", "/gradio_api/config")  # GET: a client's first request, which picks its worker
HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
              b"transfer-encoding", b"upgrade", b"x-forwarded-for", b"x-real-ip", b"forwarded"}
UNAVAILABLE = "服务正在启动或重启，请稍候再试"
WAIT_FOR_WORKER_S = 60.0  # a worker restarted after a crash loads its models in 10-20 s (longer when all restart at once)


class _TooLarge(Exception):
    pass


class Proxy:
    def __init__(self, pool: WorkerPool, settings: Settings, wait_for_worker_s: float = WAIT_FOR_WORKER_S):
        self.pool = pool
        self.wait_for_worker_s = wait_for_worker_s
        self.limit_kb = settings.web.max_body_kb
        self._clients: dict[int, httpx.AsyncClient] = {}

    def _client(self, worker: Worker) -> httpx.AsyncClient:
        client = self._clients.get(worker.index)
        if client is None:  # made in the server's event loop; kept across the worker's restarts (same socket)
            client = self._clients[worker.index] = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(worker.socket)),
                timeout=httpx.Timeout(None, connect=10.0),  # an answer or an SSE stream may take minutes
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
        return client

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for client in self._clients.values():
                        await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":  # websockets: Gradio 6 does not use them
            await send({"type": "websocket.close", "code": 1003})
            return
        await self._relay(Request(scope, receive), scope, receive, send)

    # --- where a request goes
    @staticmethod
    def balanced(path: str) -> bool:
        return path.startswith(BALANCED) or path == "/openapi.json"

    def _sticky(self, request: Request) -> tuple[Worker | None, int | None]:
        """(worker, index to set in the cookie or None)."""
        raw = request.cookies.get(COOKIE, "")
        worker = self.pool.get(int(raw)) if raw.isdigit() else None
        if worker is not None and worker.ready:
            return worker, None
        if not raw and not (request.method == "GET" and request.url.path in ASSIGNING):
            return self.pool.first_ready(), None  # never given a worker (a script): always the same one
        worker = self.pool.least_busy()
        return worker, (worker.index if worker else None)

    # --- relaying
    async def _read_api_body(self, request: Request) -> bytes:
        limit = self.limit_kb * 1024
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _TooLarge
        return body

    @staticmethod
    async def _stream(request: Request):
        async for chunk in request.stream():
            yield chunk

    def _headers(self, request: Request) -> list[tuple[bytes, bytes]]:
        client = request.scope.get("client")
        headers = [(k, v) for k, v in request.scope["headers"] if k not in HOP_BY_HOP]
        headers.append((b"x-forwarded-for", (client[0] if client else "").encode("latin-1")))
        headers.append((b"x-forwarded-proto", request.scope.get("scheme", "http").encode("latin-1")))
        return headers

    async def _choose(self, request: Request, balanced: bool) -> tuple[Worker | None, int | None]:
        """A worker for the request; while none is ready (all restarting) the request waits for one, up to
        wait_for_worker_s, instead of failing at once."""
        deadline = time.monotonic() + self.wait_for_worker_s
        while True:
            worker, assign = (self.pool.least_busy(), None) if balanced else self._sticky(request)
            if worker is not None or time.monotonic() > deadline:
                return worker, assign
            await asyncio.sleep(0.1)

    async def _relay(self, request: Request, scope, receive, send) -> None:
        path = scope["path"]
        balanced = self.balanced(path)
        worker, assign = await self._choose(request, balanced)
        if worker is None:
            await JSONResponse({"error": UNAVAILABLE}, status_code=503)(scope, receive, send)
            return
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        try:
            content = await self._read_api_body(request) if balanced and has_body else (
                self._stream(request) if has_body else None)
        except _TooLarge:
            await JSONResponse({"error": f"请求体过大（上限 {self.limit_kb} KB）"}, status_code=413)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        retry = not has_body or isinstance(content, bytes)  # a streamed body cannot be sent twice
        query = scope.get("query_string", b"")
        target = scope.get("raw_path") or path.encode()
        url = httpx.URL("http://ipkb-worker").copy_with(raw_path=target + (b"?" + query if query else b""))
        counted = not (path.endswith("/queue/data") or "/heartbeat/" in path)  # idle streams are not load
        headers = self._headers(request)
        attempts = len(self.pool.workers) + 1  # each worker may be found dead in turn, then one restarted
        for attempt in range(1, attempts + 1):
            client = self._client(worker)
            worker.busy += counted
            try:
                upstream = await client.send(client.build_request(scope["method"], url, headers=headers,
                                                                  content=content), stream=True)
                break
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                worker.busy -= counted
                self.pool.lost(worker)
                if attempt == attempts or not retry:
                    message = f"工作进程 {worker.index} 无法连接（{type(exc).__name__}），请稍后再试"
                    await JSONResponse({"error": message}, status_code=502)(scope, receive, send)
                    return
                worker = (await self._choose(request, balanced))[0]
                assign = None if balanced or worker is None else worker.index
                if worker is None:
                    await JSONResponse({"error": UNAVAILABLE}, status_code=503)(scope, receive, send)
                    return
        worker.served += 1
        response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code)
        response.raw_headers = [(k, v) for k, v in upstream.headers.raw
                                if k.lower() not in HOP_BY_HOP and k.lower() not in (b"date", b"server")]  # the front's own
        if assign is not None:
            response.raw_headers.append((b"set-cookie", f"{COOKIE}={assign}; Path=/; HttpOnly; SameSite=Lax".encode()))
        try:
            await response(scope, receive, send)
        finally:
            await upstream.aclose()
            worker.busy -= counted
