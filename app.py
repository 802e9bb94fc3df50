"""IPKB web app (Gradio). Thin: every view comes from kb/.

Run with `make run`, or `python app.py` after `python -m ingest`.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from kb.browse import DOCUMENT_COLUMNS, document_choices, document_markdown, document_rows  # noqa: E402
from kb.settings import Settings, load_settings  # noqa: E402
from kb.store import KnowledgeBase, open_kb  # noqa: E402


def build_app(kb: KnowledgeBase) -> gr.Blocks:
    choices = document_choices(kb)
    docs, chunks = kb.count()

    def show_document(doc_id: str | None, contains: str) -> str:
        doc = kb.document(doc_id) if doc_id else None
        return document_markdown(doc, contains) if doc else "请选择文件。"

    with gr.Blocks(title="IPKB 知识产权政策知识库") as app:
        gr.Markdown(f"# IPKB 知识产权政策知识库\n知识库：{docs} 份文件，{chunks} 个分块。")
        gr.Dataframe(value=document_rows(kb), headers=DOCUMENT_COLUMNS, interactive=False, label="文件列表")
        with gr.Row():
            picker = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="查看文件")
            contains = gr.Textbox(label="只看包含此文字的分块", placeholder="例如：质押融资")
        view = gr.Markdown(show_document(choices[0][1] if choices else None, ""))
        picker.change(show_document, [picker, contains], view, api_name="show_document")
        contains.submit(show_document, [picker, contains], view, api_name=False)
    return app


def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    app = build_app(open_kb(settings.kb_dir))
    app.launch(server_name=settings.host, server_port=settings.port, show_error=True)


if __name__ == "__main__":
    main()
