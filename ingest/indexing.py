"""Index a generation: embed every chunk (through the cache), tokenise it for BM25, and hand
both, with the fields filters read, to the configured store (kb/store/backends.py)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import CachedEmbedder
from kb.store.backends import Store
from kb.store.generations import GenerationWriter
from kb.store.indexes import IndexRows
from kb.store.status import resolve_statuses


@dataclass
class IndexStats:
    dimension: int
    chunks_embedded: int  # sent to the model; the rest came from the cache


def index_generation(writer: GenerationWriter, embedder: CachedEmbedder, tokenizer: Tokenizer, store: Store,
                     progress: bool = False, status_date: str = "",
                     should_stop: Callable[[], bool] | None = None) -> IndexStats:
    """Write the search indexes of the generation's chunks into the store. Raises Cancelled when
    `should_stop()` turns true while chunks are embedded."""
    chunks = writer.chunks()
    # Measured on both test sets (bench/retrieval.py): e5 ranks better on the bare passage, while
    # BM25 gains from the title and heading path (they name the place, year and topic).
    vectors = embedder.embed([c.text for c in chunks], progress=progress, should_stop=should_stop)
    chunks_embedded = embedder.embedded
    tokens = [tokenizer.tokens(c.search_text) for c in chunks]
    store.write(writer.path, IndexRows([c.chunk_id for c in chunks], vectors, tokens,
                                       [c.search_text for c in chunks], _fields(writer, chunks, status_date)))
    # Sentences are not embedded here: that doubled the build (there are about three times as many),
    # while the answerer needs the few that cover a question best (Tuning.dense_candidates) and
    # embeds those itself, through the same cache.
    return IndexStats(int(vectors.shape[1]) if len(chunks) else 0, chunks_embedded)


def _fields(writer: GenerationWriter, chunks, status_date: str) -> list[dict[str, str]]:
    """Per chunk, its document's fields a filter may read (status as of the build: readers compute
    their own when they open the knowledge base, and filter with that)."""
    documents = {d.doc_id: d for d in writer.documents()}
    profiles = resolve_statuses([(d.doc_id, d.meta.title, d.profile) for d in documents.values()],
                                status_date or dt.date.today().isoformat())
    fields = {}
    for doc_id, doc in documents.items():
        profile, meta = profiles[doc_id], doc.meta
        fields[doc_id] = {"doc_id": doc_id, "doc_type": meta.doc_type or "", "issuer": meta.issuer or "",
                          "date": meta.date or "", "level": profile.level or "", "status": profile.status or "",
                          "region": "/".join(profile.region), "file_name": doc.file_name}
    return [fields[c.doc_id] for c in chunks]
