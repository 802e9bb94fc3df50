"""jionlp's table of Chinese administrative divisions, indexed by every name form a place goes by
(full names, short names, development zones, renamed places), for kb/core/places.py to read text
with. No place name is listed here by hand; NATIONAL_WORDS are organs of the state, not places."""
from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

NATIONAL = "全国"
NATIONAL_PATH: tuple[str, ...] = (NATIONAL,)

# Words that name the whole country (organs of the state), not places.
NATIONAL_WORDS: tuple[str, ...] = (
    "中华人民共和国",
    "全国人民代表大会",
    "全国人大",
    "国务院",
    "最高人民法院",
    "最高人民检察院",
    "中共中央",
    "党中央",
    "国家层面",
    "全国",
    "国家知识产权局",
    "国家版权局",
    "国家市场监督管理总局",
    "国家工商行政管理总局",
    "国家发展和改革委员会",
    "国家税务总局",
)

_ZONE_CODE = re.compile(r"^\d{4}7\d$")  # NBS statistical codes x71-x79: development zones
_PSEUDO_CITY = "省直辖"  # 省直辖行政区划: counties directly under a province


@dataclass(frozen=True)
class Candidate:
    path: tuple[str, ...]
    strong: bool  # may stand alone anywhere
    solo_in_question: bool = False  # a weak name that may stand alone in a question
    preferred: bool = False  # from the alias table: wins a tie between places of one name


@dataclass(frozen=True)
class DivisionIndex:
    forms: Mapping[str, tuple[Candidate, ...]]
    lengths: Mapping[str, tuple[int, ...]]  # first two characters -> form lengths, longest first
    preferred: frozenset[tuple[str, ...]]
    known: frozenset[tuple[str, ...]]  # every path of the table and its prefixes


def build_index(aliases: Mapping[str, tuple[str, ...]]) -> DivisionIndex:
    """Every name form of jionlp's division table, onto the paths it may mean."""
    # jionlp prints a banner on import; keep it off the caller's stdout
    with contextlib.redirect_stdout(io.StringIO()):
        import jionlp

        table = jionlp.china_location_loader()
        changes = jionlp.china_location_change_loader()
        words = jionlp.chinese_word_dictionary_loader()

    forms: dict[str, dict[tuple[str, ...], Candidate]] = {}
    known: set[tuple[str, ...]] = set()

    def add(form: str, cand: Candidate) -> None:
        if not form or len(form) < 2:
            return
        slot = forms.setdefault(form, {})
        old = slot.get(cand.path)
        if old is None or (cand.strong and not old.strong):
            slot[cand.path] = cand

    def aliases_of(entry: dict) -> list[str]:
        alias = entry.get("_alias")
        return [a for a in (alias if isinstance(alias, list) else [alias]) if isinstance(a, str)]

    weak_county_aliases: list[tuple[str, tuple[str, ...]]] = []
    for prov, pv in table.items():
        ppath = (prov,)
        known.add(ppath)
        add(prov, Candidate(ppath, True))
        for a in aliases_of(pv):
            add(a, Candidate(ppath, True))
        for city, cv in pv.items():
            if city.startswith("_"):
                continue
            folded = city == prov or city in aliases_of(pv) or city.startswith(_PSEUDO_CITY)
            cpath = ppath if folded else ppath + (city,)
            known.add(cpath)
            if not city.startswith(_PSEUDO_CITY):
                add(city, Candidate(cpath, True))
                for a in aliases_of(cv):
                    if a == _PSEUDO_CITY or a == city:
                        continue
                    if a in words and not folded:
                        # 日照, 大理, 白银, 来宾 are also ordinary words: in a document they count
                        # only next to their province; a question may use them alone
                        add(a, Candidate(cpath, strong=False, solo_in_question=True))
                    else:
                        add(a, Candidate(cpath, True))
            for county, kv in cv.items():
                if county.startswith("_"):
                    continue
                kpath = cpath + (county,)
                known.add(kpath)
                zone = bool(_ZONE_CODE.match(str(kv.get("_admin_code", ""))))
                add(county, Candidate(kpath, strong=len(county) > 2))
                for a in aliases_of(kv):
                    if a != county:
                        if zone:
                            add(a, Candidate(kpath, strong=False))
                        else:
                            weak_county_aliases.append((a, kpath))

    # places renamed or merged (襄樊市 -> 襄阳市): the old full names, onto the new paths
    for change in changes:
        new = [x for x in change.get("new_loc", []) if x]
        old = change.get("old_loc", [])
        if len(new) < 2 or len(old) < 2:
            continue
        prov, city = new[0], new[1]
        folded = city == prov
        npath = (prov,) + (() if folded else (city,)) + tuple(new[2:3])
        if npath not in known:
            continue
        county_change = len(old) > 2 and bool(old[2][0])
        names = [old[2][0]] if county_change else [old[1][0], old[1][1]]  # 襄樊市 and 襄樊
        for name in names:
            if name and name not in forms and name not in words:
                add(name, Candidate(npath, strong=len(name) > 2 or not county_change))

    # a county's short name: may stand alone in a question when it names one place only and
    # is no ordinary word; never overrides a province, city or full county name
    counts = Counter(a for a, _ in weak_county_aliases)
    for a, kpath in weak_county_aliases:
        solo = counts[a] == 1 and a not in forms and a not in words
        add(a, Candidate(kpath, strong=False, solo_in_question=solo))

    for word in NATIONAL_WORDS:
        forms[word] = {NATIONAL_PATH: Candidate(NATIONAL_PATH, True)}

    preferred: set[tuple[str, ...]] = set()
    for name, path in aliases.items():
        if path not in known:
            raise ValueError(f"alias {name!r}: {path} is not a path of jionlp's division table")
        forms[name] = {path: Candidate(path, True, preferred=True)}
        preferred.add(path)

    frozen = {f: tuple(c.values()) for f, c in forms.items()}
    lengths: dict[str, set[int]] = {}
    for f in frozen:
        lengths.setdefault(f[:2], set()).add(len(f))
    for path in list(known):
        for k in range(1, len(path)):
            known.add(path[:k])
    return DivisionIndex(
        forms=MappingProxyType(frozen),
        lengths=MappingProxyType({k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}),
        preferred=frozenset(preferred),
        known=frozenset(known),
    )
