"""/api/curated on the real answer path (the sample letter's knowledge base, e5): an admin adds an entry,
a paraphrase asked through /api/ask gets it with `curated` in the JSON, hits are counted, the export opens
in openpyxl; without the password nothing is shown or changed."""
from __future__ import annotations

import io

import pytest

from tests_support import REPLY_LETTER

pytestmark = pytest.mark.slow

PASSWORD = "curated-admin-pw"
ENTRY = {"question": "宁波对知识产权质押融资有什么风险补偿政策？", "variants": ["知识产权质押融资风险池基金是什么？"],
         "answer": "我市已制订出台《宁波市知识产权质押融资风险池基金管理办法（暂行）》。",
         "sources": [{"file": REPLY_LETTER.name, "quote": "制订出台了《宁波市知识产权质押融资风险池基金管理办法（暂行）》"}],
         "approved_by": "知识产权处", "approved_at": "2026-12-01"}


@pytest.fixture(scope="module")
def client(letter_settings, copy_kb):
    from fastapi.testclient import TestClient

    from web.api import create_app
    from web.service import KnowledgeService

    settings = copy_kb(letter_settings, admin_password=PASSWORD)
    service = KnowledgeService(settings)
    with TestClient(create_app(settings, service)) as http:
        yield http
    service.close()


def test_admin_adds_an_entry_and_a_paraphrase_gets_it(client):
    admin = {"X-Admin-Password": PASSWORD}
    assert client.get("/api/curated").status_code == 403
    assert client.post("/api/curated", json=ENTRY, headers={"X-Admin-Password": "wrong"}).status_code == 403
    bad = {**ENTRY, "sources": [{"file": REPLY_LETTER.name, "quote": "本市设立专利保险补贴"}]}
    refused = client.post("/api/curated", json=bad, headers=admin)
    assert refused.status_code == 400 and "quote not found" in refused.json()["error"]
    entry_id = client.post("/api/curated", json=ENTRY, headers=admin).json()["id"]

    answer = client.post("/api/ask", json={"question": "宁波有知识产权质押融资风险补偿吗"}).json()
    assert answer["curated"] == {"id": entry_id, "approved_by": "知识产权处", "approved_at": "2026-12-01"}
    assert answer["body"].startswith("【标准口径】")
    other = client.post("/api/ask", json={"question": "宁波组织实施了多少项专利导航项目？"}).json()
    assert other["curated"] is None

    listed = client.get("/api/curated", headers=admin).json()
    assert [e["id"] for e in listed["entries"]] == [entry_id] and listed["entries"][0]["hits"] == 1
    assert listed["entries"][0]["flags"] == [] and listed["document_hits"][REPLY_LETTER.name] >= 2

    from openpyxl import load_workbook

    sheet = client.get("/api/curated/export?format=xlsx", headers=admin)
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.values)
    assert rows[1][0] == ENTRY["question"] and rows[1][3] == REPLY_LETTER.name
    lines = client.get("/api/curated/export", headers=admin).text.splitlines()
    assert client.post("/api/curated/import", json={"jsonl": lines[0]}, headers=admin).json()["ids"] == [entry_id + 1]
    assert client.delete(f"/api/curated/{entry_id + 1}", headers=admin).json() == {"deleted": True}
