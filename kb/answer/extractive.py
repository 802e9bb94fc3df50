"""The default answerer: quote the sentences of the top passages that answer the question.

Each sentence of the top passages is scored by
  - coverage: the IDF-weighted share of the question's terms it contains (the document
    title and its section heading count at a lower weight), and
  - dense similarity to the question (e5 over sentences, through the embedding cache),
  - plus a bonus when it holds the kind of fact the question asks for (number, date…).
The best sentences, in document order, become the answer, each followed by [n].

It refuses — returns a Draft with `refused=True` and the reason — when the documents do
not answer: no sentence covers the question well enough; the question asks for a fact
(an amount, a ratio, a date…) that no matching sentence holds; or it names a place that
no retrieved document mentions (sentences only come from documents about that place). Retrieval scores alone cannot tell these apart.
With a decision model (setting `decision = "learned"`, kb/answer/decision.py) those rules are features
and the model decides; the rules' words still say why it refused, or which rule it answered over.

The quoted span is completed where the answer stands next to the best sentence: the neighbour that states the
asked-for kind of fact ("…发给发明人奖金。" then "奖金最低不少于三千元"), the items after a list's lead ("…用于：").

Every threshold and weight is a field of `Tuning` (kb/answer/tuning.py).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from kb.answer.compose import Draft
from kb.answer.decision import ASKED, DecisionModel, vector
from kb.answer.intent import Intent, has_value
from kb.answer.span import ITEM, Candidate, completed, siblings_of
from kb.answer.tuning import Tuning
from kb.core.guard import quotable_sentences
from kb.core.profile import STATUS_ABOLISHED, STATUS_EXPIRED, STATUS_SUPERSEDED
from kb.core.records import Passage
from kb.core.text import squeeze
from kb.core.tokenizer import Tokenizer

STALE = (STATUS_EXPIRED, STATUS_SUPERSEDED, STATUS_ABOLISHED)
_ARTICLE = re.compile(r"第[一二三四五六七八九十百零〇两\d]+条")
_ASKS_DAY = re.compile(r"哪一?天|几号|几月几|截止日期|截止时间")
_DAY = re.compile(r"[0-9０-９一二三四五六七八九十]{1,3}\s*月\s*[0-9０-９一二三四五六七八九十]{1,3}\s*[日号]|之日|日前|日起")
_SUPPORT = re.compile(r"补贴|补助|奖励|奖金|资助|扶持|贴息|支持")  # what a local policy grants, a law seldom states
# A line of a law's header that records its own history ("2001年10月27日 第九届全国人民代表大会常务委员会第二十四次
# 会议《关于修改…的决定》第一次修正", "（2001年12月20日国务院令第339号公布 …第一次修订）"): it states a date and
# answers only a question about the law's history, not "著作权保护到什么时候".
_HISTORY_LINE = re.compile(r"^[（(]?\s*(?:19|20)\d{2}年\d{1,2}月\d{1,2}日.{0,200}?(?:通过|修正|修订|公布|发布|批准|施行)\s*[）)]?[。；]?$")
_ASKS_HISTORY = re.compile(r"施行|生效|实施|修改|修订|修正|通过|公布|颁布|发布|出台|制定|有效|废止|失效")


def _place_stem(place: str) -> str:
    return place[:-1] if len(place) > 2 and place[-1] in "省市区县镇" else place


class ExtractiveAnswerer:
    def __init__(self, tokenizer: Tokenizer, idf: Callable[[str], float],
                 embed_sentences: Callable[[list[str]], np.ndarray] | None = None,
                 embed_query: Callable[[str], np.ndarray] | None = None, passages_used: int = 5,
                 document_text: Callable[[str], str] | None = None,
                 sections: Callable[[str], list[list[Passage]]] | None = None, tuning: Tuning = Tuning(),
                 decision: DecisionModel | None = None,
                 places_in: Callable[[str], list[tuple[str, ...]]] | None = None):
        self._tokenizer = tokenizer
        self._places_in = places_in  # the division table's places a question names (kb/core/places.py), as paths
        self.decision = decision  # None: the rules refuse (vetoes); a model: it decides, the rules are its features
        self._sections = sections  # doc id -> its passages in reading order, grouped by section
        self.tuning = tuning
        self._document_text = document_text  # doc id -> its title, issuer and text (for place names)
        self._idf = idf
        self._embed_sentences = embed_sentences
        self._embed_query = embed_query
        self._passages_used = passages_used

    # (weights are built in sorted term order: summed in set order, equal coverages differed in the last
    # bits from one process to the next, and ties between sentences fell differently)
    def _coverage(self, weights: dict[str, float], tokens: set[str]) -> float:
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in tokens) / total if total else 0.0

    def coverage(self, question: str, text: str) -> float:
        """The IDF-weighted share of the question's terms that `text` holds (comparing two answers)."""
        weights = {t: self._weight(t) for t in sorted(set(self._tokenizer.tokens(question)))}
        return self._coverage(weights, set(self._tokenizer.tokens(text)))

    def _weight(self, term: str) -> float:
        """IDF with a floor: a term in every chunk (the title's, in a one-document KB) still shows
        the question is about these documents. Single characters count less."""
        t = self.tuning
        return max(self._idf(term), t.idf_floor) * (t.single_char_weight if len(term) == 1 else 1.0)

    def _about(self, passage: Passage, places: list[str]) -> bool:
        """Whether the passage's document mentions every place the question names."""
        if not places:
            return True
        text = f"{passage.title} {passage.issuer or ''} " + (
            self._document_text(passage.doc_id) if self._document_text else passage.text)
        return all(_place_stem(p) in text for p in places)

    def candidates(self, question: str, passages: list[Passage], context: str = "",
                   check_places: bool = True) -> list[Candidate]:
        """`check_places`: only documents that mention the places the question names (jieba's place names); the
        Answerer turns this off, having selected documents by region already."""
        weights = {t: self._weight(t) for t in sorted(set(self._tokenizer.tokens(question)))}
        history_lines_out = not _ASKS_HISTORY.search(f"{context} {question}")
        earlier = {t: self._weight(t) for t in sorted(set(self._tokenizer.tokens(context))) if t not in weights}
        if earlier:  # the follow-up's own terms lead: the earlier question's weigh context_weight of them in all
            scale = self.tuning.context_weight * (sum(weights.values()) or 1.0) / sum(earlier.values())
            weights.update({t: w * scale for t, w in earlier.items()})
        places = self._tokenizer.places(f"{context} {question}") if check_places else []
        out = []
        for passage in [p for p in passages if self._about(p, places)][: self._passages_used]:
            title = set(self._tokenizer.tokens(passage.title))
            heading = title | set(self._tokenizer.tokens(" ".join(passage.heading_path)))
            for index, (start, end), text in quotable_sentences(passage.text, passage.sentence_spans):
                if squeeze(text) in squeeze(passage.title):
                    continue  # a title line is not an answer
                if history_lines_out and _HISTORY_LINE.match(text.strip()):
                    continue
                tokens = set(self._tokenizer.tokens(text))
                coverage = self._coverage(weights, tokens)
                echo = coverage - self._coverage(weights, tokens - title)
                coverage += self.tuning.heading_weight * (self._coverage(weights, tokens | heading) - coverage)
                out.append(Candidate(passage, index, (start, end), text, coverage, echo=echo))
        return out

    def answer(self, question: str, intent: Intent, passages: list[Passage], context: str = "",
               check_places: bool = True) -> Draft:
        """`context`: the earlier question a follow-up leans on; its terms count for less."""
        candidates = self.candidates(question, passages, context, check_places)
        if not candidates:
            places = self._tokenizer.places(f"{context} {question}") if check_places else []
            reason = f"no document mentions {'、'.join(places)}" if places else "no passage matches the question"
            return Draft("", refused=True, reason=reason)
        t = self.tuning
        # the dense score only for the sentences that cover the question best: embedding them all
        # would cost more than answering (sentences are embedded here, through the cache, not at ingestion)
        order = sorted(range(len(candidates)), key=lambda i: -candidates[i].coverage)[: t.dense_candidates]
        similarities = self._dense(f"{context} {question}".strip(), [candidates[i].text for i in order])
        dense = [min(similarities, default=0.0)] * len(candidates)
        for i, similarity in zip(order, similarities):
            dense[i] = similarity
        wanted = intent.wants_value
        for c, similarity in zip(candidates, dense):
            bonus = t.value_bonus if wanted and any(has_value(c.text, k) for k in wanted) else 0.0
            c.score = c.coverage + t.dense_weight * similarity + bonus + t.rank_bonus / max(c.passage.rank, 1)
            if c.passage.profile.status in STALE:  # the same fact in a current document is quoted instead
                c.score -= t.stale_penalty
        # the rules judge the sentences by their own words (this order); the quote also weighs how strongly
        # retrieval, which read the whole passage, ranks the passage each stands in
        by_words = sorted(candidates, key=lambda c: -c.score)
        best = by_words[0]
        # the rules: each says why the passages would not answer (vetoes when the rules decide)
        vetoes = []
        if best.coverage < t.min_coverage:
            vetoes.append(f"the passages do not cover the question (coverage {best.coverage:.2f})")
        closest = max((p.dense_score for p in passages if p.dense_score is not None), default=None)
        if closest is not None and closest < t.off_topic_dense and best.coverage < t.off_topic_coverage:
            vetoes.append(f"off topic (closest passage {closest:.3f}, coverage {best.coverage:.2f})")
        # a colloquial question ("一家企业最多能补多少钱？") shares few terms with the law's wording: a sentence
        # covering it nearly as well as any sentence does is about it, below value_coverage or not
        top = max(c.coverage for c in candidates)
        about = min(t.value_coverage, t.value_relative * top)
        missing = [k for k in wanted if not any(has_value(c.text, k) and c.coverage >= about
                                                 for c in by_words[: t.value_window])]
        if wanted and len(missing) == len(wanted):
            vetoes.append(f"the passages never state the asked-for {'/'.join(wanted)}")
        best_dense = dense[candidates.index(best)]
        prior = self._passage_prior(passages, candidates)
        # (in proportion to how much of the question the sentence covers: a sentence of the first passage that
        # covers little of it is not made the answer by its passage's rank)
        share = {id(c): c.coverage / top if top else 0.0 for c in candidates}
        ranked = sorted((replace(c, score=c.score + t.passage_weight * prior[c.passage.chunk_id] * share[id(c)]
                                 - t.title_echo * c.echo) for c in candidates), key=lambda c: -c.score)
        if self.decision is None:
            if vetoes:
                return Draft("", refused=True, reason=vetoes[0])
            return self._chosen(question, intent, ranked, candidates)
        draft = self._chosen(question, intent, ranked, candidates)
        rules = {"rule_low_coverage": best.coverage < t.min_coverage,
                 "rule_off_topic": any(v.startswith("off topic") for v in vetoes),
                 "rule_value_missing": bool(wanted) and len(missing) == len(wanted)}
        facts = self._facts(question, context, intent, passages, by_words, best_dense, draft)
        p = self.decision.probability(vector({**rules, **facts}))
        if context:
            # a follow-up ("那保险呢？"): the rules judge (they weigh the carried question's terms; the model reads
            # two words as unanswerable). The model is still asked above, so training records follow-ups.
            return Draft("", refused=True, reason=vetoes[0]) if vetoes else draft
        if p < self.decision.threshold:
            why = vetoes[0] if vetoes else "the passages do not answer the question"
            return Draft("", refused=True, reason=f"{why} (p {p:.2f} < {self.decision.threshold:.2f})", flags=vetoes[1:])
        return replace(draft, flags=[*draft.flags, *(f"answered over the rule (p {p:.2f}): {v}" for v in vetoes)])

    @staticmethod
    def _passage_prior(passages: list[Passage], candidates: list[Candidate]) -> dict[str, float]:
        """Each read passage's score as a share of the first one's (at most 1): how strongly retrieval
        says the passage answers. Sentences are scored one by one; without this a sentence of the
        fifth passage that shares a few more words with the question beat the first passage's answer.
        A superseded version gets none: retrieval ranks its article as high as the current version's, and
        the current one is quoted (the old one still is when no other document answers)."""
        read = {c.passage.chunk_id: c.passage for c in candidates}
        scores = [(p.chunk_id, p.score or 0.0) for p in passages if p.chunk_id in read]
        first = scores[0][1] if scores else 0.0
        return {chunk: 0.0 if first <= 0 or read[chunk].profile.status == STATUS_SUPERSEDED else min(1.0, score / first)
                for chunk, score in scores}

    def _facts(self, question: str, context: str, intent: Intent, passages: list[Passage],
               ranked: list[Candidate], best_dense: float, draft: Draft) -> dict[str, float]:
        """What the decision reads besides the rules (kb/answer/decision.py, FEATURES)."""
        t, wanted, best = self.tuning, intent.wants_value, ranked[0]
        # places of the division table (not jieba's: 海关, 甬江, 中国 are no place a document is of), national excepted
        places = [p for p in (self._places_in(question) if self._places_in else []) if p != ("全国",)]
        article = bool(_ARTICLE.match(squeeze(best.passage.text)))
        coverages = sorted((c.coverage for c in ranked), reverse=True)
        top = coverages[0]
        stating = [c.coverage for c in ranked[: t.value_window] if any(has_value(c.text, k) for k in wanted)]
        first, second = (passages[0].score, passages[1].score) if len(passages) > 1 else (0.0, 0.0)
        return {
            "best_coverage": best.coverage, "top_coverage": top, "second_coverage": coverages[1] if len(coverages) > 1 else 0.0,
            "answer_coverage": self.coverage(f"{context} {question}".strip(), re.sub(r"\[\d+\]", "", draft.text)),
            "passage_coverage": self.coverage(question, " ".join([best.passage.title, *best.passage.heading_path,
                                                                  best.passage.text])),
            "best_score": best.score, "score_margin": best.score - ranked[1].score if len(ranked) > 1 else best.score,
            "best_dense": best_dense,
            "closest_dense": max((p.dense_score for p in passages if p.dense_score is not None), default=0.0),
            "second_score_ratio": second / first if first else 0.0,
            "best_rank": best.passage.rank, "wanted": len(wanted),
            "best_holds": sum(has_value(best.text, k) for k in wanted) / len(wanted) if wanted else 1.0,
            "answer_holds": sum(has_value(draft.text, k) for k in wanted) / len(wanted) if wanted else 1.0,
            "value_relative": max(stating, default=0.0) / top if wanted and top else 1.0,
            "question_terms": math.log1p(len(set(self._tokenizer.tokens(question)))),
            "year_mismatch": self._year_mismatch(question, best.passage),
            "place_mismatch": not self._about(best.passage, self._tokenizer.places(question)),
            "stale": best.passage.profile.status in STALE, "article": article,
            "top_score": passages[0].score if passages else 0.0,
            "place_local": bool(places) and _of_place(best.passage, places),
            "place_unserved": bool(places) and not any(_of_place(p, places) for p in passages[: self._passages_used]),
            "day_missing": bool(_ASKS_DAY.search(question)) and not _DAY.search(draft.text),
            "support_from_law": article and bool(_SUPPORT.search(question)),
            **{f"asks_{kind}": kind in intent.asks for kind in ASKED},
        }

    def _year_mismatch(self, question: str, passage: Passage) -> bool:
        years = set(re.findall(r"(?:19|20)[0-9]{2}(?=\s*年)", question))
        if not years:
            return False
        text = f"{passage.title} {passage.date or ''} " + (
            self._document_text(passage.doc_id) if self._document_text else passage.text)
        return not all(y in text for y in years)

    def _chosen(self, question: str, intent: Intent, ranked: list[Candidate], candidates: list[Candidate]) -> Draft:
        """The answer from the ranked sentences: the best, what completes it, and what else answers as well."""
        t, wanted = self.tuning, intent.wants_value
        best = ranked[0]
        chosen = [best]
        length = len(best.text)
        for c in ranked[1:]:
            if len(chosen) == t.max_sentences or c.score < t.keep_ratio * best.score:
                break
            if any(squeeze(c.text) == squeeze(k.text) for k in chosen):
                continue  # the same sentence in another passage (a repeated heading, a copy)
            if c.coverage >= t.value_coverage and length + len(c.text) <= t.max_chars:
                chosen.append(c)
                length += len(c.text)
        # (not when a figure or date is asked: "哪几天收材料" wants the days, not the list of materials)
        steps = "steps" in intent.asks and not intent.wants_value
        section = self._list_section(question, best) if steps else None
        if section:  # materials, a procedure: the list whole and in order, not its best lines
            return self._compose(section)
        if _is_article(best.passage, t.article_max_chars):  # a short article is the unit of a law: quoted whole
            whole = [Candidate(best.passage, index, span, text, best.coverage, best.score)
                     for index, span, text in quotable_sentences(best.passage.text, best.passage.sentence_spans)]
            chosen = whole + [c for c in chosen if c.passage.chunk_id != best.passage.chunk_id]
        if intent.asks & {"list", "yesno"}:  # "宁波专利质押有什么支持？": what each applicable document says
            chosen += self._other_documents(ranked, chosen, best)
        return self._compose(completed(chosen, wanted, siblings_of(candidates), t.list_max_chars, ranked,
                                       t.yesno_paragraph_chars if "yesno" in intent.asks else 0))

    def _list_section(self, question: str, best: Candidate) -> list[Candidate] | None:
        """The sentences of a list section (its heading, then at least two numbered items, at most
        `tuning.list_max_chars` characters) of the best sentence's document: the one whose heading
        holds most of the question's terms (办理流程, 申请材料, 申请条件), else the best sentence's own
        section; None when there is no such list."""
        if self._sections is None:
            return None
        weights = {t: self._weight(t) for t in sorted(set(self._tokenizer.tokens(question)))}
        found: list[tuple[float, bool, list[Passage]]] = []
        for section in self._sections(best.passage.doc_id):
            if _is_list(section, self.tuning.list_max_chars):
                heading = set(self._tokenizer.tokens(" ".join(section[0].heading_path)))
                own = any(p.chunk_id == best.passage.chunk_id for p in section)
                found.append((self._coverage(weights, heading), own, section))
        if not found:
            return None
        matched, own, section = max(found, key=lambda f: (f[0], f[1]))
        here = self._coverage(weights, set(self._tokenizer.tokens(" ".join(best.passage.heading_path))))
        if not own and matched <= here:
            # no heading names what is asked better than the best sentence's own: another record's list
            # ("国家级创新平台奖励"'s materials) is no answer to what this one (示范企业奖励) asks
            return None
        heading = squeeze(section[0].heading_path[-1])
        out = []
        for order, passage in enumerate(section):
            passage.rank = best.passage.rank  # cited where the best passage would be
            for index, span, sentence in quotable_sentences(passage.text, passage.sentence_spans):
                if squeeze(sentence) not in (heading, squeeze(passage.title)):
                    out.append(Candidate(passage, index, span, sentence, best.coverage, best.score, order))
        return out or None

    def _other_documents(self, ranked: list[Candidate], chosen: list[Candidate], best: Candidate) -> list[Candidate]:
        """The best sentence of each further document that answers nearly as well (up to
        `tuning.max_documents` documents in all), so rules of several levels are all quoted."""
        t = self.tuning
        documents = {c.passage.doc_id for c in chosen}
        more = []
        for c in ranked:
            if len(documents) >= t.max_documents or c.score < t.keep_ratio * best.score:
                break
            if c.passage.doc_id in documents or c.coverage < t.value_coverage or len(c.text) > t.max_chars:
                continue
            if any(squeeze(c.text) == squeeze(k.text) for k in chosen + more):
                continue  # a copy of a sentence already quoted
            documents.add(c.passage.doc_id)
            more.append(c)
        return more

    def _dense(self, question: str, texts: list[str]) -> list[float]:
        if self._embed_sentences is None or self._embed_query is None:
            return [0.0] * len(texts)
        vectors = self._embed_sentences(texts)
        return (vectors @ self._embed_query(question)).tolist()

    @staticmethod
    def _compose(chosen: list[Candidate]) -> Draft:
        """Sentences in reading order with the number of their passage; from several documents,
        grouped by document, the most local first, each under its title and level."""
        by_doc: dict[str, list[Candidate]] = {}
        for c in chosen:
            by_doc.setdefault(c.passage.doc_id, []).append(c)
        # most local first (宁波 before 浙江 before 全国), then by how well they answer
        order = sorted(by_doc.values(), key=lambda cs: (-_depth(cs[0].passage), min(c.passage.rank for c in cs)))
        numbers: dict[str, int] = {}
        cited: dict[int, tuple[Passage, list[int], list[tuple[int, int]]]] = {}
        lines = []
        for group in order:
            text = _quote(sorted(group, key=lambda c: (c.passage.rank, c.order, c.index)), numbers, cited)
            if len(order) > 1:
                p = group[0].passage
                region = f"，{''.join(p.profile.region)}" if p.profile.region else ""
                text = f"《{p.title}》（{p.profile.level}{region}）：{text}"
            lines.append(text)
        return Draft("\n".join(lines), [cited[n] for n in sorted(cited)])


