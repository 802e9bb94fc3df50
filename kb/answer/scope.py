"""Which documents a question is about, before anything is retrieved. Pure apart from the catalogue.

- **Place.** The place the question names ("宁波的企业…"), else the asker's (an API field, the
  chat's selector, the `region` setting). Only documents that apply there are searched: that
  place's own, those of the areas above it, and national ones. When none applies the question
  is refused, naming the place; when only national ones do, a notice says so.
- **The document of the conversation.** "这份答复是哪个部门发的？" after an answer about one
  document stays with that document (the first source of the last answer).
- **Year.** "南沙2020年度贴息…" is not answered from the 2017 guide: a question naming a year is
  not answered from a dated document (an annual guide, a letter, a list) of another year that
  never mentions it.
- **Validity.** After answering: a notice for each cited document that is no longer in force.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from kb.answer.tuning import Tuning
from kb.core.citations import chinese_date
from kb.core.places import NATIONAL_PATH, Places, label
from kb.core.profile import (
    LEVEL_GUIDE,
    LEVEL_NORMATIVE,
    LEVEL_OTHER,
    LEVEL_REPLY,
    STATUS_ABOLISHED,
    STATUS_EXPIRED,
    STATUS_SUPERSEDED,
)
from kb.core.records import Citation, Document, Passage
from kb.core.text import message_text, squeeze
from kb.core.tokenizer import Tokenizer
from kb.search.filters import Filters
from kb.store.catalogue import Catalogue

NOTICE_NATIONAL_ONLY = "知识库中没有{place}的地方性文件，以下为全国适用的规定。"
NOTICE_NO_PLACE = "知识库中没有适用于{place}的文件。"
NOTICE_OTHER_YEAR = "知识库中的相关文件未涉及{year}年的情况。"
NOTICE_UNMENTIONED = "文件中未提及{terms}；相关规定如下："
NOTICE_STALE = "《{title}》{state}，可能已失效，请以最新文件为准。"

# "这份答复", "该文件", "这个办法", "上述文件": the document the conversation is about
_THIS_DOCUMENT = re.compile(r"(?:这份|这个|这封|该|此|本|上述|上面的?|刚才的?|那份|那个)[^，。？！,?!]{0,8}?"
                            r"(?:答复|文件|回复函?|复函|函|通知|办法|条例|规定|措施|指南|细则|政策|法规?)")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*(?:年|年度)")
_TITLE = re.compile(r"《([^《》]{2,80})》")
# kinds of document that speak of their own year (a letter, an annual guide, a list), not standing rules
_DATED_LEVELS = (LEVEL_REPLY, LEVEL_GUIDE, LEVEL_NORMATIVE, LEVEL_OTHER)


@dataclass
class Scope:
    filters: Filters | None
    place: tuple[str, ...] = ()
    notices: list[str] = field(default_factory=list)
    refusal: str = ""  # why no document can answer, for reviewers; empty when some may


def asker_place(question: str, region: str, places: Places) -> tuple[str, ...]:
    """The place the question names (the most specific one), else the asker's region; () for none."""
    named = places.places_in(question)
    if named:
        return max(named, key=len)
    return (places.normalise(region) or ()) if region.strip() else ()


def conversation_document(question: str, history: list[dict] | None, catalogue: Catalogue) -> Document | None:
    """The document "这份答复/该文件" refers to: the first one the last answer cited, else the one the
    previous question named by title."""
    if not _THIS_DOCUMENT.search(question):
        return None
    by_title = {d.meta.title: d for d in catalogue.documents.values()}
    for message in reversed(history or []):
        text = message_text(message.get("content"))
        if message.get("role") == "assistant":
            sources = text.split("来源：", 1)[1] if "来源：" in text else text
            for title in _TITLE.findall(sources):
                if title in by_title:
                    return by_title[title]
        elif message.get("role") == "user":
            named = titled_documents(text, catalogue)
            return named[0] if len(named) == 1 else None
    return None


# what a question calls the kind of document it means ("这份答复", "这个回复函") -> the level of such documents
_CALLED_LEVEL = {"答复": LEVEL_REPLY, "回复": LEVEL_REPLY, "回复函": LEVEL_REPLY, "复函": LEVEL_REPLY, "函": LEVEL_REPLY,
                 "指南": LEVEL_GUIDE}


