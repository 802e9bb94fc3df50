"""The one public entry point for answers: `Answerer.answer(question, history, filters) -> Answer`.

Used alike by the app, the HTTP API, the CLI (`python -m kb ask`) and the evaluation.

`stream` checks the question, then runs the answer path's stages over one `Turn` record
(kb/answer/stages.py): condense → scope → retrieve → draft → choose → compose. With an LLM
configured both the extractive and the LLM's draft are made (the LLM's streamed sentence by
sentence, each once validated) and `choose` keeps the better: never worse than extractive. An LLM
failure, a withheld or refused LLM answer where the extractive answerer finds support, or a poorer
LLM answer falls back to the extractive answer with a notice saying so; no stack trace ever
reaches a user. A question that matches a curated answer (标准口径, kb/curated) gets the approved text
first, then the answer from the passages. Timed per part: condense, retrieve (scope and search), answer, total.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from kb.answer.curated_gate import curated_gate
from kb.answer.decision import DecisionModel
from kb.answer.extractive import ExtractiveAnswerer
from kb.answer.llm import LlmStrategy
from kb.answer.prompts import Prompts
from kb.answer.scope import off_year, question_scope
from kb.answer.stages import (
    ChooseStage,
    ComposeStage,
    CondenseStage,
    DraftStage,
    RetrieveStage,
    ScopeStage,
    Turn,
)
from kb.answer.tuning import Tuning
from kb.core.errors import SettingsError
from kb.core.records import Answer, Passage
from kb.core.settings import Settings
from kb.curated.serve import CuratedAnswers
from kb.curated.store import CuratedStore
from kb.models.embeddings import CachedEmbedder
from kb.models.llm import LlmClient
from kb.search.filters import Filters
from kb.search.generation import Generation, SearchModels
from kb.search.retriever import Retriever

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
                                              lambda: models.embedder, settings.models.embed_batch)
        self.extractive = ExtractiveAnswerer(
            models.tokenizer, retriever.idf, embed_query=retriever.encode_query,
            embed_sentences=self._sentence_cache.embed, passages_used=settings.answer.answer_passages,
            document_text=generation.catalogue.document_text, sections=self._sections, tuning=tuning,
            # the decision reads the retrieval scores of the learned ranker it was trained with: with RRF fusion
            # (ranker = "rrf", or no ranker model) or one ranking alone the rules decide
            decision=DecisionModel.load(settings.answer.decision_model)
            if settings.answer.decision == "learned" and settings.answer.retrieval_mode == "hybrid"
            and settings.answer.ranker == "learned" and retriever.ranker is not None else None,
            places_in=models.places.places_in,
        )
        # curated answers (标准口径) of this knowledge base, checked against this generation's documents
        self.curated = CuratedAnswers(CuratedStore.of(settings.store.kb_dir), generation.catalogue.documents.values(),
                                      retriever.encode_query, settings.answer.status_date,
                                      compatible=curated_gate(models.tokenizer.places))
        # the words of the documents' titles: what a question names when it has a topic of its own
        self._title_words = {w for d in generation.catalogue.documents.values()
                             for w in models.tokenizer.tokens(d.meta.title or "") if len(w) >= 2}
        # load jieba's tag dictionary and the division table now, not on the first question (about 1 s)
        models.tokenizer.places("宁波")
        models.places.places_in("宁波")
        home = settings.answer.home_region
        if home and models.places.normalise(home) is None:
            raise SettingsError(f"setting home_region = {home!r}: not one place of the division table "
                                "(e.g. 浙江省宁波市, 广州市南沙区)")

    @classmethod
    def open(cls, settings: Settings, models: SearchModels | None = None, tuning: Tuning = Tuning()) -> Answerer:
        prompts = Prompts.load(settings.answer.prompts_dir, settings.answer.bureau_name, settings.answer.hotline)
        generation = Generation.open(settings, models)
        llm = LlmClient(settings) if settings.llm.llm_gguf or (settings.llm.llm_base_url and settings.llm.llm_model) else None
        return cls(generation, settings, prompts, llm, tuning)

    def _sections(self, doc_id: str) -> list[list[Passage]]:
        catalogue = self.generation.catalogue
        return [[catalogue.passage_for(c) for c in section] for section in catalogue.sections(doc_id)]

    def stages(self) -> Stages:
        """The answer path over this answerer's strategies and settings (a few small objects, made per
        question: a strategy swapped on the answerer, as tests do, is the one used)."""
        models, catalogue = self.generation.models, self.generation.catalogue
        aware, used = self.settings.answer.scope_aware, self.settings.answer.answer_passages
        return Stages(
            condense=CondenseStage(models.tokenizer, models.places, self._title_words, self.tuning, self.llm),
            scope=ScopeStage(catalogue, models.places, self._search, self.tuning, aware),
            retrieve=RetrieveStage(catalogue, self._search, self.tuning, aware),
            draft=DraftStage(self.extractive, catalogue, used, self.llm),
            choose=ChooseStage(self.extractive.coverage, self.tuning),
            compose=ComposeStage(models.tokenizer, models.places, self.prompts.refusal, used, aware),
        )

    @property
    def retriever(self) -> Retriever:
        return self.generation.retriever

    def close(self) -> None:
        self.curated.store.close()
        self._sentence_cache.close()
        self.generation.close()

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
        if not question or len(question) > self.settings.answer.max_question_chars:
            notice = NOTICE_EMPTY if not question else NOTICE_TOO_LONG.format(
                n=len(question), limit=self.settings.answer.max_question_chars)
            yield Answer(question=question[:200], body=notice, refused=True, citations=[], passages=[],
                         notices=[notice], timings_ms={"retrieve": 0.0, "answer": 0.0, "total": 0.0})
            return
        stages = self.stages()
        region, home = self.asker_region(region)
        turn = Turn(question, history, filters, region, home=home, given=passages)
        turn = stages.condense.run(turn)
        condensed = time.perf_counter()
        turn = stages.retrieve.run(stages.scope.run(turn))
        if turn.home and turn.scope.place:
            # answered for the home place first; from every document when its documents do not answer
            turn = stages.draft.extractive_draft(turn)
            if turn.extractive.refused:
                turn = stages.retrieve.run(stages.scope.run(replace(turn, region="", home=False, extractive=None,
                                                                    from_metadata=False)))
        retrieved = time.perf_counter()
        turn = yield from stages.draft.run(turn)  # the one stage that streams: the LLM's sentences as they hold
        turn = stages.compose.run(stages.choose.run(turn))
        answer = turn.answer
        if not answer.refused:
            answer.confidence = self.extractive.coverage(turn.standalone or question, answer.body)
        answer = self.curated.apply(turn.standalone or question, answer)
        done = time.perf_counter()
        answer.timings_ms = {"condense": (condensed - start) * 1000, "retrieve": (retrieved - condensed) * 1000,
                             "answer": (done - retrieved) * 1000, "total": (done - start) * 1000, **turn.timings}
        yield answer

    def asker_region(self, region: str) -> tuple[str, bool]:
        """The place a question is answered for when it names none, and whether it is the home place:
        the asker's (`region`), else the `region` setting, else the `home_region` setting."""
        region = region or self.settings.answer.region
        if region or not self.settings.answer.home_region:
            return region, False
        return self.settings.answer.home_region, True

    def retrieve(self, question: str, filters: Filters | None = None, k: int = 0, region: str = "") -> list[Passage]:
        """The passages an answer to `question` reads: the search `stream` runs, in the question's scope
        (kb/answer/scope.py), at least `tuning.min_retrieved` of them, or `k`. A question no document
        can answer for its place gets none (`stream` shows the closest of anywhere)."""
        if not self.settings.answer.scope_aware:
            return self._search(question, filters, k)
        region, home = self.asker_region(region)
        home = home and not self.generation.models.places.places_in(question)  # the question's own place decides
        scope = question_scope(question, None, filters, region, self.generation.catalogue,
                               self.generation.models.places, tuning=self.tuning)
        if home and scope.place:  # the home place's documents first, then the others'
            found = [] if scope.refusal else self._search(question, scope.filters, k)
            passages = found or self._search(question, filters, k)
        else:
            passages = [] if scope.refusal else self._search(question, scope.filters, k)
        return off_year(question, passages, self.generation.catalogue)[0]

    def _search(self, text: str, filters: Filters | None, k: int = 0) -> list[Passage]:
        return self.retriever.search(text, k=max(k, self.tuning.min_retrieved, self.settings.answer.top_k), filters=filters,
                                     mode=self.settings.answer.retrieval_mode)


@dataclass(frozen=True)
class Stages:
    """The answer path, in the order `Answerer.stream` runs it (kb/answer/stages.py)."""

    condense: CondenseStage
    scope: ScopeStage
    retrieve: RetrieveStage
    draft: DraftStage
    choose: ChooseStage
    compose: ComposeStage