def _quote(sentences: list[Candidate], numbers: dict[str, int],
           cited: dict[int, tuple[Passage, list[int], list[tuple[int, int]]]]) -> str:
    """The sentences as one text: a list item starts a new line, and the marker [n] of a passage
    closes each run of its sentences on a line. Numbers passages in `numbers`, records `cited`."""
    out, owed = "", None
    for c in sentences:
        n = numbers.setdefault(c.passage.chunk_id, len(numbers) + 1)
        text = c.text.rstrip("；;，,：:")
        text += "" if text[-1] in "。！？!?）)”" else "。"
        item = bool(out) and bool(ITEM.match(text))
        if owed is not None and (owed != n or item):
            out += f"[{owed}]"
        out += ("\n" if item else "") + text
        owed = n
        entry = cited.setdefault(n, (c.passage, [], []))
        entry[1].append(c.index)
        entry[2].append(c.span)
    return out + (f"[{owed}]" if owed is not None else "")


def _of_place(passage: Passage, places: list[tuple[str, ...]]) -> bool:
    """Whether the passage's document is of one of the places (as paths): of that place or inside it."""
    region = passage.profile.region
    return any(region[: len(place)] == place for place in places) and region not in ((), ("全国",))


def _is_article(passage: Passage, max_chars: int) -> bool:
    """A whole article of a law or regulation ("第四十条 ……") of at most max_chars characters."""
    heading = passage.heading_path[-1] if passage.heading_path else ""
    return bool(_ARTICLE.match(heading)) and squeeze(passage.text).startswith(squeeze(heading)) \
        and len(passage.text) <= max_chars


def _is_list(section: list[Passage], max_chars: int) -> bool:
    """A section that starts with its heading and numbers at least two items, within max_chars."""
    heading = section[0].heading_path[-1] if section[0].heading_path else ""
    text = "\n".join(p.text for p in section)
    return bool(heading) and squeeze(text).startswith(squeeze(heading)) and len(text) <= max_chars \
        and len(ITEM.findall(text)) >= 2


def _depth(passage: Passage) -> int:
    region = passage.profile.region
    return 0 if region in ((), ("全国",)) else len(region)
