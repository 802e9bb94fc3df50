"""The HTTP API (/api/ask, /api/search, /api/health, /files/{doc_id}; /openapi.json and /docs)
with the Gradio UI mounted at /.
(No `from __future__ import annotations` here: FastAPI reads the request models from the endpoints'
annotations, and those models are made per app, with its settings' limits.)"""
import mimetypes

import gradio as gr
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from kb.core.errors import KbError
from kb.core.settings import Settings
from kb.store.generations import current_generation
from web import render
from web.requests import ApiError, JsonBodies, error_message, history_from, request_models
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


def create_app(settings: Settings, service: KnowledgeService | None = None) -> FastAPI:
    service = service or KnowledgeService(settings)
    # Swagger UI from the fastapi-offline package's own copy: no CDN (FastAPI's default page loads one)
    api = FastAPIOffline(title="IPKB", description=DESCRIPTION, version="1", docs_url="/docs", redoc_url=None,
                         static_url="/docs-static", swagger_ui_parameters={"validatorUrl": None})
    api.add_middleware(JsonBodies, limit_kb=settings.max_body_kb)
    AskRequest, SearchRequest = request_models(settings)

    @api.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        status, message = error_message(list(exc.errors()))
        return JSONResponse({"error": message}, status_code=status)

    @api.post("/api/ask", responses={200: {"description": "Answer JSON：answer、refused、citations、passages…（见 README）"},
                                     **ERRORS}, summary="问答：带出处的答案")
    async def api_ask(body: AskRequest):
        history = history_from([m.model_dump() for m in body.history])
        filters = body.filters.to_filters() if body.filters else None
        try:
            answer = await _in_thread(service.answerer.answer, body.question, history, filters)
        except (KbError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return answer.to_json()

    @api.post("/api/search", responses={200: {"description": '{"query", "passages": [{rank, score, text, title, '
                                                             'doc_number, …}]}（见 README）'}, **ERRORS},
              summary="检索：排好序的段落")
    async def api_search(body: SearchRequest):
        filters = body.filters.to_filters() if body.filters else None
        passages = await _in_thread(service.search, body.query, body.k, filters)
        return {"query": body.query, "passages": [p.to_json() for p in passages]}

    @api.get("/api/health")
    async def health():
        docs = service.documents()
        return {"status": "ok", "documents": len(docs), "chunks": sum(service.chunk_counts().values()),
                "generation": str(current_generation(settings.kb_dir).name)}

    @api.get("/files/{doc_id}")
    async def source_file(doc_id: str):
        path = service.source_file(doc_id)
        if path is None:
            return JSONResponse({"error": "文件不存在"}, status_code=404)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind != "application/pdf":  # never let a source HTML file run in our origin
            kind = "text/plain; charset=utf-8" if path.suffix.lower() in (".txt", ".md", ".html", ".htm") else kind
        headers = {"X-Content-Type-Options": "nosniff"}
        if kind != "application/pdf":  # a sandboxed PDF would not open in the browser's viewer
            headers["Content-Security-Policy"] = "sandbox"
        return FileResponse(path, media_type=kind, content_disposition_type="inline", filename=path.name,
                            headers=headers)

    ui = build_ui(service).queue(default_concurrency_limit=8)
    api.state.service = service
    return gr.mount_gradio_app(api, ui, path="/", theme=THEME, css=render.CSS, footer_links=[],
                               max_file_size=settings.max_file_bytes, show_error=False)


async def _in_thread(fn, *args):
    import anyio

    return await anyio.to_thread.run_sync(lambda: fn(*args))
