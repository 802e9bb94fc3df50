"""The admin JSON API of curated answers (标准口径): /api/curated. Every call needs the admin password in
the `X-Admin-Password` header (403 otherwise); entries are the import format plus id, hits and flags.
(No `from __future__ import annotations`: FastAPI reads the body models from the annotations.)"""
import tempfile
from pathlib import Path

from fastapi import FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kb.core.errors import AdminError, KbError


class SourceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = Field(min_length=1, max_length=300, description="知识库中的文件名")
    quote: str = Field(min_length=1, max_length=2000, description="该文件中的原文")


class CuratedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=500)
    variants: list[str] = Field(default_factory=list, max_length=50)
    answer: str = Field(min_length=1, max_length=5000)
    sources: list[SourceBody] = Field(min_length=1, max_length=20)
    approved_by: str = Field(min_length=1, max_length=100)
    approved_at: str = Field("", max_length=10, description="yyyy-mm-dd，默认今天")
    review_date: str = Field("", max_length=10, description="yyyy-mm-dd：到期后待复核")


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jsonl: str = Field(min_length=1, description="JSONL：每行一个条目（导入格式）")


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def add_curated_routes(api: FastAPI, service, run) -> None:
    """`run(fn, *args)`: awaits fn in a worker thread (the app's `_in_thread`)."""

    def refused(exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403 if isinstance(exc, AdminError) else 400)

    @api.get("/api/curated", summary="标准口径：列表（待复核的在前）与文件引用次数")
    async def curated_list(request: Request, x_admin_password: str = Header("")):
        try:
            await run(service.check_admin, x_admin_password, _client(request))
        except AdminError as exc:
            return refused(exc)
        entries = await run(service.curated_entries)
        return {"entries": [e.to_json(with_state=True) for e in entries], "document_hits": service.document_hits()}

    @api.post("/api/curated", summary="标准口径：新增（原文须在所引文件中）")
    async def curated_add(body: CuratedBody, request: Request, x_admin_password: str = Header("")):
        try:
            entry_id = await run(service.save_curated, x_admin_password, body.model_dump(), 0, _client(request))
        except (AdminError, KbError) as exc:
            return refused(exc)
        return {"id": entry_id}

    @api.put("/api/curated/{entry_id}", summary="标准口径：修改")
    async def curated_update(entry_id: int, body: CuratedBody, request: Request, x_admin_password: str = Header("")):
        try:
            await run(service.save_curated, x_admin_password, body.model_dump(), entry_id, _client(request))
        except (AdminError, KbError) as exc:
            return refused(exc)
        return {"id": entry_id}

    @api.delete("/api/curated/{entry_id}", summary="标准口径：删除")
    async def curated_delete(entry_id: int, request: Request, x_admin_password: str = Header("")):
        try:
            deleted = await run(service.delete_curated, x_admin_password, entry_id, _client(request))
        except AdminError as exc:
            return refused(exc)
        return {"deleted": deleted} if deleted else JSONResponse({"error": "没有这个标准口径"}, status_code=404)

    @api.post("/api/curated/import", summary="标准口径：导入 JSONL（全部导入或全部拒绝，指出行号）")
    async def curated_import(body: ImportBody, request: Request, x_admin_password: str = Header("")):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "import.jsonl"
            path.write_text(body.jsonl, encoding="utf-8")
            try:
                ids = await run(service.import_curated, x_admin_password, path, _client(request))
            except (AdminError, KbError) as exc:
                return refused(exc)
        return {"ids": ids}

    @api.get("/api/curated/export", summary="标准口径：导出 JSONL 或 Excel（format=jsonl|xlsx）")
    async def curated_export(request: Request, format: str = "jsonl", x_admin_password: str = Header("")):
        try:
            await run(service.check_admin, x_admin_password, _client(request))
        except AdminError as exc:
            return refused(exc)
        suffix = ".xlsx" if format == "xlsx" else ".jsonl"
        path = Path(tempfile.mkdtemp(prefix="curated-")) / f"标准口径{suffix}"
        await run(service.export_curated, path)
        kind = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if suffix == ".xlsx"
                else "application/x-ndjson")
        return FileResponse(path, media_type=kind, filename=path.name)
