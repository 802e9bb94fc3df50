"""A learned ranker over the union of the BM25 and dense candidates.

For each candidate chunk of a question, `features` computes cheap figures (no embedding beyond the
query's own): the two retrievers' scores and ranks (raw and relative to the best), reciprocal-rank
fusions, how much of the question's IDF weight the chunk covers, phrase and proximity matches, title,
heading, law-name and article-number matches, whether the chunk holds the kind of fact the question
asks for (an amount, a date, a list…), the chunk's own shape (length, title only, annex, level,
status), and learned word associations between the question's words and the chunk's (丈夫 → 配偶;
kb/search/associations.py, kb/resources/associations.tsv). A LightGBM `lambdarank` model
(kb/resources/ranker.txt, trained by `python -m eval train-ranker`) scores them; `Retriever.search`
orders by that score when the setting `ranker` is "learned" and the model file is there, else by
weighted RRF as before.

Question-type patterns are kept here rather than imported from kb/answer/intent.py: kb.search may not
import kb.answer (tests/test_layers.py), and the ranker needs only coarse kinds.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from kb.core.profile import LEVELS, STATUS_IN_FORCE, STATUS_UNKNOWN
from kb.core.records import Chunk, Document
from kb.search.associations import ASSOC_FEATURES, ASSOCIATIONS_RESOURCE, Associations, association_columns

MODEL_RESOURCE = "ranker.txt"  # in kb/resources, versioned with the code that computes its features
RRF_K = 60  # the fusions used as features are those of the default settings, whatever is configured
# Each ranking is read this many times deeper than the candidates it gives, so that a candidate found by
# one method alone still has the other's score and rank (an index search of 200 rows costs what one of 50 does)
SCORE_DEPTH = 4

# ---- what a question asks for (coarse; kb/answer/intent.py has the answerer's finer analysis)
_NUM = r"[0-9０-９]+(?:\.[0-9]+)?|[一二三四五六七八九十百千万两半]+"
_ASKS: dict[str, re.Pattern[str]] = {
    "money": re.compile(r"多少钱|金额|多少(?:亿|万|千)?元|多少万|几万|几亿|额度|补贴|补助|资助|奖励|奖金|贴息|赔偿|罚款|罚多少|费用|"
                        r"赔多少|给多少|补多少|拿多少|报酬|工资|违约金"),
    "date": re.compile(r"哪一?天|何时|什么时候|啥时候|哪一?年|几月|日期|截止|几号|起算|之日"),
    "duration": re.compile(r"多久|多长时间|几年|几个月|几天|期限|有效期|时效|时限"),
    "number": re.compile(r"多少|几"),
    "list": re.compile(r"哪些|有什么|有啥|包括|都有|哪几"),
    "steps": re.compile(r"材料|流程|程序|手续|步骤|(?:怎么|如何|怎样)(?:办|申请|申报|处理|走|做|登记|起诉|维权)|怎么办"),
    "condition": re.compile(r"条件|资格|符合|满足|情形|情况下|才能|才可以|前提"),
    "yesno": re.compile(r"是否|能不能|能否|可不可以|可以吗|有没有|有无|会不会|算不算|是不是|合法吗|违法吗|吗[？?]?$|么[？?]?$"),
    "who": re.compile(r"谁|哪个部门|哪个单位|哪家|哪位|由谁|找哪|归谁"),
    # what something is: "…属于民间借贷吗", "…算不算劳动关系"; answered by a definition (借款合同是…的合同)
    "definition": re.compile(r"属于|算不算|算是|是不是|什么是|是什么|何为|何谓|定义|视为|认定|区分|性质|哪种|什么关系|"
                             r"什么合同|什么行为"),
}
# ---- what a chunk holds
_HOLDS: dict[str, re.Pattern[str]] = {
    "money": re.compile(rf"(?:{_NUM})\s*(?:亿|万|千)?\s*元|(?:{_NUM})\s*(?:亿|万)(?!条|人|件|项|户|家)|[0-9]\s*倍|罚款|赔偿"),
    "date": re.compile(r"[0-9]{4}\s*年|[0-9一二三四五六七八九十]{1,3}\s*月\s*[0-9一二三四五六七八九十]{1,3}\s*日|之日起|起施行|届满"),
    "duration": re.compile(rf"(?:{_NUM})\s*(?:年|个月|月|周|天|日|个工作日|小时)(?:内|以内|以上|届满)?|期限|期间"),
    "number": re.compile(rf"[0-9０-９]|(?:{_NUM})\s*(?:家|个|项|件|人|名|次|条|篇|年|月|天|元|成|倍|日)"),
    "list": re.compile(r"[^、，。；;\s]、[^、，。；;\s]|[；;]\s*\S|(?:^|\n)\s*(?:[0-9]+[.．、]|[（(][0-9一二三四五六七八九十]+[）)]|[一二三四五六七八九十]+、)"),
    "steps": re.compile(r"申请|提交|提供|办理|登记|程序|材料|申报|备案|审查|受理"),
    "condition": re.compile(r"应当|符合|具备|条件|情形|不得|除外|但是|方可"),
    "yesno": re.compile(r"不得|应当|可以|有权|禁止|无效|不予|必须"),
    "who": re.compile(r"负责|主管|部门|机关|机构|委员会|人民政府|由.{1,12}(?:承担|负责|办理)"),
    "definition": re.compile(r"是指|所称|是.{2,40}的(?:合同|协议|行为|组织|人|财产|权利)|为.{1,20}(?:合同|行为)。|包括|视为"),
}
KINDS: tuple[str, ...] = tuple(_ASKS)

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_ARTICLE = re.compile(r"第\s*([0-9０-９]+|[零〇一二两三四五六七八九十百千]+)\s*条")
_MODEL_START = re.compile(r"(?m)^(?=tree\nversion=)")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
# numbers and article numbers (第九百六十七条) are no words to associate: they would name articles, not meanings
_NUMBER_WORD = re.compile(r"第?[0-9０-９零〇一二两三四五六七八九十百千万.]+[条款项章节编年月日号]?")
_LAW_SUFFIXES = ("法", "法典", "条例", "细则", "规定", "办法", "解释", "决定")
_TITLE_ONLY_CHARS = 8  # a chunk whose text adds at most this much to its title holds no rule
# a title naming one article (a file per article: 劳动合同法第七条): the law is the title without it
_ARTICLE_TAIL = re.compile(r"第[0-9０-９零〇一二两三四五六七八九十百千]+条(?:之[一二三四五六七八九十]+)?$")

FEATURES: tuple[str, ...] = (
    # the retrievers
    "bm25_score", "bm25_rank", "bm25_norm", "bm25_found",
    "dense_score", "dense_rank", "dense_norm", "dense_gap", "dense_found",
    "rrf_equal", "rrf_today", "min_rank", "bm25_best", "dense_best",
    # the question's words in the chunk
    "cover_idf", "cover_idf_text", "cover_terms", "cover_words", "head_cover_idf", "bigram_share", "longest_phrase",
    "proximity", "char_bigrams", "query_terms", "query_chars",
    # the chunk's document among the candidates (a document that several candidates come from is on topic)
    "doc_candidates", "doc_best_rrf", "doc_rank", "doc_best_dense", "doc_best_cover",
    # the same for its law (documents whose titles differ only by an article number: one file per article)
    "law_candidates", "law_best_rrf", "law_sum_rrf", "law_rank",
    # the chunk's best sentence: a question is usually answered by one sentence, not the chunk's sum
    "sentence_cover", "sentence_cover_gap", "sentences",
    # titles, law names, article numbers
    "asks_article", "article_match", "article_other", "asks_law", "law_match",
    # what the question asks for and what the chunk holds
    *(f"asks_{k}" for k in KINDS), *(f"holds_{k}" for k in KINDS), *(f"match_{k}" for k in KINDS),
    # relative to the other candidates of the question (a tree splits on one threshold for all questions)
    "dense_z", "bm25_z", "cover_gap", "cover_rank", "char_bigrams_gap", "char_bigrams_rank",
    # the chunk
    "chunk_chars", "title_only", "heading_depth", "annex", "level", "in_force", "status_unknown",
    # learned word associations, colloquial → legal (kb/search/associations.py), the last columns
    *ASSOC_FEATURES,
)


def cn_number(text: str) -> int | None:
    """一百二十三 → 123, 42 → 42; None for what is not a number."""
    text = text.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.isdigit():
        return int(text)
    total, digit = 0, None
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def article_numbers(text: str) -> frozenset[int]:
    return frozenset(n for m in _ARTICLE.finditer(text) if (n := cn_number(m.group(1))) is not None)


def char_bigrams(text: str) -> frozenset[str]:
    return frozenset(run[i:i + 2] for run in _CJK_RUN.findall(text) for i in range(len(run) - 1))


def _law_key(name: str) -> str:
    return name.replace("中华人民共和国", "").replace("《", "").replace("》", "")


@dataclass(frozen=True)
class Query:
    """What the features need of a question, computed once per search."""

    text: str
    terms: tuple[str, ...]  # search tokens (sub-words included), distinct
    idf: tuple[float, ...]
    words: tuple[str, ...]  # jieba words as written, distinct, in order
    bigrams: frozenset[str]  # character bigrams of its CJK runs: matches that word segmentation misses
    asks: frozenset[str]
    articles: frozenset[int]
    laws: tuple[str, ...]  # law names the question names (民法典, 劳动合同法…), without 中华人民共和国
    word_idf: tuple[float, ...] = ()  # of `words`


def make_query(text: str, tokens: list[str], words: list[str], idf: Callable[[str], float]) -> Query:
    terms = tuple(dict.fromkeys(tokens))
    words_ = tuple(dict.fromkeys(words))
    laws = [_law_key(m) for m in re.findall(r"《([^》]{2,40})》", text)]
    laws += [_law_key(w) for w in words_ if len(w) >= 3 and w.endswith(_LAW_SUFFIXES)]
    return Query(text, terms, tuple(idf(t) for t in terms), words_, char_bigrams(text),
                 frozenset(k for k, p in _ASKS.items() if p.search(text)), article_numbers(text),
                 tuple(dict.fromkeys(x for x in laws if len(x) >= 2)), tuple(idf(w) for w in words_))


@dataclass(frozen=True)
class ChunkFacts:
    """Per-chunk figures that do not depend on the question: computed once per chunk and kept."""

    search: str  # title, heading path and text, lower-cased: what the terms are looked up in
    text: str  # the chunk's own text, lower-cased
    head: str  # title and heading path
    law: str  # the title as a law name key
    law_group: str  # the title without a closing article number: which law a one-article file is of
    sentences: tuple[str, ...]  # the text's sentences, lower-cased
    articles: frozenset[int]  # article numbers of the heading path, title or the text's first line
    holds: frozenset[str]
    chars: int
    title_only: bool
    depth: int
    level: int
    in_force: bool
    status_unknown: bool
    words: frozenset[str] = frozenset()  # jieba words of title, headings and text (Tokenizer.words)


def _lower(text: str) -> str:
    """Lower-cased, the same object when nothing changes (Chinese text): facts are kept for every chunk."""
    low = text.lower()
    return text if low == text else low


def chunk_facts(chunk: Chunk, doc: Document, words: Callable[[str], list[str]] | None = None) -> ChunkFacts:
    title = doc.meta.title
    head = " ".join([title, *chunk.heading_path])
    text = chunk.text
    body = re.sub(r"\s+", "", text)
    title_key = re.sub(r"\s+", "", title)
    # the text adds (almost) nothing to its title and headings: a cover line, a document title alone
    title_only = len(body.replace(title_key, "")) <= _TITLE_ONLY_CHARS
    first_line = text.lstrip()[:20]
    level = LEVELS.index(doc.profile.level) if doc.profile.level in LEVELS else len(LEVELS) - 1
    return ChunkFacts(
        search=_lower(chunk.search_text), text=_lower(text), head=_lower(head), law=_law_key(title),
        law_group=_ARTICLE_TAIL.sub("", title.strip()) or title,
        sentences=tuple(_lower(text[s:e]) for s, e in chunk.sentences) or (_lower(text),),
        articles=article_numbers(head) | article_numbers(first_line),
        holds=frozenset(k for k, p in _HOLDS.items() if p.search(text)), chars=len(body), title_only=title_only,
        depth=len(chunk.heading_path), level=level, in_force=doc.profile.status == STATUS_IN_FORCE,
        status_unknown=doc.profile.status == STATUS_UNKNOWN,
        words=frozenset(w for w in words(f"{head}\n{text}") if not _NUMBER_WORD.fullmatch(w)) if words else frozenset())


@dataclass(frozen=True)
class Candidate:
    row: int
    doc_id: str
    bm25: tuple[int, float] | None  # (1-based rank, score) in the BM25 ranking, if there
    dense: tuple[int, float] | None
    annex: bool


def candidates(dense: list[tuple[int, float]], lexical: list[tuple[int, float]],
               is_annex: Callable[[int], bool], doc_of: Callable[[int], str], n: int) -> list[Candidate]:
    """The union of both rankings' first n, in BM25 order then dense order (a stable order for ties), each
    with its rank and score in both rankings as deep as they go (SCORE_DEPTH × n)."""
    bm25_of = {row: (rank, score) for rank, (row, score) in enumerate(lexical, start=1)}
    dense_of = {row: (rank, score) for rank, (row, score) in enumerate(dense, start=1)}
    rows = list(dict.fromkeys([r for r, _ in lexical[:n]] + [r for r, _ in dense[:n]]))
    return [Candidate(r, doc_of(r), bm25_of.get(r), dense_of.get(r), is_annex(r)) for r in rows]


def _contains_share(haystack: str, terms: tuple[str, ...], weights: tuple[float, ...]) -> float:
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights) if t in haystack) / total if total else 0.0


def features(query: Query, cands: list[Candidate], facts: Callable[[int], ChunkFacts], n: int,
             associations: Associations | None = None) -> np.ndarray:
    """One row of FEATURES per candidate. `n` is how deep each ranking was read (a candidate the other
    ranking did not find gets rank n + 1). Without `associations` their columns are zero."""
    out = np.zeros((len(cands), len(FEATURES)), dtype=np.float32)
    if not cands:
        return out
    bm25_scores = [c.bm25[1] for c in cands if c.bm25]
    dense_scores = [c.dense[1] for c in cands if c.dense]
    bm25_best, bm25_low = (max(bm25_scores), min(bm25_scores)) if bm25_scores else (0.0, 0.0)
    dense_best, dense_low = (max(dense_scores), min(dense_scores)) if dense_scores else (0.0, 0.0)
    miss = n + 1
    bigrams = tuple(a + b for a, b in zip(query.words, query.words[1:]))
    trigrams = tuple(a + b + c for a, b, c in zip(query.words, query.words[1:], query.words[2:]))
    ones = (1.0,) * len(query.words)
    asks = [float(k in query.asks) for k in KINDS]
    rrf_equal = [(1 / (RRF_K + c.bm25[0]) if c.bm25 else 0.0) + (1 / (RRF_K + c.dense[0]) if c.dense else 0.0)
                 for c in cands]
    doc_count: dict[str, int] = {}
    doc_best: dict[str, float] = {}
    doc_dense: dict[str, float] = {}
    doc_cover: dict[str, float] = {}
    law_count: dict[str, int] = {}
    law_best: dict[str, float] = {}
    law_sum: dict[str, float] = {}
    covers = [_contains_share(facts(c.row).search, query.terms, query.idf) for c in cands]
    for c, r, cover in zip(cands, rrf_equal, covers):
        doc_count[c.doc_id] = doc_count.get(c.doc_id, 0) + 1
        doc_best[c.doc_id] = max(doc_best.get(c.doc_id, 0.0), r)
        doc_dense[c.doc_id] = max(doc_dense.get(c.doc_id, dense_low), c.dense[1] if c.dense else dense_low)
        doc_cover[c.doc_id] = max(doc_cover.get(c.doc_id, 0.0), cover)
        law = facts(c.row).law_group
        law_count[law] = law_count.get(law, 0) + 1
        law_best[law] = max(law_best.get(law, 0.0), r)
        law_sum[law] = law_sum.get(law, 0.0) + r
    doc_order = {d: i for i, d in enumerate(sorted(doc_best, key=lambda d: -doc_best[d]), start=1)}
    law_order = {d: i for i, d in enumerate(sorted(law_sum, key=lambda d: -law_sum[d]), start=1)}
    sentence_covers = [max(_contains_share(s, query.terms, query.idf) for s in facts(c.row).sentences) for c in cands]
    best_sentence = max(sentence_covers)
    for i, c in enumerate(cands):
        f = facts(c.row)
        b_rank, b_score = c.bm25 or (miss, 0.0)
        d_rank, d_score = c.dense or (miss, dense_low)
        rrf_b = 1 / (RRF_K + b_rank) if c.bm25 else 0.0
        rrf_d = 1 / (RRF_K + d_rank) if c.dense else 0.0
        found = [w for w in query.words if w in f.search]
        if len(found) >= 2:
            starts = [(f.search.find(w), len(w)) for w in found]
            span = max(s + n_ for s, n_ in starts) - min(s for s, _ in starts)
            proximity = sum(n_ for _, n_ in starts) / span if span else 0.0
        else:
            proximity = 0.0
        longest = max([len(t) for t in trigrams if t in f.search] or [len(b) for b in bigrams if b in f.search]
                      or [len(w) for w in found] or [0])
        article_match = bool(query.articles & f.articles)
        row = [
            b_score, b_rank, b_score / bm25_best if bm25_best else 0.0, float(c.bm25 is not None),
            d_score, d_rank, d_score / dense_best if dense_best else 0.0, dense_best - d_score,
            float(c.dense is not None),
            rrf_b + rrf_d, 2 * rrf_b + rrf_d, min(b_rank, d_rank), bm25_best, dense_best,
            covers[i], _contains_share(f.text, query.terms, query.idf),
            _contains_share(f.search, query.terms, (1.0,) * len(query.terms)),
            _contains_share(f.search, query.words, ones), _contains_share(f.head, query.terms, query.idf),
            sum(b in f.search for b in bigrams) / len(bigrams) if bigrams else 0.0, longest,
            proximity, sum(b in f.search for b in query.bigrams) / len(query.bigrams) if query.bigrams else 0.0,
            len(query.terms), len(query.text),
            doc_count[c.doc_id], doc_best[c.doc_id], doc_order[c.doc_id], doc_dense[c.doc_id], doc_cover[c.doc_id],
            law_count[f.law_group], law_best[f.law_group], law_sum[f.law_group], law_order[f.law_group],
            sentence_covers[i], sentence_covers[i] - best_sentence, len(f.sentences),
            float(bool(query.articles)), float(article_match), float(bool(query.articles and f.articles)
                                                                     and not article_match),
            float(bool(query.laws)), float(any(law in f.law for law in query.laws)),
            *asks, *(float(k in f.holds) for k in KINDS), *(a * float(k in f.holds) for a, k in zip(asks, KINDS)),
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0,  # the relative columns, filled below
            math.log1p(f.chars), float(f.title_only), f.depth, float(c.annex), f.level, float(f.in_force),
            float(f.status_unknown),
            *(0.0,) * len(ASSOC_FEATURES),  # filled below
        ]
        out[i] = row
    _relative(out)
    if associations is not None:
        out[:, -len(ASSOC_FEATURES):] = association_columns(query, [facts(c.row) for c in cands], associations)
    return out


def _relative(out: np.ndarray) -> None:
    """Fill the columns that compare a candidate with the question's other candidates."""
    col = {name: FEATURES.index(name) for name in FEATURES}
    for score, found, z in (("dense_score", "dense_found", "dense_z"), ("bm25_score", "bm25_found", "bm25_z")):
        present = out[:, col[found]] > 0
        if present.any():
            values = out[present, col[score]]
            spread = float(values.std()) or 1.0
            out[:, col[z]] = np.where(present, (out[:, col[score]] - values.mean()) / spread,
                                      (values.min() - values.mean()) / spread)
    for name in ("cover", "char_bigrams"):
        values = out[:, col["cover_idf" if name == "cover" else name]]
        out[:, col[f"{name}_gap"]] = values - values.max()
        # 1 for the best; ties share the better rank
        out[:, col[f"{name}_rank"]] = 1 + (values[None, :] > values[:, None]).sum(axis=1)