def only_document_called(question: str, catalogue: Catalogue) -> Document | None:
    """With no conversation, "这份答复/这个回复函" means the knowledge base's one reply letter (its one
    办事指南 for "这份指南"); None when it holds none or several."""
    called = _THIS_DOCUMENT.search(question)
    if not called:
        return None
    noun = re.sub(r"^(?:这份|这个|这封|该|此|本|上述|上面的?|刚才的?|那份|那个)[^，。？！,?!]{0,8}?", "", called.group(0))
    level = next((lv for word, lv in _CALLED_LEVEL.items() if called.group(0).endswith(word)), None)
    if level is None:
        return None
    found = [d for d in catalogue.documents.values() if d.profile.level == level]
    return found[0] if len(found) == 1 else None


def home_first(passages: list[Passage], home: tuple[str, ...], tuning: Tuning) -> list[Passage]:
    """The passages re-ranked for the place a question is answered for — the deployment's home place, the
    asker's, or the one the question names — as that place's hotline would: its city's documents first, then
    its province's, then national ones (a score counts 1 + Tuning.home_city_boost / home_province_boost of
    itself). An asker in 宁波 gets 宁波市专利管理条例 第十一条 before the national 实施细则's article on the same."""
    def weighed(p: Passage) -> float:
        region = p.profile.region
        boost = tuning.home_city_boost if region and len(region) > 1 and home[: len(region)] == region else \
            tuning.home_province_boost if region and region[0] == home[0] and region != NATIONAL_PATH else 0.0
        return (p.score or 0.0) * (1 + boost)

    return sorted(passages, key=weighed, reverse=True)  # stable: equal scores keep the search's order


def _title_keys(doc: Document) -> set[str]:
    """How a question may name a document: its title, without 中华人民共和国, without its place."""
    if doc.meta.title_from_filename:
        return set()
    title = squeeze(doc.meta.title)
    return {k for k in (title, title.removeprefix("中华人民共和国")) if len(k) >= 3}


def _named_length(asked: str, doc: Document, tail_min: int) -> int:
    """How much of the document's title the question holds: a whole key, or the title's tail of at
    least `tail_min` (Tuning.title_tail) characters ("促进科技创新产业发展扶持办法" of "广州南沙新区（自贸片区）促进…扶持办法")."""
    keys = _title_keys(doc)
    whole = max((len(k) for k in keys if k in asked), default=0)
    title = squeeze(doc.meta.title)
    tail = next((n for n in range(len(title), tail_min - 1, -1) if title[-n:] in asked), 0) if keys else 0
    return max(whole, tail)


def titled_documents(question: str, catalogue: Catalogue, places: Places | None = None,
                     tuning: Tuning = Tuning()) -> list[Document]:
    """The documents the question names by title ("郑州市专利促进和保护条例", "中小企业促进法"); of a
    title inside a longer one ("专利法" in "专利法实施细则"), the longer. A document of another place
    than the question names is not it ("浙江省专利保护条例" is not 上海's)."""
    asked = squeeze(question)
    named = places.places_in(question) if places else []

    def same_place(doc: Document) -> bool:
        region = doc.profile.region
        return not named or region == NATIONAL_PATH or any(
            region[: len(p)] == p or p[: len(region)] == region for p in named)

    hits = [(n, d) for d in catalogue.documents.values() if (n := _named_length(asked, d, tuning.title_tail)) and same_place(d)]
    if not hits:
        return []
    best = max(n for n, _ in hits)
    return [d for n, d in hits if n == best]


def cited_documents(history: list[dict] | None, catalogue: Catalogue) -> tuple[str, ...]:
    """The documents the last answer in the conversation cited (by the titles of its sources)."""
    by_title = {d.meta.title: d.doc_id for d in catalogue.documents.values()}
    for message in reversed(history or []):
        if message.get("role") == "assistant":
            text = message_text(message.get("content"))
            sources = text.split("来源：", 1)[1] if "来源：" in text else ""
            return tuple(dict.fromkeys(by_title[t] for t in _TITLE.findall(sources) if t in by_title))
    return ()


