"""The one public entry point for answers: `Answerer.answer(question, history, filters) -> Answer`.

Used alike by the app, the HTTP API, the CLI (`python -m kb ask`) and the evaluation.

1. Check the question; resolve it against the conversation: the LLM's condense prompt when
   one is configured, else carry the previous question along for a follow-up ("那保险呢？").
2. Retrieve passages (hybrid search).
3. Ask the strategies in turn, each returning a draft or nothing: the document's metadata
   (文号, 发文机关, 成文日期…), the LLM when configured (streamed), the extractive answerer.
4. Compose the draft into the Answer (kb/answer/compose.py).
An LLM failure falls back to the extractive answer with a visible notice; no stack trace
ever reaches a user.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator

from kb.answer.compose import Draft, compose, refusal
from kb.answer.extractive import ExtractiveAnswerer
from kb.answer.intent import analyse, is_follow_up, last_user_question
from kb.answer.llm import LlmStrategy
from kb.answer.metadata import metadata_draft
from kb.answer.prompts import Prompts
from kb.answer.scope import (
    NOTICE_OTHER_YEAR,
    NOTICE_UNMENTIONED,
    cited_documents,
    off_year,
    question_scope,
    unmentioned_terms,
    validity_notices,
)
from kb.answer.tuning import Tuning
from kb.core.errors import LlmError
from kb.core.records import Answer, Passage
from kb.core.settings import Settings
from kb.models.embeddings import CachedEmbedder
from kb.models.llm import LlmClient
from kb.search.filters import Filters
from kb.search.generation import Generation, SearchModels
from kb.search.retriever import Retriever

log = logging.getLogger(__name__)

NOTICE_LLM_FAILED = "大模型服务暂时不可用（{reason}），以下为知识库原文摘录的答案。"
NOTICE_TOO_LONG = "问题过长（{n}字），请精简到{limit}字以内。"
NOTICE_EMPTY = "请输入问题。"


class Answerer:
    """Answers from one generation; the app makes a new Answerer when it swaps generations.

    `tuning`: the thresholds and weights of the answer heuristics (kb/answer/tuning.py), passed to
    every strategy; the default is the calibrated one."""

    def __init__(self, generation: Generation, settings: Settings, prompts: Prompts, llm: LlmClient | None = None,
                 tuning: Tuning = Tuning()):
        self.generation = generation
        self.settings = settings
        self.prompts = prompts
        self.tuning = tuning
        self.llm = LlmStrategy(llm, prompts, generation.models.tokenizer, tuning) if llm is not None else None
        models, retriever = generation.models, generation.retriever
        # sentence vectors come from the embedding cache (ingestion fills it), else are embedded once
        self._sentence_cache = CachedEmbedder(settings.embed_cache_path, models.embedder.id,
                                              lambda: models.embedder, settings.embed_batch)
        self.extractive = ExtractiveAnswerer(
            models.tokenizer, retriever.idf, embed_query=retriever.encode_query,
            embed_sentences=self._sentence_cache.embed, passages_used=settings.answer_passages,
            document_text=generation.catalogue.document_text, tuning=tuning,
        )
        # load jieba's tag dictionary and the division table now, not on the first question (about 1 s)
        models.tokenizer.places("宁波")
        models.places.places_in("宁波")

    @classmethod
    def open(cls, settings: Settings, models: SearchModels | None = None, tuning: Tuning = Tuning()) -> Answerer:
        prompts = Prompts.load(settings.prompts_dir)
        generation = Generation.open(settings, models)
        llm = LlmClient(settings) if settings.llm_base_url and settings.llm_model else None
        return cls(generation, settings, prompts, llm, tuning)

    @property
    def retriever(self) -> Retriever:
        return self.generation.retriever

    def close(self) -> None:
        self._sentence_cache.close()

    # --- the entry points
    def answer(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
               region: str = "", passages: list[Passage] | None = None) -> Answer:
        """The Answer; with `passages` (from `retrieve`), answered from those without searching again."""
        result = None
        for event in self.stream(question, history, filters, region, passages=passages):
            if isinstance(event, Answer):
                result = event
        assert result is not None
        return result

    def stream(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
               region: str = "", passages: list[Passage] | None = None) -> Iterator[str | Answer]:
        """Text deltas as the answer is written (LLM), then the final, validated Answer.

        `region`: the asker's place ("宁波市", "广州市南沙区"), used when the question names none;
        default: the `region` setting. Given `passages` (already retrieved for this question, e.g. by
        `retrieve`), no search is run."""
        start = time.perf_counter()
        question = (question or "").strip()
        if not question or len(question) > self.settings.max_question_chars:
            notice = NOTICE_EMPTY if not question else NOTICE_TOO_LONG.format(
                n=len(question), limit=self.settings.max_question_chars)
            yield Answer(question=question[:200], body=notice, refused=True, citations=[], passages=[],
                         notices=[notice], timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0})
            return
        notices: list[str] = []
        standalone = self._standalone(question, history, notices)
        catalogue = self.generation.catalogue
        region = region or self.settings.region
        conversation = self._conversation_documents(question, history, filters, region) \
            if standalone != question else ()
        scope = question_scope(standalone, history, filters, region, catalogue, self.generation.models.places,
                               conversation, question)
        notices += scope.notices
        if passages is None:
            passages = self._search(standalone, scope.filters)
        passages, other_year = off_year(standalone, passages, catalogue)
        retrieved = time.perf_counter()
        if scope.refusal or other_year:
            if other_year:
                notices.append(NOTICE_OTHER_YEAR.format(year=other_year))
            draft, by = refusal(scope.refusal or f"no document covers {other_year}"), "extractive"
        else:
            draft, by = yield from self._draft(question, standalone, passages, notices)
        if not draft.refused:
            missing = unmentioned_terms(question, passages[: self.settings.answer_passages],
                                        self.generation.models.tokenizer, self.generation.models.places)
            if missing:  # "商标质押可以吗？" answered with what the documents say, saying they never name it
                draft.text = NOTICE_UNMENTIONED.format(terms="、".join(f"“{t}”" for t in missing)) + draft.text
        answer = compose(question, standalone, draft, passages, notices, self.prompts.refusal, by)
        answer.notices += [n for n in validity_notices(answer.citations) if n not in answer.notices]
        done = time.perf_counter()
        answer.timings_ms = {"retrieve": (retrieved - start) * 1000, "answer": (done - retrieved) * 1000,
                             "total": (done - start) * 1000}
        yield answer

    def retrieve(self, question: str, filters: Filters | None = None, k: int = 0, region: str = "") -> list[Passage]:
        """The passages an answer to `question` reads: the search `stream` runs, in the question's scope
        (kb/answer/scope.py), at least `tuning.min_retrieved` of them, or `k`."""
        scope = question_scope(question, None, filters, region or self.settings.region, self.generation.catalogue,
                               self.generation.models.places)
        passages = [] if scope.refusal else self._search(question, scope.filters, k)
        return off_year(question, passages, self.generation.catalogue)[0]

    def _search(self, text: str, filters: Filters | None, k: int = 0) -> list[Passage]:
        return self.retriever.search(text, k=max(k, self.tuning.min_retrieved, self.settings.top_k), filters=filters,
                                     mode=self.settings.retrieval_mode)

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
                _notice_llm_failed(notices, exc)
        terms = self.generation.models.tokenizer.tokens(question)
        return f"{previous} {question}" if is_follow_up(question, len(terms), self.tuning) else question

    def _conversation_documents(self, question: str, history: list[dict] | None, filters: Filters | None,
                                region: str) -> tuple[str, ...]:
        """For a follow-up ("要交什么材料？"): the documents the conversation is about — those the last
        answer cited, else those that answer the previous question best."""
        cited = cited_documents(history, self.generation.catalogue)
        if cited:
            return cited
        previous = last_user_question(history) or ""
        scope = question_scope(previous, None, filters, region, self.generation.catalogue,
                               self.generation.models.places)
        found = [] if scope.refusal else self._search(previous, scope.filters)
        return tuple(dict.fromkeys(p.doc_id for p in found[: self.tuning.follow_up_documents]))

    def _draft(self, question: str, standalone: str, passages: list[Passage],
               notices: list[str]) -> Generator[str, None, tuple[Draft, str]]:
        """The first strategy that drafts an answer, and its name."""
        intent = analyse(question)
        if intent.metadata:
            draft = metadata_draft(intent.metadata, passages, self.generation.catalogue)
            if draft is not None:
                return draft, "extractive"
        if self.llm is not None and passages:
            try:
                draft = yield from self.llm.draft(standalone, passages[: self.settings.answer_passages])
                return draft, "llm"
            except LlmError as exc:
                log.warning("LLM failed, falling back to extractive: %s", exc)
                _notice_llm_failed(notices, exc)
        context = standalone if standalone != question else ""
        return self.extractive.answer(question, intent, passages, context=context, check_places=False), "extractive"


def _notice_llm_failed(notices: list[str], exc: LlmError) -> None:
    """One notice, even if condensing and answering both failed."""
    if not any(n.startswith(NOTICE_LLM_FAILED.split("（")[0]) for n in notices):
        notices.append(NOTICE_LLM_FAILED.format(reason=exc.reason))
