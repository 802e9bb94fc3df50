"""The real Gradio app on 127.0.0.1, called through gradio_client."""
from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from gradio_client import Client

from app import build_app
from ingest.build import build
from kb.settings import Settings
from kb.store import open_kb

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory, embed_cache):
    settings = replace(Settings(), kb_dir=tmp_path_factory.mktemp("kb"), embed_cache=embed_cache)
    assert not build([REPO / "data" / "corpus"], settings, progress=False).failed
    kb = open_kb(settings.kb_dir)
    app = build_app(kb)
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), kb
    finally:
        app.close()


def test_document_view_shows_metadata_and_chunks(client):
    c, kb = client
    doc_id = kb.documents()[0].doc_id
    page = c.predict(doc_id, "", api_name="/show_document")
    assert "甬市监函〔2019〕25号" in page and "刘正义委员" in page
    assert "下一步 › 1、加强知识产权创造" in page
    filtered = c.predict(doc_id, "风险池基金", api_name="/show_document")
    assert "风险池基金" in filtered and "分块：2 / " in filtered
