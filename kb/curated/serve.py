"""Curated answers in the answer path: the entry a question matches, checked against the current knowledge
base, put before the answer from the passages; a flagged (待复核) entry is not served, and the answer says so."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np

from kb.core.records import Answer, CuratedMark, Document
from kb.curated.matcher import DEFAULT_THRESHOLD, Compatible, CuratedMatcher
from kb.curated.records import FLAG_LABELS, CuratedEntry, CuratedHit, DocumentFacts
from kb.curated.sources import document_facts, entry_flags
from kb.curated.store import CuratedStore

MARK = "【标准口径】"
NOTICE_FLAGGED = "本问题的标准口径（第{id}条）待复核：{reasons}，暂不使用；以下按知识库原文作答。"


def curated_body(entry: CuratedEntry, docs: dict[str, DocumentFacts], rest: str) -> str:
    """The approved text marked 标准口径, its sources and approval, then the answer from the passages."""
    named = []
    for s in entry.sources:
        doc = docs.get(s.file)
        title = f"《{doc.title}》" if doc and doc.title else s.file
        named.append(title + (f"（{doc.doc_number}）" if doc and doc.doc_number else ""))
    head = (f"{MARK}{entry.answer}\n依据：{'；'.join(dict.fromkeys(named))}。"
            f"审定：{entry.approved_by}，{entry.approved_at}。")
    return f"{head}\n\n以下为知识库相关内容：\n{rest}" if rest else head


class CuratedAnswers:
    """The curated entries of one knowledge base against one generation's documents."""

    def __init__(self, store: CuratedStore, documents: Iterable[Document], encode: Callable[[str], np.ndarray],
                 today: str = "", threshold: float = DEFAULT_THRESHOLD, compatible: Compatible | None = None):
        self.store = store
        self.docs = document_facts(documents)
        self.matcher = CuratedMatcher(encode, threshold, compatible)
        self.today = today or dt.date.today().isoformat()

    def entries(self) -> list[CuratedEntry]:
        """Every entry with its flags; flagged ones first (what 知识库 and 标准口径 list)."""
        flagged = [replace(e, flags=entry_flags(e, self.docs, self.today)) for e in self.store.entries()]
        return sorted(flagged, key=lambda e: (not e.flags, e.id))

    def match(self, question: str) -> CuratedHit | None:
        return self.matcher.match(question, self.entries())

    def apply(self, question: str, answer: Answer) -> Answer:
        """`answer` with the matching entry before it (JSON `curated`), or with a notice when that entry is flagged."""
        hit = self.match(question)
        if hit is None:
            return answer
        entry = hit.entry
        if entry.flags:
            notice = NOTICE_FLAGGED.format(id=entry.id, reasons="；".join(FLAG_LABELS[f] for f in entry.flags))
            return replace(answer, notices=[notice, *answer.notices])
        rest = "" if answer.refused else answer.body
        return replace(answer, body=curated_body(entry, self.docs, rest), refused=False,
                       curated=CuratedMark(entry.id, entry.approved_by, entry.approved_at))
