"""Chinese places as administrative paths, from jionlp's table of administrative divisions.

A place is a path from the province down: ("浙江省", "宁波市"), ("上海市", "浦东新区"),
("广东省", "广州市", "南沙区"); ("全国",) is the whole country; () is unknown. A municipality's
city level is folded into the province (("上海市", "浦东新区"), not ("上海市", "上海市", "浦东新区")).

The division table (provinces, cities, counties, their short names, the NBS development-zone
entries and the renamed places) is jionlp's (``jionlp.china_location_loader``): no place name is
listed here by hand. The one hand table, ``NEW_AREA_ALIASES``, names a 新区/自贸片区 that the
table lacks (南沙新区 is not 南沙区 there, and its short name 南沙 points at 三沙市南沙区).

How text is read (forward maximum matching over every name form, longest first):

- province and city names, full or short (浙江, 宁波, 北京), stand alone;
- a county's full name stands alone (浦东新区, 南沙区) unless it is two characters long (城区, 郊区,
  矿区): those, like a county's short name (浦东, 北仑) and a development zone's short name (高新区),
  count only right after their own city or province ("上海浦东", "宁波北仑", "济南高新区"). In a
  question, a county's short name may also stand alone when it names one county only and is not an
  ordinary word of jionlp's Chinese word dictionary (浦东, 海淀 yes; 合作, 平安, 东方 no);
- a name shared by several places (江北区: 宁波 or 重庆) is settled by the place right before it
  ("宁波市江北区"), else by the other places the text names, else by the alias table's paths;
  otherwise it is dropped, never guessed;
- 中华人民共和国, 全国人民代表大会, 国务院, 全国, 国家知识产权局 and a few other national organs mean 全国, except
  inside 《》, where they only name the source of a quoted document.

``Places`` loads jionlp on first use and keeps its index: construct it once and share it.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kb.core.divisions import NATIONAL_PATH, Candidate, DivisionIndex, build_index

_NANSHA = ("广东省", "广州市", "南沙区")
# 新区 / 自贸片区 names that jionlp's table lacks, each onto the division that holds it.
NEW_AREA_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "南沙新区": _NANSHA,
        "南沙自贸片区": _NANSHA,
        "南沙片区": _NANSHA,
        "南沙": _NANSHA,
    }
)


@dataclass
class _Mention:
    start: int
    end: int
    form: str
    cands: tuple[Candidate, ...]
    national: bool = False
    quoted: bool = False


@dataclass
class _Place:
    start: int
    end: int
    path: tuple[str, ...] | None  # None while ambiguous
    options: tuple[Candidate, ...] = ()
    quoted: bool = False


def covers(doc_region: Iterable[str], asker_region: Iterable[str]) -> bool:
    """Does a document of ``doc_region`` apply to someone in ``asker_region``?

    Yes when the document is national, or its region is a prefix of the asker's path
    (a 浙江省 regulation applies in 宁波; a 宁波 one does not apply in 杭州, nor to a 浙江省 asker
    whose city is unknown). A document of unknown region () is never said to apply.
    """
    doc, asker = tuple(doc_region), tuple(asker_region)
    if not doc:
        return False
    if doc == NATIONAL_PATH:
        return True
    return len(doc) <= len(asker) and asker[: len(doc)] == doc


def label(path: Iterable[str]) -> str:
    """("浙江省", "宁波市") -> "浙江省宁波市"; ("全国",) -> "全国"; () -> "未知"."""
    parts = tuple(path)
    return "".join(parts) if parts else "未知"


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    spans, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "《":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "》" and depth:
            depth -= 1
            if depth == 0:
                spans.append((start, i))
    if depth:
        spans.append((start, len(text)))
    return spans


def _is_prefix(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return len(short) < len(long) and long[: len(short)] == short


class Places:
    """Place normalisation backed by jionlp, loaded lazily on first use and then kept."""

    def __init__(self, extra_aliases: Mapping[str, Iterable[str]] | None = None) -> None:
        aliases = dict(NEW_AREA_ALIASES)
        for name, path in (extra_aliases or {}).items():
            aliases[name] = tuple(path)
        self._aliases = aliases
        self._lock = threading.Lock()
        self._built: DivisionIndex | None = None

    # ---- public API

    def region_of_text(self, text: str) -> tuple[str, ...]:
        """The most specific place a text is about: the province named most, then, while one of
        its children accounts for at least a third of its mentions, that child. ("全国",) when
        the text names the country (中华人民共和国, 国务院…) more often than any province; () when
        it names no place."""
        places = self._read(text or "", question=False)
        national = sum(1 for p in places if p.path == NATIONAL_PATH and not p.quoted)
        scores: Counter[tuple[str, ...]] = Counter()
        for p in places:
            if p.path and p.path != NATIONAL_PATH:
                for k in range(1, len(p.path) + 1):
                    scores[p.path[:k]] += 1
        if not scores:
            return NATIONAL_PATH if national else ()
        path: tuple[str, ...] = ()
        while True:
            children = [(s, k) for k, s in scores.items() if len(k) == len(path) + 1 and k[: len(path)] == path]
            if not children:
                break
            children.sort(reverse=True)
            best_score, best = children[0]
            if len(children) > 1 and children[1][0] == best_score:
                break  # two places named equally often: no more specific answer
            if path and best_score * 3 < scores[path]:
                break
            if not path and national > best_score:
                return NATIONAL_PATH
            path = best
        return path

    def places_in(self, question: str) -> list[tuple[str, ...]]:
        """Every place a question names, each as a full path, in order of first mention.
        ("全国",) is included when it names the country ("全国", "国家层面", "国务院")."""
        out: list[tuple[str, ...]] = []
        for p in self._read(question or "", question=True):
            if p.path and not (p.path == NATIONAL_PATH and p.quoted) and p.path not in out:
                out.append(p.path)
        return out

    def normalise(self, name: str) -> tuple[str, ...] | None:
        """One place name ("宁波", "上海浦东新区", "南沙") as its path; None unless it names exactly one."""
        found = self.places_in(name)
        return found[0] if len(found) == 1 else None

    def is_known(self, path: Iterable[str]) -> bool:
        """Is ``path`` a path of the division table (or ("全国",))?"""
        p = tuple(path)
        return p == NATIONAL_PATH or p in self._index().known

    covers = staticmethod(covers)
    label = staticmethod(label)

    # ---- reading text

    def _read(self, text: str, question: bool) -> list[_Place]:
        mentions = self._scan(text)
        places: list[_Place] = []
        prev: _Place | None = None
        for m in mentions:
            if m.national:
                places.append(_Place(m.start, m.end, NATIONAL_PATH, quoted=m.quoted))
                prev = None
                continue
            # a name right after its parent ("宁波市江北区", "上海浦东", "广州南沙新区") refines it
            if prev is not None and prev.path and m.start == prev.end:
                ext = {c.path for c in m.cands if _is_prefix(prev.path, c.path)}
                if len(ext) == 1:
                    prev.path, prev.end = ext.pop(), m.end
                    continue
            allowed = tuple(c for c in m.cands if c.strong or (question and c.solo_in_question))
            paths = {c.path for c in allowed}
            if not paths:
                prev = None
                continue
            place = _Place(m.start, m.end, None, allowed, m.quoted)
            if len(paths) == 1:
                place.path = next(iter(paths))
            else:
                # 吉林 is the province and the city: a name whose places nest means the larger one
                top = [p for p in paths if all(p == q or _is_prefix(p, q) for q in paths)]
                if top:
                    place.path = top[0]
            places.append(place)
            prev = place
        self._settle(places)
        return [p for p in places if p.path]

    def _settle(self, places: list[_Place]) -> None:
        """Choose among the places of an ambiguous name: the one whose parents the text names
        most, else the alias table's, else none."""
        context: Counter[tuple[str, ...]] = Counter()
        for p in places:
            if p.path and p.path != NATIONAL_PATH:
                for k in range(1, len(p.path) + 1):
                    context[p.path[:k]] += 1
        for p in places:
            if p.path is not None:
                continue
            support = {c.path: max((context[c.path[:k]] for k in range(1, len(c.path))), default=0) for c in p.options}
            best = max(support.values())
            chosen = [path for path, s in support.items() if s == best]
            if best > 0 and len(chosen) == 1:
                p.path = chosen[0]
                continue
            preferred = {c.path for c in p.options if c.preferred or c.path in self._index().preferred}
            if len(preferred) == 1:
                p.path = preferred.pop()

    def _scan(self, text: str) -> list[_Mention]:
        idx = self._index()
        quoted = _quoted_spans(text)

        def in_quote(pos: int) -> bool:
            return any(a < pos < b for a, b in quoted)

        # the longest name starting at each position; where names overlap, a national word or a
        # name that may stand alone beats a weak one ("明天宁波": 宁波, not 天宁), then the longer wins
        found: list[tuple[int, int, int, str, tuple[Candidate, ...]]] = []
        n = len(text)
        for i in range(n - 1):
            for length in idx.lengths.get(text[i : i + 2], ()):
                form = text[i : i + length]
                cands = idx.forms.get(form)
                if cands is not None:
                    strength = 2 if any(c.strong for c in cands) else 1 if any(c.solo_in_question for c in cands) else 0
                    found.append((strength, length, i, form, cands))
                    break
        found.sort(key=lambda f: (-f[0], -f[1], f[2]))
        taken = bytearray(n)
        out: list[_Mention] = []
        for _, length, i, form, cands in found:
            if any(taken[i : i + length]):
                continue
            taken[i : i + length] = b"\x01" * length
            national = cands[0].path == NATIONAL_PATH
            out.append(_Mention(i, i + length, form, cands, national=national, quoted=in_quote(i)))
        out.sort(key=lambda m: m.start)
        return out

    # ---- the index

    def _index(self) -> DivisionIndex:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = build_index(self._aliases)
        return self._built
