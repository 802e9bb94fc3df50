"""Views of the knowledge base for people: document list, one document's metadata and chunks."""
from __future__ import annotations

from kb.records import Chunk, Document
from kb.store import KnowledgeBase

DOCUMENT_COLUMNS = ["标题", "发文字号", "发文机关", "成文日期", "类型", "页数", "OCR页", "分块数", "文件"]


def document_rows(kb: KnowledgeBase) -> list[list[object]]:
    counts: dict[str, int] = {}
    for chunk in kb.chunks():
        counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    return [
        [d.meta.title, d.meta.doc_number or "", d.meta.issuer or "", d.meta.date or "", d.meta.doc_type,
         d.page_count, len(d.ocr_pages), counts.get(d.doc_id, 0), d.file_name]
        for d in kb.documents()
    ]


def document_choices(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for a picker."""
    return [(f"{d.meta.title}（{d.file_name}）", d.doc_id) for d in kb.documents()]


_META_LABELS = [
    ("title", "标题"), ("doc_type", "类型"), ("issuer", "发文机关"), ("doc_number", "发文字号"),
    ("date", "成文日期"), ("addressee", "主送"), ("cc", "抄送"), ("printed_by", "印发机关"),
    ("printed_date", "印发日期"), ("contact", "联系人"), ("phone", "联系电话"), ("category_mark", "类别标记"),
]


def document_markdown(doc: Document, contains: str = "") -> str:
    """Metadata table, then the chunks (only those containing `contains`, if given)."""
    meta = doc.meta.to_dict()
    lines = [f"### {doc.meta.title}", "", "| 要素 | 内容 |", "|---|---|"]
    lines += [f"| {label} | {meta[key]} |" for key, label in _META_LABELS if meta.get(key)]
    lines.append(f"| 文件 | {doc.file_name}（{doc.page_count} 页{'，OCR 页：' + str(doc.ocr_pages) if doc.ocr_pages else ''}） |")
    shown = [c for c in doc.chunks if contains.strip() in c.text] if contains.strip() else doc.chunks
    lines += ["", f"**分块：{len(shown)} / {len(doc.chunks)}**"]
    lines += [_chunk_markdown(c) for c in shown]
    return "\n".join(lines)


def _chunk_markdown(chunk: Chunk) -> str:
    where = " › ".join(chunk.heading_path) or "（正文开头）"
    pages = "、".join(str(p) for p in chunk.pages)
    body = chunk.text.replace("\n", "  \n")
    return f"\n---\n**{where}** · 第 {pages} 页 · `{chunk.chunk_id}`\n\n{body}"
