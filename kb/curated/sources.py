"""Whether a curated entry's sources still hold in the current knowledge base. Pure."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from kb.core.profile import STATUS_ABOLISHED, STATUS_EXPIRED, STATUS_SUPERSEDED
from kb.core.records import Document
from kb.curated.records import (
    FLAG_CHANGED,
    FLAG_DELETED,
    FLAG_EXPIRED,
    FLAG_REVIEW_DUE,
    FLAG_SUPERSEDED,
    CuratedEntry,
    CuratedSource,
    DocumentFacts,
    squeeze,
)

# A document of unknown status (a letter states no 施行 date) or not yet in force does not stale an entry:
# only a status that says the text no longer applies does.
_STALE = {STATUS_EXPIRED: FLAG_EXPIRED, STATUS_SUPERSEDED: FLAG_SUPERSEDED, STATUS_ABOLISHED: FLAG_SUPERSEDED}


def document_facts(documents: Iterable[Document]) -> dict[str, DocumentFacts]:
    """By file name: the documents' squeezed text and status (as the catalogue resolved it). Two documents of
    one name (a corpus file and an upload): a quote holds when either has it, and the status is one that
    applies if either's does."""
    out: dict[str, DocumentFacts] = {}
    for d in documents:
        facts = DocumentFacts(d.file_name, squeeze(d.text), d.profile.status, d.meta.title, d.meta.doc_number)
        if (seen := out.get(d.file_name)) is not None:
            status = seen.status if seen.status not in _STALE else facts.status
            facts = DocumentFacts(d.file_name, seen.text + "\0" + facts.text, status, seen.title, seen.doc_number)
        out[d.file_name] = facts
    return out


def source_problem(source: CuratedSource, docs: Mapping[str, DocumentFacts]) -> str | None:
    """The FLAG_* code of a source that no longer holds, or None."""
    doc = docs.get(source.file)
    if doc is None:
        return FLAG_DELETED
    if squeeze(source.quote) not in doc.text:
        return FLAG_CHANGED
    return _STALE.get(doc.status)


def entry_flags(entry: CuratedEntry, docs: Mapping[str, DocumentFacts], today: str) -> tuple[str, ...]:
    """The reasons the entry is 待复核, in a fixed order, each once."""
    found = {p for s in entry.sources if (p := source_problem(s, docs))}
    if not entry.sources:
        found.add(FLAG_DELETED)
    if entry.review_date and entry.review_date <= today:
        found.add(FLAG_REVIEW_DUE)
    order = (FLAG_CHANGED, FLAG_DELETED, FLAG_EXPIRED, FLAG_SUPERSEDED, FLAG_REVIEW_DUE)
    return tuple(f for f in order if f in found)
