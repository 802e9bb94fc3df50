"""The HTTP API (/api/ask, /api/search, /api/health, /files/{doc_id}) with the Gradio UI mounted at /."""
from __future__ import annotations

import json
import mimetypes

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from kb.core.errors import KbError
from kb.core.settings import Settings
from kb.store.generations import current_generation
from web import render
from web.requests import filters_error, filters_from, history_from
from web.service import KnowledgeService
from web.ui import THEME, build_ui


def create_app(settings: Settings, service: KnowledgeService | None = None) -> FastAPI:
    service = service or KnowledgeService(settings)
    api = FastAPI(title="IPKB", docs_url=None, redoc_url=None)
    limit = settings.max_body_kb * 1024

    async def body_of(request: Request) -> dict | JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return JSONResponse({"error": f"请求体过大（上限 {settings.max_body_kb} KB）"}, status_code=413)
        raw = b""
        async for part in request.stream():  # bounded even without a Content-Length (chunked bodies)
            raw += part
            if len(raw) > limit:
                return JSONResponse({"error": f"请求体过大（上限 {settings.max_body_kb} KB）"}, status_code=413)
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return JSONResponse({"error": "请求体不是合法的 JSON"}, status_code=400)
        return data if isinstance(data, dict) else JSONResponse({"error": "请求体应为 JSON 对象"}, status_code=400)

    def text_field(data: dict, name: str) -> str | JSONResponse:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            return JSONResponse({"error": f"缺少 {name}"}, status_code=422)
        if len(value) > settings.max_question_chars:
            return JSONResponse({"error": f"{name} 过长（{len(value)}字，上限{settings.max_question_chars}字）"},
                                status_code=422)
        return value

    async def read_request(request: Request, field: str) -> tuple[dict, str] | JSONResponse:
        """The JSON body, its text field and its filters checked; or the error response to send."""
        data = await body_of(request)
        if isinstance(data, JSONResponse):
            return data
        value = text_field(data, field)
        if isinstance(value, JSONResponse):
            return value
        if problem := filters_error(data.get("filters")):
            return JSONResponse({"error": problem}, status_code=422)
        return data, value

    @api.post("/api/ask")
    async def api_ask(request: Request):
        parsed = await read_request(request, "question")
        if isinstance(parsed, JSONResponse):
            return parsed
        data, question = parsed
        try:
            answer = await _in_thread(service.answerer.answer, question, history_from(data.get("history")),
                                      filters_from(data.get("filters")))
        except (KbError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return answer.to_json()

    @api.post("/api/search")
    async def api_search(request: Request):
        parsed = await read_request(request, "query")
        if isinstance(parsed, JSONResponse):
            return parsed
        data, query = parsed
        k = data.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
            return JSONResponse({"error": "k 应为 1 到 50 的整数"}, status_code=422)
        passages = await _in_thread(service.search, query, k, filters_from(data.get("filters")))
        return {"query": query, "passages": [p.to_json() for p in passages]}

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