def question_scope(question: str, history: list[dict] | None, filters: Filters | None, region: str,
                   catalogue: Catalogue, places: Places, conversation: tuple[str, ...] = (),
                   own_words: str = "", tuning: Tuning = Tuning()) -> Scope:
    """`conversation`: for a follow-up, the documents the conversation is about; it stays with them
    unless the follow-up's `own_words` name a place or a document of their own ("那北京呢？")."""
    document = conversation_document(own_words or question, history, catalogue)
    if document is None and not history:
        document = only_document_called(question, catalogue)
    if document is not None:  # the conversation's document decides the place too
        return Scope(replace(filters or Filters(), files=(document.doc_id,)))
    named = titled_documents(own_words or question, catalogue, places, tuning)
    if named and not (filters and filters.files):  # "广东省知识产权保护条例什么时候施行？"
        return Scope(replace(filters or Filters(), files=tuple(d.doc_id for d in named)))
    if conversation and not (filters and filters.files) and not places.places_in(own_words or question):
        # "那这个扶持办法…": of the conversation's documents, the one whose title holds what it is called
        called = _THIS_DOCUMENT.search(own_words or question)
        noun = re.sub(r"^(?:这份|这个|这封|该|此|本|上述|上面的?|刚才的?|那份|那个)", "", called.group(0)) if called else ""
        which = [i for i in conversation if noun and noun in catalogue.documents[i].meta.title]
        return Scope(replace(filters or Filters(), files=tuple(which[:1] or conversation)))
    named_place = places.places_in(question)
    place = asker_place(question, region, places)
    if not place or (filters and filters.files):
        return Scope(filters)
    # a place the question names takes in what lies inside it; the asker's own place only what applies there
    scoped = replace(filters or Filters(), region=place, within=bool(named_place))
    applying = [d for d in catalogue.documents.values() if scoped.admits(d)]
    if not applying:
        notice = NOTICE_NO_PLACE.format(place=label(place))
        return Scope(scoped, place, [notice], f"no document applies to {label(place)}")
    notices = []
    if place != NATIONAL_PATH and all(d.profile.region == NATIONAL_PATH for d in applying):
        notices.append(NOTICE_NATIONAL_ONLY.format(place=label(place)))
    return Scope(scoped, place, notices)


def _document_year(doc: Document) -> str | None:
    dates = [doc.meta.date, doc.profile.promulgated, doc.profile.effective_from]
    titled = _YEAR.search(doc.meta.title)
    return titled.group(1) if titled else next((d[:4] for d in dates if d), None)


def off_year(question: str, passages: list[Passage], catalogue: Catalogue) -> tuple[list[Passage], str]:
    """The passages without those of dated documents of another year than the question names,
    and the year when that left none ("" otherwise)."""
    years = set(_YEAR.findall(question))
    if not years or not passages:
        return passages, ""

    def fits(p: Passage) -> bool:
        doc = catalogue.documents.get(p.doc_id)
        if doc is None or doc.profile.level not in _DATED_LEVELS:
            return True  # a law or regulation in force applies in any year
        own = _document_year(doc)
        return own is None or own in years or any(y in doc.text or y in doc.meta.title for y in years)

    kept = [p for p in passages if fits(p)]
    return kept, ("" if kept else sorted(years)[0])


def unmentioned_terms(question: str, passages: list[Passage], tokenizer: Tokenizer, places: Places) -> list[str]:
    """The subjects the question names (kb/resources/subject_terms.txt: "商标质押", "地理标志") that none
    of the passages, their titles or their sections contain: the answer must say so."""
    seen = squeeze(" ".join(f"{p.title} {' '.join(p.heading_path)} {p.text}" for p in passages))
    named = {"".join(path) for path in places.places_in(question)}
    missing = []
    for word in dict.fromkeys(tokenizer.words(question)):
        if word in tokenizer.subjects and word not in seen and not any(word in place for place in named):
            missing.append(word)
    return missing


def validity_notices(citations: list[Citation]) -> list[str]:
    """A notice for each cited document that is expired, superseded or abolished."""
    notices, seen = [], set()
    for c in citations:
        profile = c.profile
        if profile.status not in (STATUS_EXPIRED, STATUS_SUPERSEDED, STATUS_ABOLISHED) or c.title in seen:
            continue
        seen.add(c.title)
        if profile.status == STATUS_EXPIRED and profile.effective_until:
            state = f"有效期至{chinese_date(profile.effective_until)}"
        else:
            state = profile.status
        notices.append(NOTICE_STALE.format(title=c.title, state=state))
    return notices
