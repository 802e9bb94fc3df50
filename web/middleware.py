"""The ASGI guards in front of the app: security headers and the API's Chinese 404/405, the Chinese page,
Gradio calls by name, file values and chat parts that could name server files, and the budget of
Gradio's upload route. Each is a plain ASGI middleware, added in web/api.py."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from pathlib import Path

from fastapi.responses import JSONResponse
from gradio.utils import get_upload_folder

from web.requests import replayed


class SecurityHeaders:
    """Every response: not framed by other sites, not sniffed into another type, no referrer sent on;
    the API's own 404 and 405 in Chinese (FastAPI's are English: {"detail": "Not Found"})."""

    HEADERS = [(b"x-frame-options", b"SAMEORIGIN"), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"same-origin")]
    FRAMING = b"frame-ancestors 'self'"
    API_ERRORS = {404: "没有这个接口", 405: "此接口不支持该请求方法（问答与检索请用 POST）"}

    def __init__(self, app, methods: dict[str, frozenset[str]] | None = None):
        self.app, self.methods = app, methods or {}  # the API's paths and the methods each takes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        api = path.startswith("/api/")
        allowed = self.methods.get(path)
        if allowed and scope.get("method") not in allowed | {"HEAD", "OPTIONS"}:
            await self._error(send, 405, ", ".join(sorted(allowed)))  # else Gradio, mounted at /, says 404
            return
        replaced = False

        async def secured(message):
            nonlocal replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                if api and status in self.API_ERRORS:
                    replaced = True
                    await self._error(send, status, "POST")
                    return
                headers = [(k, v) for k, v in message.get("headers") or [] if k not in dict(self.HEADERS)]
                csp = next((v for k, v in headers if k == b"content-security-policy"), None)
                if csp is None:
                    headers.append((b"content-security-policy", self.FRAMING))
                await send({**message, "headers": [*headers, *self.HEADERS]})
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, secured)

    async def _error(self, send, status: int, allow: str) -> None:
        body = json.dumps({"error": self.API_ERRORS[status]}, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *self.HEADERS, (b"content-security-policy", self.FRAMING)]
        if status == 405:
            headers.append((b"allow", allow.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class ChinesePage:
    """Gradio's own strings ("Drop File Here", "Error") in Chinese in every browser. Gradio 6 takes
    their language from `navigator.language` when its page loads, before `head` scripts run, and has no
    server setting; so the page itself gets, first in <head>, a script that makes the browser say zh-CN."""

    SCRIPT = (b"<script>(function(){var d=function(k,v){try{Object.defineProperty(navigator,k,{get:function()"
              b"{return v},configurable:true})}catch(e){}};d('language','zh-CN');d('languages',['zh-CN','zh'])})();"
              b"</script>")
    _PAGES = re.compile(r"^/(?:\?.*)?$")  # the UI's page (Gradio is mounted at /)

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope.get("method") == "GET" and self._PAGES.match(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        start, body = None, []

        async def rewrite(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if not headers.get(b"content-type", b"").startswith(b"text/html"):
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = b"".join(body).replace(b"<head>", b"<head>" + self.SCRIPT, 1)
            headers = [(k, v) for k, v in start.get("headers") or [] if k != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, rewrite)


class GradioEndpointsByName:
    """Refuses a Gradio call by name (/gradio_api/call|run|api/{name}) unless the name is a public
    endpoint: /false, /false_1 … (handlers registered with api_name=False) answer 404."""

    _CALL = re.compile(r"^/gradio_api/(?:call/v2|call|run|api)/([^/]+)/?$")

    def __init__(self, app, public: frozenset[str]):
        self.app, self.public = app, public

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST":
            match = self._CALL.match(scope.get("path", ""))
            if match and match[1] not in self.public:
                response = JSONResponse({"error": f"没有这个接口：/{match[1]}"}, status_code=404)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class UploadedFilesOnly:
    """Refuses (400) a Gradio call whose data names a file outside Gradio's upload folder —
    `{"path": "/etc/passwd"}` or a URL given as the value of a file input, or anywhere else in the data —
    or holds a chat message part other than text (a "component" or "file" part names a server file that
    Gradio would copy into its cache); and a queue/join naming no handler of this app (404, not a 500)."""

    _CALLS = re.compile(r"^/gradio_api/(?:queue/join|call/v2/[^/]+|call/[^/]+|run/[^/]+|api/[^/]+)/?$")
    MAX_SCANNED = 4 * 1024 * 1024  # bodies this large are not Gradio calls of this app: refused

    def __init__(self, app, fn_indices: frozenset[int] = frozenset()):
        self.app, self.fn_indices = app, fn_indices

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope.get("method") == "POST" and self._CALLS.match(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.MAX_SCANNED:
                await JSONResponse({"error": "请求体过大"}, status_code=413)(scope, receive, send)
                return
        body = b"".join(chunks)
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None  # not JSON: Gradio answers it
        if (scope["path"].rstrip("/").endswith("queue/join") and isinstance(payload, dict)
                and payload.get("fn_index") not in self.fn_indices):
            await JSONResponse({"error": f"没有这个处理函数：{payload.get('fn_index')!r}"}, status_code=404)(
                scope, receive, send)
            return
        if _non_text_part(payload):
            await JSONResponse({"error": "对话记录只接受文字消息"}, status_code=400)(scope, receive, send)
            return
        bad = _foreign_file(payload)
        if bad is not None:
            name = str(bad).replace("\\", "/").rsplit("/", 1)[-1]
            await JSONResponse({"error": f"只接受通过本页面上传的文件（{name} 不是上传的文件）"},
                               status_code=400)(scope, receive, send)
            return
        await self.app(scope, replayed(body, receive), send)


def _foreign_file(value, depth: int = 0):
    """The first file path in a Gradio payload that is not inside Gradio's upload folder, or None."""
    if depth > 20:
        return None
    if isinstance(value, dict):
        path = value.get("path")
        if isinstance(path, str):  # a FileData, or a file named inside any other value
            resolved = Path(path).resolve() if "://" not in path else None
            if resolved is None or Path(get_upload_folder()).resolve() not in resolved.parents:
                return path
        for item in value.values():
            found = _foreign_file(item, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _foreign_file(item, depth + 1)
            if found is not None:
                return found
    return None


def _non_text_part(value, depth: int = 0) -> bool:
    """Whether a chat message in a Gradio payload has a content part other than text."""
    if depth > 20:
        return False
    if isinstance(value, dict):
        if "role" in value and isinstance(value.get("content"), (list, dict)):
            parts = value["content"] if isinstance(value["content"], list) else [value["content"]]
            if any(not (isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text")) for p in parts):
                return True
        return any(_non_text_part(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_non_text_part(v, depth + 1) for v in value)
    return False


class ClientWindow:
    """What each client spent in the last `window_s` seconds, against a limit: the budgets below."""

    def __init__(self, limit: float, window_s: float, clock=time.time):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._spent: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, amount: float = 1.0) -> bool:
        """Counts `amount` for the client; False (and nothing counted) when it would pass the limit."""
        now = self.clock()
        with self._lock:
            spent = self._spent.setdefault(client, deque())
            while spent and spent[0][0] < now - self.window_s:
                spent.popleft()
            if sum(n for _, n in spent) + amount > self.limit:
                return False
            spent.append((now, amount))
            if len(self._spent) > 10_000:  # forget the quiet clients rather than grow without end
                for key in [k for k, v in self._spent.items() if not v or v[-1][0] < now - self.window_s]:
                    del self._spent[key]
            return True


class AskBudget:
    """Answers and searches cost CPU (up to seconds for a long follow-up): each client may ask at most
    `per_minute` of them a minute, through the JSON API or the Gradio page (429 past that). Counted per
    process: with `--workers N` a client may ask N times as many."""

    def __init__(self, app, per_minute: int, gradio_fns: frozenset[int], gradio_names: frozenset[str],
                 clock=time.time):
        self.app = app
        self.window = ClientWindow(per_minute, 60.0, clock)
        self.fns, self.names = gradio_fns, gradio_names  # the Gradio handlers that answer or search

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope.get("method") == "POST"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "").rstrip("/")
        body = None
        costly = path in ("/api/ask", "/api/search") or any(
            path.endswith(f"/{route}/{name}") for name in self.names for route in ("call", "run", "api"))
        if not costly and path.endswith("/queue/join"):  # the page calls handlers by index: read which
            body, receive = await _read_all(receive)
            try:
                costly = json.loads(body or b"null").get("fn_index") in self.fns
            except (ValueError, AttributeError):
                costly = False
        if costly and not self.window.take((scope.get("client") or ("",))[0]):
            await JSONResponse({"error": f"提问过于频繁：每分钟最多 {self.window.limit:g} 次，请稍后再试"},
                               status_code=429)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_all(receive):
    """The request's body, and a receive that gives it again to the app."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return body, replayed(body, receive)


class UploadBudget:
    """Gradio's upload route takes files before any password is asked (the 知识库 and 评测 tabs upload
    first): each client may send at most `mb_per_hour` through it an hour (429 past that, 411 without a
    Content-Length), and uploaded files still there after `keep_minutes` are deleted, so no client can fill
    the disk. Counted per process: with `--workers N` a client may send N times as much."""

    ROUTE = re.compile(r"^/gradio_api/upload/?$")
    SWEEP_EVERY_S = 60.0
    WINDOW_S = 3600.0

    def __init__(self, app, mb_per_hour: float, keep_minutes: float, folder: Path | None = None, clock=time.time):
        self.app = app
        self.budget = int(mb_per_hour * 1024 * 1024)
        self.window = ClientWindow(self.budget, self.WINDOW_S, clock)
        self.keep_s = keep_minutes * 60
        self.folder = folder
        self.clock = clock
        self._lock = threading.Lock()
        self._swept = 0.0

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope.get("method") == "POST" and self.ROUTE.match(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        self._sweep_now_and_then()
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if not length.isdigit():
            await JSONResponse({"error": "上传请求须带 Content-Length"}, status_code=411)(scope, receive, send)
            return
        client = (scope.get("client") or ("",))[0]
        if not self.window.take(client, int(length)):
            await JSONResponse({"error": f"上传过多：每小时最多 {self.budget / 2**20:g} MB，请稍后再试"},
                               status_code=429)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _sweep_now_and_then(self) -> None:
        now = self.clock()
        with self._lock:
            if now - self._swept < self.SWEEP_EVERY_S:
                return
            self._swept = now
        threading.Thread(target=self.sweep, name="ipkb-upload-sweep", daemon=True).start()

    def sweep(self) -> int:
        """Deletes uploaded files older than keep_minutes; how many."""
        folder = Path(self.folder or get_upload_folder())
        cutoff, deleted = self.clock() - self.keep_s, 0
        for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
            try:
                if path.stat().st_mtime >= cutoff:
                    continue  # recent, or a folder an upload is being written into right now
                if path.is_file():
                    path.unlink()
                    deleted += 1
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            except OSError:
                pass  # gone already, or in use: the next sweep
        return deleted
