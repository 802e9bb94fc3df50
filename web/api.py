"""The HTTP API (/api/ask, /api/search, /api/health, /files/{doc_id}; /openapi.json and /docs)
with the Gradio UI mounted at /.
(No `from __future__ import annotations` here: FastAPI reads the request models from the endpoints'
annotations, and those models are made per app, with its settings' limits.)"""
import mimetypes
from urllib.parse import quote
from pathlib import Path

import gradio as gr
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline

from kb.core.errors import KbError, LoadError
from kb.core.settings import Settings
from web import render
from web.curated_api import add_curated_routes
from web.middleware import (AskBudget, ChinesePage, GradioEndpointsByName, SecurityHeaders, UploadBudget,
                            UploadedFilesOnly)
from web.openai_api import add_openai_routes
from web.requests import ApiError, JsonBodies, error_message, history_from, request_models
from web.sanitize import html_page
from web.service import KnowledgeService
from web.ui import THEME, build_ui
from web.widget import add_widget_routes

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

def _text_of(path: Path) -> str:
    """A text file decoded as ingestion decodes it (BOM, UTF-8, GB18030, else charset-normalizer)."""
    from ingest.loaders import decode_text

    try:
        return decode_text(path.read_bytes())[0]
    except LoadError:
        return path.read_bytes().decode("utf-8", errors="replace")


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

    add_curated_routes(api, service, _in_thread)  # /api/curated (web/curated_api.py)

    @api.get("/api/health")
    async def health():
        docs = service.documents()
        worker = getattr(api.state, "worker", None)  # under `--workers`: which worker answered (web/worker.py)
        return {"status": "ok", "documents": len(docs), "chunks": sum(service.chunk_counts().values()),
                "generation": service.generation_path.name,
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
        if path.suffix.lower() in (".txt", ".md"):  # served as UTF-8 whatever the file's own encoding (GBK…)
            text = await _in_thread(_text_of, path)
            return Response(text, media_type="text/plain; charset=utf-8",
                            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                                     "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.name)}"})
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind != "application/pdf":  # never let a source HTML file run in our origin
            kind = "text/plain; charset=utf-8" if path.suffix.lower() in (".txt", ".md", ".html", ".htm") else kind
        headers = {"X-Content-Type-Options": "nosniff"}
        if kind != "application/pdf":  # a sandboxed PDF would not open in the browser's viewer
            headers["Content-Security-Policy"] = "sandbox"
        return FileResponse(path, media_type=kind, content_disposition_type="inline", filename=path.name,
                            headers=headers)

    add_openai_routes(api, service, settings)  # /v1/chat/completions, /v1/models (web/openai_api.py)
    add_widget_routes(api, service, settings)  # /widget.js and what it asks (web/widget.py)
    ui = build_ui(service).queue(default_concurrency_limit=8)
    # Handlers registered with api_name=False (the browser calls them by index) are not callable by name
    public = {fn.api_name for fn in ui.fns.values() if fn.api_visibility == "public" and isinstance(fn.api_name, str)}
    api.add_middleware(GradioEndpointsByName, public=frozenset(public))
    # the handlers that answer or search, by name and by index (the page calls them by index)
    costly = {i: fn for i, fn in ui.fns.items() if getattr(fn.fn, "__name__", "") in ("ask", "search")}
    api.add_middleware(AskBudget, per_minute=settings.web.asks_per_minute, gradio_fns=frozenset(costly),
                       gradio_names=frozenset(fn.api_name for fn in costly.values() if isinstance(fn.api_name, str)))
    # File values must name files uploaded to Gradio's upload folder: checked here, before Gradio copies
    # them into its cache, and by Gradio itself (its check runs only for a Blocks that has "launched")
    api.add_middleware(UploadedFilesOnly, fn_indices=frozenset(ui.fns))
    api.add_middleware(UploadBudget, mb_per_hour=settings.web.upload_mb_per_hour,
                       keep_minutes=settings.web.upload_keep_minutes)
    api.add_middleware(ChinesePage)
    methods: dict[str, frozenset[str]] = {}  # per path, over its routes (/api/curated has GET and POST)
    for r in api.routes:
        if r.path.startswith("/api/") and getattr(r, "methods", None):
            methods[r.path] = methods.get(r.path, frozenset()) | frozenset(r.methods)
    api.add_middleware(SecurityHeaders, methods=methods)
    api.state.service = service
    app = gr.mount_gradio_app(api, ui, path="/", theme=THEME, css=render.CSS, footer_links=[],
                              max_file_size=settings.ingest.max_file_bytes, show_error=False)
    ui.has_launched = True  # mounted, Gradio skips its "was this file uploaded?" check unless this is set
    return app


async def _in_thread(fn, *args):
    import anyio

    return await anyio.to_thread.run_sync(lambda: fn(*args))
