"""The one public entry point for answers: `Answerer.answer(question, history, filters) -> Answer`.

Used alike by the app, the HTTP API, the CLI (`python -m kb ask`) and the evaluation.

1. Resolve the question against the conversation: the LLM's condense prompt when one is
   configured, else carry the previous question along for a follow-up ("那保险呢？").
2. Retrieve passages (hybrid search).
3. Answer: questions about the document itself (文号, 发文机关, 成文日期…) from its metadata;
   otherwise the LLM when configured (streamed), else the extractive answerer.
4. Validate citations; refuse with the configured text when the documents do not answer.
An LLM failure falls back to the extractive answer with a visible notice; no stack trace
ever reaches a user.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterator

from kb.citations import source_line
from kb.embeddings import CachedEmbedder
from kb.extractive import Draft, ExtractiveAnswerer
from kb.llm import LlmClient, LlmError
from kb.prompts import Prompts
from kb.question import analyse, is_follow_up, last_user_question
from kb.records import Answer, Citation, Passage
from kb.retrieval import Filters, Retriever
from kb.sentences import sentence_spans
from kb.settings import Settings
from kb.validation import validate

log = logging.getLogger(__name__)

NOTICE_LLM_FAILED = "大模型服务暂时不可用（{reason}），以下为知识库原文摘录的答案。"
NOTICE_TOO_LONG = "问题过长（{n}字），请精简到{limit}字以内。"
NOTICE_EMPTY = "请输入问题。"

_META_LABELS = {
    "issuer": "发文机关", "doc_number": "发文字号", "date": "成文日期", "printed_date": "印发日期",
    "addressee": "主送", "cc": "抄送", "contact": "联系人",
}


def _chinese_date(iso: str) -> str:
    y, m, d = (int(x) for x in iso.split("-"))
    return f"{y}年{m}月{d}日"


class Answerer:
    def __init__(self, retriever: Retriever, settings: Settings, prompts: Prompts, llm: LlmClient | None = None):
        self.retriever = retriever
        self.settings = settings
        self.prompts = prompts
        self.llm = llm
        # sentence vectors come from the embedding cache (ingestion fills it), else are embedded once
        self._sentence_cache = CachedEmbedder(settings.embed_cache_path, retriever.embedder.id,
                                              lambda: retriever.embedder, settings.embed_batch)
        self.extractive = ExtractiveAnswerer(
            retriever.tokenizer, retriever.idf, embed_query=retriever.encode_query,
            embed_sentences=self._sentence_cache.embed, passages_used=settings.answer_passages,
            document_text=self._document_text,
        )
        retriever.tokenizer.places("宁波")  # load jieba's tag dictionary now, not on the first question

    def _document_text(self, doc_id: str) -> str:
        doc = self.retriever.documents[doc_id]
        return f"{doc.meta.title} {doc.meta.issuer or ''} {doc.text}"

    @classmethod
    def open(cls, settings: Settings) -> Answerer:
        prompts = Prompts.load(settings.prompts_dir)
        retriever = Retriever.open(settings)
        llm = LlmClient(settings, prompts) if settings.llm_base_url and settings.llm_model else None
        return cls(retriever, settings, prompts, llm)

    def close(self) -> None:
        self._sentence_cache.close()
        self.retriever.close()

    # --- the entry points
    def answer(self, question: str, history: list[dict] | None = None, filters: Filters | None = None) -> Answer:
        result = None
        for event in self.stream(question, history, filters):
            if isinstance(event, Answer):
                result = event
        assert result is not None
        return result

    def stream(self, question: str, history: list[dict] | None = None,
               filters: Filters | None = None) -> Iterator[str | Answer]:
        """Text deltas as the answer is written (LLM), then the final, validated Answer."""
        start = time.perf_counter()
        question = (question or "").strip()
        if not question or len(question) > self.settings.max_question_chars:
            notice = NOTICE_EMPTY if not question else NOTICE_TOO_LONG.format(
                n=len(question), limit=self.settings.max_question_chars)
            yield Answer(question=question[:200], answer=notice, refused=True, citations=[], passages=[],
                         notices=[notice], timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0})
            return
        notices: list[str] = []
        standalone = self._standalone(question, history, notices)
        passages = self.retriever.search(standalone, k=max(10, self.settings.top_k), filters=filters,
                                         mode=self.settings.retrieval_mode)
        retrieved = time.perf_counter()
        intent = analyse(question)
        answer: Answer | None = None
        if intent.metadata and passages:
            draft = self._metadata_answer(intent.metadata, passages)
            if draft is not None:
                answer = self._finish(question, standalone, draft, passages, notices)
        if answer is None and self.llm is not None and passages:
            answer = yield from self._llm_answer(question, standalone, passages, notices)
        if answer is None:
            context = standalone if standalone != question else ""
            draft = self.extractive.answer(question, intent, passages, context=context)
            answer = self._finish(question, standalone, draft, passages, notices)
        done = time.perf_counter()
        answer.timings_ms = {"retrieve": (retrieved - start) * 1000, "answer": (done - retrieved) * 1000,
                             "total": (done - start) * 1000}
        yield answer

    # --- steps
    def _standalone(self, question: str, history: list[dict] | None, notices: list[str]) -> str:
        previous = last_user_question(history)
        if not previous:
            return question
        if self.llm is not None:
            try:
                return self.llm.condense(question, history or []) or question
            except LlmError as exc:
                log.warning("condense failed, carrying the previous question along: %s", exc)
                notice = NOTICE_LLM_FAILED.format(reason=exc.reason)
                if notice not in notices:
                    notices.append(notice)
        terms = self.retriever.tokenizer.tokens(question)
        return f"{previous} {question}" if is_follow_up(question, len(terms)) else question

    def _metadata_answer(self, field: str, passages: list[Passage]) -> Draft | None:
        """"这份答复的文号是多少？" — from the metadata of the document the question is about."""
        doc = self.retriever.documents.get(passages[0].doc_id)
        value = getattr(doc.meta, field, None) if doc else None
        if field == "contact" and doc and doc.meta.contact:
            value = doc.meta.contact + (f"，联系电话：{doc.meta.phone}" if doc.meta.phone else "")
        if not value:
            return None
        shown = _chinese_date(value) if field in ("date", "printed_date") else value
        needle = re.sub(r"\s+", "", shown if field != "contact" else doc.meta.contact)
        # cite the chunk that states it, so people can check the original
        for chunk in self.retriever.chunks_of(doc.doc_id):
            text = re.sub(r"\s+", "", chunk.text)
            if needle in text:
                passage = next((p for p in passages if p.chunk_id == chunk.chunk_id), None)
                passage = passage or self.retriever.passage_for(chunk, rank=len(passages) + 1)
                spans = [(s, e) for s, e in sentence_spans(chunk.text)
                         if needle in re.sub(r"\s+", "", chunk.text[s:e])]
                indices = [i for i, span in enumerate(sentence_spans(chunk.text)) if span in spans]
                label = _META_LABELS[field]
                text = f"《{doc.meta.title}》的{label}：{shown}。[1]"
                return Draft(text, [(passage, indices, spans)])
        return None

    def _llm_answer(self, question: str, standalone: str, passages: list[Passage],
                    notices: list[str]) -> Generator[str, None, Answer | None]:
        """Streams the LLM's text; returns the Answer, or None to fall back to the extractive one."""
        given = passages[: self.settings.answer_passages]
        pieces: list[str] = []
        try:
            for piece in self.llm.stream_answer(standalone, given):
                pieces.append(piece)
                yield piece
        except LlmError as exc:
            log.warning("LLM failed, falling back to extractive: %s", exc)
            failed = NOTICE_LLM_FAILED.split("（")[0]
            if not any(n.startswith(failed) for n in notices):  # one notice, even if condensing failed too
                notices.append(NOTICE_LLM_FAILED.format(reason=exc.reason))
            return None
        text = "".join(pieces).strip()
        squeezed, refusal = re.sub(r"\s+", "", text), re.sub(r"\s+", "", self.prompts.refusal)
        if not squeezed or refusal[:10] in squeezed or (len(squeezed) >= 6 and squeezed.rstrip("。.") in refusal):
            answer = self._finish(question, standalone, Draft("", refused=True, reason="the LLM found no answer"),
                                  passages, notices)
            answer.answerer = "llm"
            return answer
        checked = validate(text, given, self.retriever.tokenizer)
        if not checked.cited or not checked.supported:
            # nothing in the answer is tied to a passage that bears it out: not shown as an answer
            why = "no valid citation" if not checked.cited else "no sentence supported by its cited passage"
            draft = Draft("", refused=True, reason=f"the LLM answer was withheld ({why})")
            answer = self._finish(question, standalone, draft, passages, notices)
            answer.flags = answer.flags + [f"LLM answer withheld ({why}): {text[:200]}"] + checked.flags
        else:
            cited = [(given[n - 1], sentences, spans) for n, (sentences, spans) in sorted(checked.cited.items())]
            answer = self._finish(question, standalone, Draft(checked.text, cited), passages, notices,
                                  renumbered=False)
            answer.flags = checked.flags
        answer.answerer = "llm"
        return answer

    def _finish(self, question: str, standalone: str, draft: Draft, passages: list[Passage],
                notices: list[str], renumbered: bool = True) -> Answer:
        if draft.refused:
            return Answer(question=question, answer=self.prompts.refusal, refused=True, citations=[],
                          passages=passages, notices=notices, standalone_question=standalone,
                          flags=[f"refused: {draft.reason}"])
        citations, text = [], draft.text
        numbers = {}
        for i, (passage, sentences, spans) in enumerate(draft.cited, start=1):
            # the LLM's own [n] refer to the given passages; keep them, list citations by them
            n = i if renumbered else passages.index(passage) + 1
            numbers[passage.chunk_id] = n
            citations.append(Citation(
                n=n, text=passage.text, title=passage.title, doc_number=passage.doc_number, date=passage.date,
                pages=passage.pages, section=passage.heading_path, source=passage.source,
                chunk_id=passage.chunk_id, sentences=sentences, spans=spans, doc_id=passage.doc_id,
            ))
        sources = "\n".join(f"[{c.n}] {source_line(p)}" for c, (p, _, _) in zip(citations, draft.cited))
        return Answer(question=question, answer=f"{text}\n\n来源：\n{sources}", refused=False, citations=citations,
                      passages=passages, notices=notices, standalone_question=standalone)
