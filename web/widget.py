"""The chat widget for other sites' pages: `<script src="https://ipkb.example/widget.js" defer></script>`
opens a small chat panel (web/static/widget.js: no framework, nothing from a CDN) that streams its
answers from this app (docs/widget.md).

Only pages of the origins in `widget_origins` get it: /widget/config and /widget/chat answer a browser's
cross-origin request only when its `Origin` is on the list, with the CORS headers for that origin alone;
any other origin (or none) gets 403 without them, so its page can read nothing and the script shows
nothing. /widget/chat takes an OpenAI chat body (web/openai_api.py) without a key and answers as
/v1/chat/completions does; each client address may ask `asks_per_minute` questions a minute there, as
on /api/ask (counted apart).
"""
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from kb.core.settings import Settings
from web.middleware import ClientWindow
from web.openai_api import MODEL, OpenAiError, chat_call, read_json, respond
from web.service import KnowledgeService

SCRIPT = Path(__file__).resolve().parent / "static" / "widget.js"
EXAMPLES = ["专利质押贷款出了坏账谁兜底？", "发明专利被侵权有保险吗？", "宁波成立了哪些知识产权联盟？"]
REFUSED = "此网站未获准嵌入本咨询窗口（widget_origins）"


def cors_headers(origin: str) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin", "access-control-allow-methods": "GET, POST",
            "access-control-allow-headers": "content-type", "access-control-max-age": "600"}


def allowed_origin(request: Request, origins: frozenset[str]) -> str | None:
    """The request's Origin when it is on the list (compared as the settings write them: lower case)."""
    origin = request.headers.get("origin", "").strip().lower()
    return origin if origin in origins else None


def widget_config(settings: Settings) -> dict:
    answer = settings.answer
    title = f"{answer.bureau_name.strip()} · 政策咨询" if answer.bureau_name.strip() else "知识产权政策咨询"
    return {"title": title, "examples": EXAMPLES, "hotline": answer.hotline.strip(),
            "max_question_chars": answer.max_question_chars, "model": MODEL}


def add_widget_routes(api: FastAPI, service: KnowledgeService, settings: Settings) -> None:
    origins = frozenset(settings.web.widget_origins)
    window = ClientWindow(settings.web.asks_per_minute, 60.0)

    def refused() -> Response:
        return OpenAiError(403, REFUSED, code="origin_not_allowed", type="permission_error").response({"vary": "Origin"})

    @api.get("/widget.js", include_in_schema=False)
    async def script():
        # the script itself is public; what it asks for is answered only to the allowed origins
        return FileResponse(SCRIPT, media_type="text/javascript; charset=utf-8",
                            headers={"cache-control": "public, max-age=300"})

    @api.options("/widget/{name}", include_in_schema=False)
    async def preflight(name: str, request: Request):
        origin = allowed_origin(request, origins)
        return Response(status_code=204, headers=cors_headers(origin)) if origin else refused()

    # POST: a browser sends Origin with every POST, but not with a GET to its own origin (a site that
    # serves the widget through its own host name, behind its reverse proxy)
    @api.post("/widget/config", include_in_schema=False)
    async def config(request: Request):
        origin = allowed_origin(request, origins)
        if origin is None:
            return refused()
        return JSONResponse(widget_config(settings), headers=cors_headers(origin))

    @api.post("/widget/chat", include_in_schema=False)
    async def chat(request: Request):
        origin = allowed_origin(request, origins)
        if origin is None:
            return refused()
        headers = cors_headers(origin)
        try:
            if not window.take(request.client.host if request.client else ""):
                raise OpenAiError(429, f"提问过于频繁：每分钟最多 {window.limit:g} 次，请稍后再试",
                                  code="rate_limit_exceeded", type="requests")
            call = chat_call(await read_json(request, settings.web.max_body_kb), settings, service, default_model=MODEL)
        except OpenAiError as error:
            return error.response(headers)
        return await respond(service, call, headers)
