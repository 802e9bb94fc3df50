"""The one public entry point for answers: `Answerer.answer(question, history, filters) -> Answer`.

Used alike by the app, the HTTP API, the CLI (`python -m kb ask`) and the evaluation.

1. Check the question; resolve it against the conversation: the LLM's condense prompt when
   one is configured — used only when it keeps the follow-up's own terms (保险 of "那保险呢？") —
   else carry the previous question along for a follow-up. Timed on its own (timings_ms.condense).
2. Retrieve passages (hybrid search).
3. Draft: the document's metadata (文号, 发文机关, 成文日期…) when asked for; else the extractive
   answer, and with an LLM configured the LLM's too (streamed sentence by sentence, each once
   validated), and the better of the two stands (`_better`): never worse than extractive.
4. Compose the draft into the Answer (kb/answer/compose.py).
An LLM failure, a withheld or refused LLM answer where the extractive answerer finds support, or
a poorer LLM answer falls back to the extractive answer with a notice saying so; no stack trace
ever reaches a user.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Generator, Iterator

from kb.answer.compose import Draft, compose, refusal
from kb.answer.extractive import ExtractiveAnswerer
from kb.answer.intent import Intent, analyse, has_value, is_follow_up, last_user_question
from kb.answer.llm import LlmStrategy
from kb.answer.metadata import metadata_draft
from kb.answer.prompts import Prompts
from kb.answer.scope import (
    NOTICE_OTHER_YEAR,
    NOTICE_UNMENTIONED,
    Scope,
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
NOTICE_LLM_NOT_USED = "大模型的回答{why}，以下为知识库原文摘录的答案。"
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
        )
        # the words of the documents' titles: what a question names when it has a topic of its own
        self._title_words = {w for d in generation.catalogue.documents.values()
                             for w in models.tokenizer.tokens(d.meta.title or "") if len(w) >= 2}
        # load jieba's tag dictionary and the division table now, not on the first question (about 1 s)
        models.tokenizer.places("宁波")
        models.places.places_in("宁波")

    @classmethod
    def open(cls, settings: Settings, models: SearchModels | None = None, tuning: Tuning = Tuning()) -> Answerer:
        prompts = Prompts.load(settings.answer.prompts_dir, settings.answer.bureau_name, settings.answer.hotline)
        generation = Generation.open(settings, models)
        llm = LlmClient(settings) if settings.llm.llm_gguf or (settings.llm.llm_base_url and settings.llm.llm_model) else None
        return cls(generation, settings, prompts, llm, tuning)

    def _sections(self, doc_id: str) -> list[list[Passage]]:
        catalogue = self.generation.catalogue
        return [[catalogue.passage_for(c) for c in section] for section in catalogue.sections(doc_id)]

    @property
    def retriever(self) -> Retriever:
        return self.generation.retriever

    def close(self) -> None:
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
        notices: list[str] = []
        flags: list[str] = []
        llm_timings: dict[str, float] = {}  # llm_first_token, llm (ms), when the LLM was asked
        standalone = self._standalone(question, history, notices, flags)
        condensed = time.perf_counter()
        catalogue = self.generation.catalogue
        region = region or self.settings.answer.region
        aware = self.settings.answer.scope_aware
        conversation = self._conversation_documents(question, history, filters, region) \
            if aware and standalone != question else ()
        scope = question_scope(standalone, history, filters, region, catalogue, self.generation.models.places,
                               conversation, question, self.tuning) if aware else Scope(filters)
        notices += scope.notices
        given = passages is not None
        if passages is None:  # refused for the place: staff still get the closest passages, of anywhere
            passages = self._search(standalone, filters if scope.refusal else scope.filters)
        passages, other_year = off_year(standalone, passages, catalogue) if aware else (passages, "")
        # The extractive answer the LLM's is weighed against is the one the extractive answerer alone
        # gives: from the rule-based follow-up, whatever the LLM condensed it to
        previous = last_user_question(history)
        carried = self._carry_over(question, previous) if previous and self.llm is not None else standalone
        own = passages
        if carried != standalone and not given and not scope.refusal:
            own = self._search(carried, scope.filters)
            own = off_year(carried, own, catalogue)[0] if aware else own
        retrieved = time.perf_counter()
        if scope.refusal or other_year:
            if other_year:
                notices.append(NOTICE_OTHER_YEAR.format(year=other_year))
            draft, by = refusal(scope.refusal or f"no document covers {other_year}"), "extractive"
        else:
            draft, by = yield from self._draft(question, standalone, passages, notices, llm_timings, carried, own)
            if by == "extractive" and own is not passages:
                passages = own
        if not draft.refused:
            missing = unmentioned_terms(question, passages[: self.settings.answer.answer_passages],
                                        self.generation.models.tokenizer, self.generation.models.places)
            if missing:  # "商标质押可以吗？" answered with what the documents say, saying they never name it
                draft.text = NOTICE_UNMENTIONED.format(terms="、".join(f"“{t}”" for t in missing)) + draft.text
        answer = compose(question, standalone, draft, passages, notices, self.prompts.refusal, by)
        answer.flags += flags
        if aware:
            answer.notices += [n for n in validity_notices(answer.citations) if n not in answer.notices]
        done = time.perf_counter()
        answer.timings_ms = {"condense": (condensed - start) * 1000, "retrieve": (retrieved - condensed) * 1000,
                             "answer": (done - retrieved) * 1000, "total": (done - start) * 1000}
        answer.timings_ms.update(llm_timings)
        yield answer

    def retrieve(self, question: str, filters: Filters | None = None, k: int = 0, region: str = "") -> list[Passage]:
        """The passages an answer to `question` reads: the search `stream` runs, in the question's scope
        (kb/answer/scope.py), at least `tuning.min_retrieved` of them, or `k`."""
        if not self.settings.answer.scope_aware:
            return self._search(question, filters, k)
        scope = question_scope(question, None, filters, region or self.settings.answer.region, self.generation.catalogue,
                               self.generation.models.places, tuning=self.tuning)
        passages = [] if scope.refusal else self._search(question, scope.filters, k)
        return off_year(question, passages, self.generation.catalogue)[0]

    def _search(self, text: str, filters: Filters | None, k: int = 0) -> list[Passage]:
        return self.retriever.search(text, k=max(k, self.tuning.min_retrieved, self.settings.answer.top_k), filters=filters,
                                     mode=self.settings.answer.retrieval_mode)

    # --- steps
    def _standalone(self, question: str, history: list[dict] | None, notices: list[str], flags: list[str]) -> str:
        previous = last_user_question(history)
        if not previous:
            return question
        if self.llm is not None:
            try:
                condensed = self.llm.condense(question, history or [])
                if condensed and self.llm.keeps_terms(question, condensed):
                    return condensed
                # "那保险呢？" → "专利质押贷款的坏账风险由谁承担？": 保险 lost, the rewrite is not used
                flags.append(f"condensed question dropped the follow-up's terms, not used: {condensed}")
            except LlmError as exc:
                log.warning("condense failed, carrying the previous question along: %s", exc)
                _notice_llm_failed(notices, exc)
        return self._carry_over(question, previous)

    def _carry_over(self, question: str, previous: str) -> str:
        """The rule-based standalone question: the previous one carried along when this one is a follow-up."""
        tokenizer = self.generation.models.tokenizer
        terms = tokenizer.tokens(question)
        # "要交什么材料？" names nothing the documents are about (no word of any title, no subject, no
        # place): it leans on the previous question as much as "那保险呢？" does
        words = set(tokenizer.words(question))
        untopical = not (words & self._title_words or words & tokenizer.subjects or tokenizer.places(question)
                         or self.generation.models.places.places_in(question))
        return f"{previous} {question}" if untopical or is_follow_up(question, len(terms), self.tuning) else question

    def _conversation_documents(self, question: str, history: list[dict] | None, filters: Filters | None,
                                region: str) -> tuple[str, ...]:
        """For a follow-up ("要交什么材料？"): the documents the conversation is about — those the last
        answer cited, else those that answer the previous question best."""
        cited = cited_documents(history, self.generation.catalogue)
        if cited:
            return cited
        previous = last_user_question(history) or ""
        scope = question_scope(previous, None, filters, region, self.generation.catalogue,
                               self.generation.models.places, tuning=self.tuning)
        found = [] if scope.refusal else self._search(previous, scope.filters)
        return tuple(dict.fromkeys(p.doc_id for p in found[: self.tuning.follow_up_documents]))

    def _draft(self, question: str, standalone: str, passages: list[Passage], notices: list[str],
               timings: dict[str, float], carried: str = "", own: list[Passage] | None = None,
               ) -> Generator[str, None, tuple[Draft, str]]:
        """The draft that stands, and who wrote it ("extractive" or "llm"). `carried` and `own`: the
        rule-based standalone question and its passages, for the extractive draft (default: the same)."""
        carried, own = carried or standalone, passages if own is None else own
        intent = analyse(question)
        if intent.metadata:
            draft = metadata_draft(intent.metadata, own, self.generation.catalogue)
            if draft is not None:
                return draft, "extractive"
        context = carried if carried != question else ""
        extractive = self.extractive.answer(question, intent, own, context=context, check_places=False)
        if self.llm is None or not passages:
            return extractive, "extractive"
        started = time.perf_counter()
        try:
            draft = yield from self.llm.draft(standalone, passages[: self.settings.answer.answer_passages], timings)
        except LlmError as exc:
            log.warning("LLM failed, falling back to extractive: %s", exc)
            _notice_llm_failed(notices, exc)
            return extractive, "extractive"
        finally:
            timings["llm"] = (time.perf_counter() - started) * 1000
        return self._better(standalone, intent, draft, extractive, notices)

    def _better(self, question: str, intent: Intent, llm: Draft, extractive: Draft,
                notices: list[str]) -> tuple[Draft, str]:
        """The rule "never worse than extractive" (README, Asking; thresholds in Tuning):
        - the LLM refused, or none of its sentences held (withheld): the extractive answer, or the
          refusal when the extractive answerer refuses too;
        - the extractive answerer refused: the LLM's answer, unless the question asks for a kind of
          fact (number, date, amount…) the LLM's answer does not state either;
        - both answered: the LLM's, unless more than `llm_max_dropped` of its sentences were dropped,
          or it misses the asked-for kind of fact the extractive answer states (a list, for "哪些…"), or it covers the
          question's weighted terms by more than `llm_coverage_margin` less than the extractive one."""
        t = self.tuning
        if llm.refused:
            if extractive.refused:
                llm.flags.append(f"extractive answerer refused too: {extractive.reason}")
                return llm, "llm"
            why = "未能通过引文核对" if llm.withheld else "是未找到答案，但知识库原文中有相关内容"
            return self._fallback(llm, extractive, why, notices), "extractive"
        wanted = intent.wants_value
        llm_text, extractive_text = _bare(llm.text), _bare(extractive.text)
        llm_has = not wanted or any(has_value(llm_text, k) for k in wanted)
        if extractive.refused:
            if not llm_has:
                extractive.flags += [f"LLM answer lacks the asked-for {'/'.join(wanted)}: {llm.text[:200]}", *llm.flags]
                return extractive, "extractive"
            return llm, "llm"
        if llm.dropped > t.llm_max_dropped * (llm.supported + llm.dropped):
            return self._fallback(llm, extractive, "有多句没有原文依据", notices), "extractive"
        if not llm_has and any(has_value(extractive_text, k) for k in wanted):
            return self._fallback(llm, extractive, "缺少问题所问的具体内容", notices), "extractive"
        # "哪些企业…": the extractive answer lists them, the LLM's restates the question without the list
        if "list" in intent.asks and has_value(extractive_text, "list") and not has_value(llm_text, "list"):
            return self._fallback(llm, extractive, "缺少问题所问的具体内容", notices), "extractive"
        ours, theirs = self.extractive.coverage(question, llm_text), self.extractive.coverage(question, extractive_text)
        if ours < theirs - t.llm_coverage_margin:
            return self._fallback(llm, extractive, "不如原文摘录完整", notices), "extractive"
        return llm, "llm"

    @staticmethod
    def _fallback(llm: Draft, extractive: Draft, why: str, notices: list[str]) -> Draft:
        notices.append(NOTICE_LLM_NOT_USED.format(why=why))
        extractive.flags += [f"LLM answer not used ({why}): {llm.text[:200] or llm.reason}", *llm.flags]
        return extractive


def _bare(text: str) -> str:
    """Answer text without its [n] markers (they are digits, not facts)."""
    return re.sub(r"\[\d+\]", "", text)


def _notice_llm_failed(notices: list[str], exc: LlmError) -> None:
    """One notice, even if condensing and answering both failed."""
    if not any(n.startswith(NOTICE_LLM_FAILED.split("（")[0]) for n in notices):
        notices.append(NOTICE_LLM_FAILED.format(reason=exc.reason))
