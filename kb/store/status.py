"""Each document's status as of a date, across the knowledge base: a later version of the same
title supersedes an earlier one, a document that says "《…》同时废止" abolishes another, and
otherwise the document's own dates decide (kb/core/profile.py). Pure."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Hashable, Iterable
from dataclasses import replace

from kb.core.profile import (
    STATUS_ABOLISHED,
    STATUS_EXPIRED,
    STATUS_IN_FORCE,
    STATUS_NOT_YET,
    STATUS_SUPERSEDED,
    STATUS_UNKNOWN,
    DocumentProfile,
)

_TITLE_NOISE = re.compile(r"[《》〈〉<>\s\"“”]")
_TITLE_BRACKETS = re.compile(r"[(\[【][^()\[\]【】]*(?:\d{4}|修订|修正|修改|试行|暂行|草案|征求意见稿|文本)[^()\[\]【】]*[)\]】]")
_TITLE_YEAR = re.compile(r"\d{4}\s*(?:年度|年版|年)?")


def normalise_title(title: str) -> str:
    """The title that versions share: no brackets like （2010修订）/（试行）, no years
    ("2017年度…"), no 《》, no leading 中华人民共和国."""
    t = unicodedata.normalize("NFKC", title or "")
    t = _TITLE_NOISE.sub("", t)
    t = _TITLE_BRACKETS.sub("", t)
    t = _TITLE_YEAR.sub("", t)
    if t.startswith("中华人民共和国") and len(t) > len("中华人民共和国"):
        t = t[len("中华人民共和国") :]
    return t


def _same_region(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return not a or not b or a == b


def status_as_of(profile: DocumentProfile, as_of: str) -> str:
    """The status a document has from its own dates alone."""
    if profile.effective_until and profile.effective_until < as_of:
        return STATUS_EXPIRED
    if profile.effective_from:
        return STATUS_NOT_YET if profile.effective_from > as_of else STATUS_IN_FORCE
    return STATUS_UNKNOWN


def resolve_statuses(
    docs: Iterable[tuple[Hashable, str, DocumentProfile]],
    as_of: str,
) -> dict[Hashable, DocumentProfile]:
    """Every document's profile with its status as of ``as_of`` (yyyy-mm-dd).

    - 已废止: another document in force by ``as_of`` names this title as abolished (same region, or
      a region unknown), and this document is not newer than that one. A document abolishing its
      own title (the 2010 implementing rules abolish "the 1992 《中华人民共和国专利法实施细则》")
      speaks of an earlier version: that is left to the next rule;
    - 已被取代: another document with the same normalised title and the same region has a later
      version date (its latest stated date), not after ``as_of``. Without dates on both sides
      versions are not ordered;
    - otherwise from the document's own dates: 已过期 (effective_until < as_of), 尚未施行,
      现行有效 (an effective_from, no end passed), else 未知.
    """
    as_of = dt.date.fromisoformat(as_of).isoformat()
    items = list(docs)
    keys = [normalise_title(title) for _, title, _ in items]
    by_key: dict[str, list[int]] = {}
    abolished_by: dict[str, list[int]] = {}
    for j, (_, _, prof) in enumerate(items):
        by_key.setdefault(keys[j], []).append(j)
        for t in {normalise_title(t) for t in prof.abolishes}:
            if t != keys[j]:
                abolished_by.setdefault(t, []).append(j)

    out: dict[Hashable, DocumentProfile] = {}
    for i, (doc_id, _, prof) in enumerate(items):
        mine = prof.version_date
        status = None
        for j in abolished_by.get(keys[i], []):
            other = items[j][2]
            took_effect = other.effective_from or other.version_date
            if j == i or not took_effect or took_effect > as_of or not _same_region(prof.region, other.region):
                continue
            if not (mine and mine > took_effect):
                status = STATUS_ABOLISHED
                break
        if status is None and mine and prof.region:
            for j in by_key[keys[i]]:
                other = items[j][2]
                theirs = other.version_date
                if j != i and other.region == prof.region and theirs and mine < theirs <= as_of:
                    status = STATUS_SUPERSEDED
                    break
        out[doc_id] = replace(prof, status=status or status_as_of(prof, as_of))
    return out