class LearnedRanker:
    """LightGBM models over FEATURES whose scores are averaged (seeds of one training: averaging them evens
    out what one seed's row and feature sampling picked); `load` gives None when there is no usable model
    file. The file is the models' texts one after the other."""

    def __init__(self, boosters: tuple, source: str, associations: Associations | None = None):
        self.boosters = boosters
        self.source = source
        self.associations = associations  # the table its association features were trained with

    @classmethod
    def load(cls, path: Path | None = None) -> LearnedRanker | None:
        """The model at `path`, or the packaged kb/resources/ranker.txt, with the association table beside
        it (associations.tsv, written with it). None when either file is absent or the model was trained on
        other features (then search falls back to RRF)."""
        if path is None:
            resource = resources.files("kb").joinpath("resources", MODEL_RESOURCE)
            if not resource.is_file():
                return None
            text = resource.read_text(encoding="utf-8")
            source = f"kb/resources/{MODEL_RESOURCE}"
            associations = Associations.load()
        else:
            if not Path(path).is_file():
                return None
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
            associations = Associations.load(Path(path).with_name(ASSOCIATIONS_RESOURCE))
        if associations is None:
            return None
        return cls.from_string(text, source, associations)

    @classmethod
    def from_string(cls, text: str, source: str = "<string>",
                    associations: Associations | None = None) -> LearnedRanker | None:
        import lightgbm

        boosters = tuple(lightgbm.Booster(model_str=part) for part in split_models(text))
        if not boosters or any(tuple(b.feature_name()) != FEATURES for b in boosters):
            return None
        return cls(boosters, source, associations)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        return np.mean([b.predict(matrix, num_threads=1) for b in self.boosters], axis=0)


def models_text(boosters) -> str:
    """The file of an average of boosters: their model texts one after the other."""
    return "".join(b.model_to_string() for b in boosters)


def split_models(text: str) -> list[str]:
    """The model texts of a file written by `models_text` (each LightGBM text begins "tree\nversion=")."""
    return [part for part in _MODEL_START.split(text) if part.strip()]


def positive(scores: np.ndarray) -> np.ndarray:
    """Model margins as scores in (0, 1), order kept: what Passage.score and annex weighting expect."""
    return 1.0 / (1.0 + np.exp(-scores))
