"""The HTTP API (/api/ask, /api/search, /api/health, /files/{doc_id}; /openapi.json and /docs)
with the Gradio UI mounted at /.
(No `from __future__ import annotations` here: FastAPI reads the request models from the endpoints'
annotations, and those models are made per app, with its settings' limits.)"""
import json
import mimetypes
import re
from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from gradio.utils import get_upload_folder

from kb.core.errors import KbError
from kb.core.settings import Settings
from kb.store.generations import current_generation
from web import render
from web.requests import ApiError, JsonBodies, error_message, history_from, replayed, request_models
from web.sanitize import html_page
from web.service import KnowledgeService
from web.ui import THEME, build_ui

DESCRIPTION = """IPKB 知识产权政策知识库的 JSON API。错误一律为 `{"error": "…"}`：400 请求体不是合法的 JSON 或不是
JSON 对象，413 请求体超过 max_body_kb，422 字段缺失、过长或取值无效（`字段: 原因`）。"""
ERRORS = {status: {"model": ApiError, "description": description,
                   "content": {"application/json": {"example": {"error": example}}}}
          for status, description, example in (
              (400, "请求体不是合法的 JSON，或不是 JSON 对象", "请求体不是合法的 JSON"),
              (413, "请求体超过 max_body_kb", "请求体过大（上限 64 KB）"),
              (422, "字段缺失、过长或取值无效", "filters.date_from: 应为日期 YYYY-MM-DD，或其前缀 YYYY、YYYY-MM"))}



def _decoded(path: Path) -> str:
    """An HTML file's text: UTF-8, else the encoding charset-normalizer finds (GBK pages are common)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        return str(best) if best is not None else data.decode("utf-8", errors="replace")

def create_app(settings: Settings, service: KnowledgeService | None = None) -> FastAPI:
    service = service or KnowledgeService(settings)
    # Swagger UI from the fastapi-offline package's own copy: no CDN (FastAPI's default page loads one)
    api = FastAPIOffline(title="IPKB", description=DESCRIPTION, version="1", docs_url="/docs", redoc_url=None,
                         static_url="/docs-static", swagger_ui_parameters={"validatorUrl": None})
    api.add_middleware(JsonBodies, limit_kb=settings.web.max_body_kb)
    AskRequest, SearchRequest = request_models(settings)

    @api.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        status, message = error_message(list(exc.errors()))
        return JSONResponse({"error": message}, status_code=status)

    @api.post("/api/ask", responses={200: {"description": "Answer JSON：answer、refused、citations、passages…（见 README）"},
                                     **ERRORS}, summary="问答：带出处的答案")
    async def api_ask(body: AskRequest):
        history = history_from([m.model_dump() for m in body.history])
        places = service.places
        try:
            filters = body.filters.to_filters(places) if body.filters else None
            if body.region and not places.normalise(body.region):
                raise ValueError(f"region: 无法识别的地名“{body.region}”")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        try:
            answer = await _in_thread(service.ask, body.question, history, filters, body.region or "")
        except (KbError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return answer.to_json()

    @api.post("/api/search", responses={200: {"description": '{"query", "passages": [{rank, score, text, title, '
                                                             'doc_number, …}]}（见 README）'}, **ERRORS},
              summary="检索：排好序的段落")
    async def api_search(body: SearchRequest):
        try:
            filters = body.filters.to_filters(service.places) if body.filters else None
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        passages = await _in_thread(service.search, body.query, body.k, filters)
        return {"query": body.query, "passages": [p.to_json() for p in passages]}

    @api.get("/api/health")
    async def health():
        docs = service.documents()
        worker = getattr(api.state, "worker", None)  # under `--workers`: which worker answered (web/worker.py)
        return {"status": "ok", "documents": len(docs), "chunks": sum(service.chunk_counts().values()),
                "generation": str(current_generation(settings.store.kb_dir).name),
                **({"worker": worker} if worker is not None else {})}

    @api.get("/files/{doc_id}")
    async def source_file(doc_id: str):
        path = service.source_file(doc_id)
        if path is None:
            return JSONResponse({"error": "文件不存在"}, status_code=404)
        if path.suffix.lower() in (".html", ".htm"):  # rendered, sanitised (web/sanitize.py), and sandboxed
            page = html_page(await _in_thread(_decoded, path), path.name)
            return HTMLResponse(page, headers={"X-Content-Type-Options": "nosniff",
                                               "Content-Security-Policy": "sandbox; default-src 'none'"})
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind != "application/pdf":  # never let a source HTML file run in our origin
            kind = "text/plain; charset=utf-8" if path.suffix.lower() in (".txt", ".md", ".html", ".htm") else kind
        headers = {"X-Content-Type-Options": "nosniff"}
        if kind != "application/pdf":  # a sandboxed PDF would not open in the browser's viewer
            headers["Content-Security-Policy"] = "sandbox"
        return FileResponse(path, media_type=kind, content_disposition_type="inline", filename=path.name,
                            headers=headers)

    ui = build_ui(service).queue(default_concurrency_limit=8)
    # Handlers registered with api_name=False (the browser calls them by index) are not callable by name
    public = {fn.api_name for fn in ui.fns.values() if fn.api_visibility == "public" and isinstance(fn.api_name, str)}
    api.add_middleware(GradioEndpointsByName, public=frozenset(public))
    # File values must name files uploaded to Gradio's upload folder: checked here, before Gradio copies
    # them into its cache, and by Gradio itself (its check runs only for a Blocks that has "launched")
    api.add_middleware(UploadedFilesOnly)
    api.add_middleware(ChinesePage)
    api.state.service = service
    app = gr.mount_gradio_app(api, ui, path="/", theme=THEME, css=render.CSS, footer_links=[],
                              max_file_size=settings.ingest.max_file_bytes, show_error=False)
    ui.has_launched = True  # mounted, Gradio skips its "was this file uploaded?" check unless this is set
    return app


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
    """Refuses (400) a Gradio call whose data names a file outside Gradio's upload folder:
    `{"path": "/etc/passwd"}` or a URL given as the value of a file input."""

    _CALLS = re.compile(r"^/gradio_api/(?:queue/join|call/v2/[^/]+|call/[^/]+|run/[^/]+|api/[^/]+)/?$")
    MAX_SCANNED = 4 * 1024 * 1024  # bodies this large are not Gradio calls of this app: refused

    def __init__(self, app):
        self.app = app

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
            bad = _foreign_file(json.loads(body or b"null"))
        except ValueError:
            bad = None  # not JSON: Gradio answers it
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
        if isinstance(path, str) and (value.get("meta") or "orig_name" in value or "url" in value):
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


async def _in_thread(fn, *args):
    import anyio

    return await anyio.to_thread.run_sync(lambda: fn(*args))
