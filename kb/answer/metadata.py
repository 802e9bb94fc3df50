"""Questions about the document itself ("这份答复的文号是多少？") answered from its metadata,
citing the chunk that states it so people can check the original."""
from __future__ import annotations

from kb.answer.compose import Draft
from kb.core.citations import chinese_date
from kb.core.records import Passage
from kb.core.text import squeeze
from kb.store.catalogue import Catalogue

LABELS = {  # validity: kb/answer/metadata.py validity_draft
    "issuer": "发文机关", "doc_number": "发文字号", "date": "成文日期", "printed_date": "印发日期",
    "addressee": "主送", "cc": "抄送", "contact": "联系人",
}


def metadata_draft(field: str, passages: list[Passage], catalogue: Catalogue) -> Draft | None:
    """The value of `field` of the document the best passage is from, or None when it does not state it."""
    if not passages:
        return None
    if field == "validity":
        return validity_draft(passages, catalogue)
    doc = catalogue.documents.get(passages[0].doc_id)
    value = getattr(doc.meta, field, None) if doc else None
    if not value:
        return None
    shown = chinese_date(value) if field in ("date", "printed_date") else value
    needle = squeeze(value if field == "contact" else shown)
    if field == "contact" and doc.meta.phone:
        shown += f"，联系电话：{doc.meta.phone}"
    for chunk in catalogue.chunks_of(doc.doc_id):
        if needle not in squeeze(chunk.text):
            continue
        passage = next((p for p in passages if p.chunk_id == chunk.chunk_id), None)
        passage = passage or catalogue.passage_for(chunk, rank=len(passages) + 1)
        spans = chunk.sentences
        indices = [i for i, (s, e) in enumerate(spans) if needle in squeeze(chunk.text[s:e])]
        text = f"《{doc.meta.title}》的{LABELS[field]}：{shown}。[1]"
        return Draft(text, [(passage, indices, [spans[i] for i in indices])])
    return None


def validity_draft(passages: list[Passage], catalogue: Catalogue) -> Draft | None:
    """"这个办法还有效吗？" — from the profile of the document the best passage is from: since when it is
    in force, until when, its status; citing the passage that states the date (施行, 有效期)."""
    if len({p.doc_id for p in passages}) > 1:
        return None  # which document? only when the question named it (or the conversation is about it)
    doc = catalogue.documents.get(passages[0].doc_id)
    profile = doc.profile if doc else None
    if profile is None or not (profile.effective_from or profile.effective_until):
        return None
    parts = []
    if profile.effective_from:
        parts.append(f"自{chinese_date(profile.effective_from)}起施行")
    if profile.amended:
        parts.append(f"{chinese_date(profile.amended)}修改")
    if profile.effective_until:
        parts.append(f"有效期至{chinese_date(profile.effective_until)}")
    text = f"《{doc.meta.title}》{'，'.join(parts)}；状态：{profile.status}。[1]"
    dates = [d for d in (profile.effective_from, profile.effective_until) if d]
    marks = [chinese_date(d) for d in dates] + [d[:4] for d in dates]
    for chunk in catalogue.chunks_of(doc.doc_id):
        body = squeeze(chunk.text)
        if not any(w in body for w in ("施行", "有效期", "生效")) or not any(squeeze(m) in body for m in marks):
            continue
        passage = next((p for p in passages if p.chunk_id == chunk.chunk_id), None)
        passage = passage or catalogue.passage_for(chunk, rank=len(passages) + 1)
        # (and what it abolished: "《山东省专利保护条例》同时废止" answers "原来的条例还有效吗")
        indices = [i for i, (s, e) in enumerate(chunk.sentences)
                   if any(w in chunk.text[s:e] for w in ("施行", "有效期", "生效", "废止", "失效"))]
        stated = "".join(chunk.text[s:e] for s, e in (chunk.sentences[i] for i in indices))
        text = text.replace("。[1]", f"。原文：“{stated}”[1]") if stated else text
        return Draft(text, [(passage, indices, [chunk.sentences[i] for i in indices])])
    return None
