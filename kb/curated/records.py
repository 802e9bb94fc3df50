"""Curated answers (标准口径): approved wording for frequent questions, tied to the passages it rests on.

A source is a document's file name and a quote from its text, with the quote's content hash: never a chunk
number, so an entry survives re-indexing and notices when its document changes. Plain data, pure helpers."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")

# why an entry is 待复核 (the code, and what people read)
FLAG_CHANGED = "changed"
FLAG_DELETED = "deleted"
FLAG_EXPIRED = "expired"
FLAG_SUPERSEDED = "superseded"
FLAG_REVIEW_DUE = "review_due"
FLAG_LABELS = {
    FLAG_CHANGED: "依据文件内容已变更，引用原文已不在文件中",
    FLAG_DELETED: "依据文件已从知识库删除",
    FLAG_EXPIRED: "依据文件已过期失效",
    FLAG_SUPERSEDED: "依据文件已被取代或废止",
    FLAG_REVIEW_DUE: "已到复核日期",
}


def squeeze(text: str) -> str:
    """The text as quotes are compared: NFKC, no whitespace (the page breaks and line wraps of the source
    files are not part of what a quote says)."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or ""))


def quote_hash(quote: str) -> str:
    return hashlib.sha256(squeeze(quote).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class CuratedSource:
    file: str  # the document's file name in the knowledge base
    quote: str  # text found in that document
    hash: str = ""  # quote_hash(quote), filled in by `make`

    @classmethod
    def make(cls, file: str, quote: str) -> CuratedSource:
        quote = _SPACE.sub(" ", quote or "").strip()
        return cls(file=(file or "").strip(), quote=quote, hash=quote_hash(quote))

    def to_json(self) -> dict:
        return {"file": self.file, "quote": self.quote}


@dataclass(frozen=True)
class CuratedEntry:
    question: str
    answer: str
    sources: tuple[CuratedSource, ...]
    approved_by: str
    approved_at: str  # yyyy-mm-dd
    variants: tuple[str, ...] = ()
    review_date: str = ""  # yyyy-mm-dd: flagged 待复核 from that day
    id: int = 0  # the store's
    hits: int = 0  # how often it was served
    flags: tuple[str, ...] = ()  # FLAG_* codes, worked out against the current knowledge base

    @property
    def questions(self) -> list[str]:
        return [self.question, *self.variants]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def to_json(self, with_state: bool = False) -> dict:
        """The import/export line (`with_state`: plus id, hits and flags, as the API lists entries)."""
        data = {"question": self.question, "variants": list(self.variants), "answer": self.answer,
                "sources": [s.to_json() for s in self.sources], "approved_by": self.approved_by,
                "approved_at": self.approved_at, "review_date": self.review_date}
        if with_state:
            data = {"id": self.id, **data, "hits": self.hits, "flags": list(self.flags),
                    "flag_reasons": [FLAG_LABELS[f] for f in self.flags]}
        return data


@dataclass(frozen=True)
class CuratedHit:
    """A curated entry that matched a question: served when not flagged."""

    entry: CuratedEntry
    score: float  # cosine similarity of the question and the entry's closest question or variant
    matched: str = ""  # that question or variant

    def to_json(self) -> dict:
        """The `curated` object of the answer JSON."""
        return {"id": self.entry.id, "approved_by": self.entry.approved_by, "approved_at": self.entry.approved_at}


@dataclass(frozen=True)
class DocumentFacts:
    """What checking a source needs of a document in the knowledge base."""

    file: str
    text: str
    status: str
    title: str = ""
    doc_number: str | None = None
