"""Typed records shared by ingestion, storage, search and answers.

Everything here is plain data: no I/O, no behaviour beyond small helpers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from kb.core.profile import DocumentProfile
from kb.core.sentences import sentence_spans


@dataclass
class DocumentMeta:
    """Official-document elements (GB/T 9704-2012). Missing ones stay None."""

    title: str
    doc_type: str = "其他"  # 答复, 批复, 法, 条例, 细则, 解释, 规定, 办法, 决定, 措施, 通知, 意见, 报告, 其他
    issuer: str | None = None  # 发文机关
    doc_number: str | None = None  # 发文字号, e.g. 甬市监函〔2019〕25号
    date: str | None = None  # 成文日期, ISO yyyy-mm-dd
    addressee: str | None = None  # 主送
    cc: str | None = None  # 抄送
    printed_by: str | None = None  # 印发机关
    printed_date: str | None = None  # 印发日期, ISO
    contact: str | None = None  # 联系人
    phone: str | None = None  # 联系电话
    category_mark: str | None = None  # 类别标记
    title_from_filename: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document, split along its own headings."""

    chunk_id: str
    doc_id: str
    ordinal: int
    heading_path: list[str]
    pages: list[int]
    start: int  # offsets in the document's cleaned text
    end: int
    text: str  # what people read: the cleaned original
    search_text: str  # what BM25 reads: title and heading path, then text (the embedder reads `text`)
    # (start, end) in `text` of each sentence (kb/core/sentences.py), split once at ingestion: the
    # sentences answers quote and whose vectors ingestion puts in the embedding cache
    sentences: list[tuple[int, int]]


@dataclass
class Document:
    """A cleaned, described, chunked source file, ready for the knowledge base."""

    doc_id: str
    source_path: str
    file_name: str
    kind: str
    content_hash: str
    meta: DocumentMeta
    text: str
    page_count: int
    ocr_pages: list[int] = field(default_factory=list)
    encoding: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    profile: DocumentProfile = field(default_factory=DocumentProfile)  # level, region, dates, status


@dataclass
class Passage:
    """A retrieved chunk with its rank, score and the document facts a citation needs."""

    rank: int  # 1-based
    score: float  # fused score (RRF) in hybrid mode, cosine or BM25 score otherwise
    chunk_id: str
    doc_id: str
    text: str
    title: str
    doc_number: str | None
    issuer: str | None
    date: str | None
    doc_type: str
    pages: list[int]
    heading_path: list[str]
    source: str  # file name
    source_path: str
    dense_score: float | None = None  # cosine similarity, when dense retrieval ran
    bm25_score: float | None = None
    profile: DocumentProfile = field(default_factory=DocumentProfile)  # of the passage's document
    # the sentences of `text`: the splitter's, or the chunk's stored ones (Catalogue.passage_for sets
    # them). Not an __init__ argument, so `dataclasses.replace(p, text=…)` never keeps stale spans.
    # Not part of the JSON contract.
    sentence_spans: list[tuple[int, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sentence_spans = sentence_spans(self.text)

    def to_json(self) -> dict:
        """The stable passage object of `python -m kb search --json` and the answer JSON."""
        return {
            "rank": self.rank, "score": round(self.score, 6), "text": self.text, "title": self.title,
            "doc_number": self.doc_number, "date": self.date, "issuer": self.issuer, "doc_type": self.doc_type,
            "pages": self.pages, "section": self.heading_path, "source": self.source,
            "chunk_id": self.chunk_id, "doc_id": self.doc_id,
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 6),
            **profile_fields(self.profile),
        }


def profile_fields(profile: DocumentProfile) -> dict:
    """The document-profile fields every passage and citation carries in JSON."""
    return {"level": profile.level, "region": list(profile.region), "effective_from": profile.effective_from,
            "effective_until": profile.effective_until, "status": profile.status}


@dataclass
class Citation:
    """A passage the answer cites as [n], with what people need to check it."""

    n: int
    text: str  # the exact passage text
    title: str
    doc_number: str | None
    date: str | None
    pages: list[int]
    section: list[str]
    source: str
    chunk_id: str
    sentences: list[int]  # which of the passage's sentences (kb/core/sentences.py) the answer rests on
    spans: list[tuple[int, int]] = field(default_factory=list)  # their offsets in `text`, for highlighting
    doc_id: str = ""
    profile: DocumentProfile = field(default_factory=DocumentProfile)

    def to_json(self) -> dict:
        data = asdict(self)
        del data["profile"]
        data["spans"] = [list(s) for s in self.spans]
        return {**data, **profile_fields(self.profile)}


@dataclass(frozen=True)
class CuratedMark:
    """The curated answer (标准口径, kb/curated) an answer was given, as the answer JSON names it."""

    id: int
    approved_by: str
    approved_at: str

    def to_json(self) -> dict:
        return {"id": self.id, "approved_by": self.approved_by, "approved_at": self.approved_at}


@dataclass
class Answer:
    """What `answer()` returns: the JSON contract shared by the CLI, the HTTP API and the evaluation."""

    question: str
    body: str  # the answer text with [n] markers (or the refusal / notice text)
    refused: bool
    citations: list[Citation]
    passages: list[Passage]
    sources: list[str] = field(default_factory=list)  # "[n] 《标题》（文号）第X页 · section", one per citation
    notices: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    answerer: str = "extractive"  # or "llm", "metadata"
    standalone_question: str = ""  # the question as searched, after resolving the conversation
    flags: list[str] = field(default_factory=list)  # answer sentences without support, for reviewers
    curated: CuratedMark | None = None  # the approved answer (标准口径) the body starts with
    # how much of the question the answer covers (IDF-weighted share of its terms, 0–1; None: refused or not
    # measured): what the knowledge-gap log calls low confidence. Not part of the JSON contract.
    confidence: float | None = None

    @property
    def answer(self) -> str:
        """Body and sources as one text: the `answer` field of the JSON contract."""
        return f"{self.body}\n\n来源：\n" + "\n".join(self.sources) if self.sources else self.body

    def to_json(self) -> dict:
        return {
            "question": self.question, "answer": self.answer, "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
            "notices": self.notices, "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "answerer": self.answerer, "standalone_question": self.standalone_question, "flags": self.flags,
            "body": self.body, "sources": self.sources,
            "curated": self.curated.to_json() if self.curated else None,
        }
