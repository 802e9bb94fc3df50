"""The current generation's documents with their statuses, for the command line (no search models)."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from kb.core.settings import Settings
from kb.curated.records import DocumentFacts
from kb.curated.sources import document_facts
from kb.store.backends import open_store
from kb.store.generations import open_kb
from kb.store.status import resolve_statuses


def current_documents(settings: Settings) -> dict[str, DocumentFacts]:
    """By file name, as the answer path sees them (statuses as of the `status_date` setting, or today)."""
    store = open_store(settings)
    try:
        kb = open_kb(settings.store.kb_dir, store.current())
    finally:
        store.close()
    try:
        documents = kb.documents()
    finally:
        kb.close()
    profiles = resolve_statuses([(d.doc_id, d.meta.title, d.profile) for d in documents],
                                settings.answer.status_date or dt.date.today().isoformat())
    return document_facts(replace(d, profile=profiles[d.doc_id]) for d in documents)
