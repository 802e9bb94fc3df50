"""The answer path as named stages over one record, the `Turn`:

    condense → scope → retrieve → draft → choose → compose

Each stage is a small class built once per Answerer with what it needs (tokenizer, catalogue, a
search function, the strategies) and one method, `run(turn) -> Turn`, that reads the record and
returns a new one: nothing is passed in to be filled. `DraftStage.run` is a generator: it streams
the LLM's validated sentences and returns the Turn. `Answerer.stream` (kb/answer/answerer.py)
runs them in this order; each can be tested alone on a hand-built Turn.

- **condense** (`CondenseStage`): a follow-up resolved against the conversation: the LLM's condense
  prompt when one is configured and its rewrite keeps the follow-up's own terms (保险 of "那保险呢？"),
  else the previous question carried along. Also the rule-based `carried` question, what the
  extractive answer is computed from whatever the LLM condensed.
- **scope** (`ScopeStage`): which documents the question is about (kb/answer/scope.py): its place
  or the asker's, a title it names, the conversation's document.
- **retrieve** (`RetrieveStage`): hybrid search in the scope, then the off-year check; a second
  search for the `carried` question when it differs from the standalone one.
- **draft** (`DraftStage`): the candidate drafts. The document's metadata (文号, 发文机关…) when
  asked for; else the extractive answer, and with an LLM configured the LLM's too. A scope
  refusal (a place no document applies to, a year no document covers) is the only draft then.
- **choose** (`ChooseStage`): both drafts were made; the rule "never worse than extractive" picks
  one (thresholds in kb/answer/tuning.py).
- **compose** (`ComposeStage`): the chosen draft → the `Answer` (kb/answer/compose.py), with the
  subjects no passage mentions named and a notice for each cited document no longer in force.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

from kb.answer.compose import Draft, compose, refusal
from kb.answer.extractive import ExtractiveAnswerer
from kb.answer.intent import Intent, analyse, has_value, is_follow_up, last_user_question
from kb.answer.llm import FirstToken, LlmStrategy
from kb.answer.metadata import metadata_draft
from kb.answer.scope import (
    NOTICE_OTHER_YEAR,
    NOTICE_UNMENTIONED,
    Scope,
    cited_documents,
    home_first,
    off_year,
    question_scope,
    unmentioned_terms,
    validity_notices,
)
from kb.answer.tuning import Tuning
from kb.core.errors import LlmError
from kb.core.places import Places
from kb.core.records import Answer, Passage
from kb.core.tokenizer import Tokenizer
from kb.search.filters import Filters
from kb.store.catalogue import Catalogue

log = logging.getLogger(__name__)

NOTICE_LLM_FAILED = "大模型服务暂时不可用（{reason}），以下为知识库原文摘录的答案。"
NOTICE_LLM_NOT_USED = "大模型的回答{why}，以下为知识库原文摘录的答案。"

# text, filters -> the passages of a search (the Answerer's retriever with its settings)
Search = Callable[[str, Filters | None], list[Passage]]


@dataclass(frozen=True)
class Turn:
    """One question on its way to an Answer. The first four fields are the request; each stage
    fills in its own fields and returns a new Turn (`dataclasses.replace`)."""

    question: str
    history: list[dict] | None = None
    filters: Filters | None = None
    region: str = ""  # the asker's place, already defaulted to the `region` setting (or `home_region`)
    home: bool = False  # `region` is the deployment's home place, not the asker's: all documents if it does not answer
    given: list[Passage] | None = None  # passages already retrieved for this question: no search
    # condense
    standalone: str = ""  # the question as searched and as the LLM reads it
    carried: str = ""  # the rule-based standalone question: what the extractive answer reads
    # scope
    scope: Scope = field(default_factory=lambda: Scope(None))
    # retrieve
    passages: list[Passage] = field(default_factory=list)  # of `standalone`: the LLM's and the answer's
    own: list[Passage] | None = None  # of `carried`, when searched apart: the extractive draft's
    other_year: str = ""  # the year the question names that no retrieved document covers
    # draft
    intent: Intent | None = None
    extractive: Draft | None = None  # the draft without an LLM: metadata, extractive, or a scope refusal
    from_metadata: bool = False  # `extractive` is the document's metadata (文号, 发文机关…): no LLM draft
    llm: Draft | None = None  # the LLM's, when one was asked and answered
    # choose
    draft: Draft | None = None  # the one that stands
    by: str = "extractive"  # who wrote it: "extractive" or "llm"
    # every stage
    notices: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # ms: llm_first_token, llm (when the LLM was asked)
    # compose
    answer: Answer | None = None

    @property
    def refusal(self) -> str:
        """Why the scope leaves no document to answer from ("" when some may)."""
        return self.scope.refusal or (f"no document covers {self.other_year}" if self.other_year else "")


def with_llm_failed(notices: tuple[str, ...], exc: LlmError) -> tuple[str, ...]:
    """The notices with the LLM's failure: once, even if condensing and answering both failed."""
    if any(n.startswith(NOTICE_LLM_FAILED.split("（")[0]) for n in notices):
        return notices
    return (*notices, NOTICE_LLM_FAILED.format(reason=exc.reason))


class CondenseStage:
    """question, history → standalone, carried (+ a notice when the LLM failed, a flag when its
    rewrite was not used)."""

    def __init__(self, tokenizer: Tokenizer, places: Places, title_words: set[str], tuning: Tuning,
                 llm: LlmStrategy | None = None):
        self.tokenizer, self.places, self.title_words, self.tuning, self.llm = tokenizer, places, title_words, tuning, llm

    def run(self, turn: Turn) -> Turn:
        previous = last_user_question(turn.history)
        if not previous:
            return replace(turn, standalone=turn.question, carried=turn.question)
        carried = self.carry_over(turn.question, previous)
        if self.llm is None:
            return replace(turn, standalone=carried, carried=carried)
        try:
            condensed = self.llm.condense(turn.question, turn.history or [])
            if condensed and self.llm.keeps_terms(turn.question, condensed):
                return replace(turn, standalone=condensed, carried=carried)
            # "那保险呢？" → "专利质押贷款的坏账风险由谁承担？": 保险 lost, the rewrite is not used
            flag = f"condensed question dropped the follow-up's terms, not used: {condensed}"
            return replace(turn, standalone=carried, carried=carried, flags=(*turn.flags, flag))
        except LlmError as exc:
            log.warning("condense failed, carrying the previous question along: %s", exc)
            return replace(turn, standalone=carried, carried=carried, notices=with_llm_failed(turn.notices, exc))

    def carry_over(self, question: str, previous: str) -> str:
        """The previous question carried along when this one is a follow-up."""
        terms = self.tokenizer.tokens(question)
        # "要交什么材料？" names nothing the documents are about (no word of any title, no subject, no
        # place): it leans on the previous question as much as "那保险呢？" does
        words = set(self.tokenizer.words(question))
        untopical = not (words & self.title_words or words & self.tokenizer.subjects
                         or self.tokenizer.places(question) or self.places.places_in(question))
        return f"{previous} {question}" if untopical or is_follow_up(question, len(terms), self.tuning) else question


class ScopeStage:
    """standalone, history, filters, region → scope (+ its notices). `aware` False (the `scope_aware`
    setting): the filters as given."""

    def __init__(self, catalogue: Catalogue, places: Places, search: Search, tuning: Tuning, aware: bool = True):
        self.catalogue, self.places, self.search, self.tuning, self.aware = catalogue, places, search, tuning, aware

    def run(self, turn: Turn) -> Turn:
        if not self.aware:
            return replace(turn, scope=Scope(turn.filters))
        if turn.home and self.places.places_in(turn.standalone):
            turn = replace(turn, home=False)  # the question's own place decides, refusals included
        conversation = self.conversation_documents(turn) if turn.standalone != turn.question else ()
        scope = question_scope(turn.standalone, turn.history, turn.filters, turn.region, self.catalogue, self.places,
                               conversation, turn.question, self.tuning)
        if turn.home and scope.place:
            # the home place is the deployment's, not the asker's: nothing to refuse or notice about it
            if scope.refusal:
                return replace(turn, region="", home=False, scope=Scope(turn.filters))
            return replace(turn, scope=replace(scope, notices=[]))
        return replace(turn, scope=scope, notices=(*turn.notices, *scope.notices))

    def conversation_documents(self, turn: Turn) -> tuple[str, ...]:
        """For a follow-up ("要交什么材料？"): the documents the conversation is about — those the last
        answer cited, else those that answer the previous question best."""
        cited = cited_documents(turn.history, self.catalogue)
        if cited:
            return cited
        previous = last_user_question(turn.history) or ""
        scope = question_scope(previous, None, turn.filters, turn.region, self.catalogue, self.places,
                               tuning=self.tuning)
        found = [] if scope.refusal else self.search(previous, scope.filters)
        return tuple(dict.fromkeys(p.doc_id for p in found[: self.tuning.follow_up_documents]))


class RetrieveStage:
    """standalone, carried, scope → passages, own, other_year (+ its notice)."""

    def __init__(self, catalogue: Catalogue, search: Search, tuning: Tuning = Tuning(), aware: bool = True):
        self.catalogue, self.search, self.tuning, self.aware = catalogue, search, tuning, aware

    def run(self, turn: Turn) -> Turn:
        scope = turn.scope
        # refused for the place: staff still get the closest passages, of anywhere
        passages = turn.given if turn.given is not None else \
            self.search(turn.standalone, turn.filters if scope.refusal else scope.filters)
        passages, other_year = self._in_year(turn.standalone, passages)
        if scope.place and turn.given is None:  # the place answered for (home, the asker's, the named): its own first
            passages = home_first(passages, scope.place, self.tuning)
        if other_year:
            return replace(turn, passages=passages, other_year=other_year,
                           notices=(*turn.notices, NOTICE_OTHER_YEAR.format(year=other_year)))
        own = None
        # The extractive answer the LLM's is weighed against is the one the extractive answerer alone
        # gives: from the rule-based follow-up, whatever the LLM condensed it to
        if turn.carried != turn.standalone and turn.given is None and not scope.refusal:
            own = self._in_year(turn.carried, self.search(turn.carried, scope.filters))[0]
            if scope.place:
                own = home_first(own, scope.place, self.tuning)
        return replace(turn, passages=passages, own=own)

    def _in_year(self, text: str, passages: list[Passage]) -> tuple[list[Passage], str]:
        return off_year(text, passages, self.catalogue) if self.aware else (passages, "")


class DraftStage:
    """question, carried, passages, own, intent → the extractive draft and, with an LLM, the LLM's
    (streamed: `run` yields its sentences as they hold). The LLM's failure: a notice, no LLM draft."""

    def __init__(self, extractive: ExtractiveAnswerer, catalogue: Catalogue, answer_passages: int,
                 llm: LlmStrategy | None = None):
        self.extractive_answerer, self.catalogue, self.answer_passages = extractive, catalogue, answer_passages
        self.llm_strategy = llm

    def run(self, turn: Turn) -> Generator[str, None, Turn]:
        if turn.refusal:
            return replace(turn, extractive=refusal(turn.refusal))
        if turn.extractive is None:
            turn = self.extractive_draft(turn)
        if self.llm_strategy is None or not turn.passages:
            return turn
        if turn.from_metadata:  # the document's own metadata answers: no LLM
            return turn
        return (yield from self._llm(turn))

    def extractive_draft(self, turn: Turn) -> Turn:
        """The draft without an LLM: the document's metadata when asked for, else the extractive answer
        (also what the answer path weighs the home place's documents by)."""
        intent = analyse(turn.question)
        own = turn.passages if turn.own is None else turn.own
        if intent.metadata:
            draft = metadata_draft(intent.metadata, own, self.catalogue)
            if draft is not None:  # the passage that states the fact (the letter's header, its signature) leads
                stated = draft.cited[0][0]
                ordered = [stated, *(p for p in turn.passages if p.chunk_id != stated.chunk_id)]
                return replace(turn, intent=intent, extractive=draft, from_metadata=True,
                               passages=[replace(p, rank=i) for i, p in enumerate(ordered, start=1)])
        context = turn.carried if turn.carried != turn.question else ""
        extractive = self.extractive_answerer.answer(turn.question, intent, own, context=context, check_places=False)
        return replace(turn, intent=intent, extractive=extractive)

    def _llm(self, turn: Turn) -> Generator[str, None, Turn]:
        started = time.perf_counter()
        timings = dict(turn.timings)
        events = self.llm_strategy.events(turn.standalone, turn.passages[: self.answer_passages])
        try:
            while True:
                try:
                    event = next(events)
                except StopIteration as done:
                    llm = done.value
                    break
                if isinstance(event, FirstToken):
                    timings["llm_first_token"] = event.ms
                else:
                    yield event
        except LlmError as exc:
            log.warning("LLM failed, falling back to extractive: %s", exc)
            timings["llm"] = (time.perf_counter() - started) * 1000
            return replace(turn, timings=timings, notices=with_llm_failed(turn.notices, exc))
        finally:
            events.close()  # the user left: the request's stream is closed, the server stops generating
        timings["llm"] = (time.perf_counter() - started) * 1000
        return replace(turn, llm=llm, timings=timings)


class ChooseStage:
    """extractive, llm → draft, by (+ a notice when the extractive answer stands over the LLM's), and
    the passages the chosen draft was written from.

    The rule "never worse than extractive" (thresholds in Tuning):
    - the LLM refused, or none of its sentences held (withheld): the extractive answer, or the
      refusal when the extractive answerer refuses too;
    - the extractive answerer refused: the LLM's answer, unless the question asks for a kind of
      fact (number, date, amount…) the LLM's answer does not state either;
    - both answered: the LLM's, unless more than `llm_max_dropped` of its sentences were dropped,
      or it misses the asked-for kind of fact the extractive answer states (a list, for "哪些…"), or it
      covers the question's weighted terms by more than `llm_coverage_margin` less than the extractive one."""

    def __init__(self, coverage: Callable[[str, str], float], tuning: Tuning):
        self.coverage, self.tuning = coverage, tuning  # coverage: ExtractiveAnswerer.coverage

    def run(self, turn: Turn) -> Turn:
        if turn.llm is None:
            chosen, by, notices = turn.extractive, "extractive", turn.notices
        else:
            chosen, by, why = self.better(turn.standalone, turn.intent, turn.llm, turn.extractive)
            notices = (*turn.notices, NOTICE_LLM_NOT_USED.format(why=why)) if why else turn.notices
        # the extractive draft quotes the passages of the carried question, when they were searched apart
        passages = turn.own if by == "extractive" and turn.own is not None else turn.passages
        return replace(turn, draft=chosen, by=by, notices=notices, passages=passages)

    def better(self, question: str, intent: Intent, llm: Draft, extractive: Draft) -> tuple[Draft, str, str]:
        """The draft that stands, who wrote it, and why the LLM's was not used ("" when it was, or
        when both refused)."""
        t = self.tuning
        if llm.refused:
            if extractive.refused:
                return replace(llm, flags=[*llm.flags, f"extractive answerer refused too: {extractive.reason}"]), "llm", ""
            why = "未能通过引文核对" if llm.withheld else "是未找到答案，但知识库原文中有相关内容"
            return _fallback(llm, extractive, why), "extractive", why
        wanted = intent.wants_value
        llm_text, extractive_text = _bare(llm.text), _bare(extractive.text)
        llm_has = not wanted or any(has_value(llm_text, k) for k in wanted)
        if extractive.refused:
            if not llm_has:
                lacks = f"LLM answer lacks the asked-for {'/'.join(wanted)}: {llm.text[:200]}"
                return replace(extractive, flags=[*extractive.flags, lacks, *llm.flags]), "extractive", ""
            return llm, "llm", ""
        why = ""
        if llm.dropped > t.llm_max_dropped * (llm.supported + llm.dropped):
            why = "有多句没有原文依据"
        elif not llm_has and any(has_value(extractive_text, k) for k in wanted):
            why = "缺少问题所问的具体内容"
        # "哪些企业…": the extractive answer lists them, the LLM's restates the question without the list
        elif "list" in intent.asks and has_value(extractive_text, "list") and not has_value(llm_text, "list"):
            why = "缺少问题所问的具体内容"
        elif self.coverage(question, llm_text) < self.coverage(question, extractive_text) - t.llm_coverage_margin:
            why = "不如原文摘录完整"
        return (_fallback(llm, extractive, why), "extractive", why) if why else (llm, "llm", "")


def _fallback(llm: Draft, extractive: Draft, why: str) -> Draft:
    """The extractive draft, flagged with the LLM's answer it stands in for."""
    return replace(extractive, flags=[*extractive.flags, f"LLM answer not used ({why}): {llm.text[:200] or llm.reason}",
                                      *llm.flags])


def _bare(text: str) -> str:
    """Answer text without its [n] markers (they are digits, not facts)."""
    return re.sub(r"\[\d+\]", "", text)


class ComposeStage:
    """draft, passages, notices, flags → answer (timings are the caller's: it knows when it started)."""

    def __init__(self, tokenizer: Tokenizer, places: Places, refusal_text: str, answer_passages: int,
                 aware: bool = True):
        self.tokenizer, self.places, self.refusal_text = tokenizer, places, refusal_text
        self.answer_passages, self.aware = answer_passages, aware

    def run(self, turn: Turn) -> Turn:
        draft = turn.draft
        if not draft.refused:
            missing = unmentioned_terms(turn.question, turn.passages[: self.answer_passages], self.tokenizer,
                                        self.places)
            if missing:  # "商标质押可以吗？" answered with what the documents say, saying they never name it
                draft = replace(draft, text=NOTICE_UNMENTIONED.format(terms="、".join(f"“{t}”" for t in missing))
                                + draft.text)
        answer = compose(turn.question, turn.standalone, draft, turn.passages, list(turn.notices), self.refusal_text,
                         turn.by)
        answer.flags += turn.flags
        if self.aware:
            answer.notices += [n for n in validity_notices(answer.citations) if n not in answer.notices]
        return replace(turn, answer=answer)
