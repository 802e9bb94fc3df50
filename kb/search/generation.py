"""One generation of the knowledge base, opened for search: its catalogue (documents,
chunks) and its retriever, opened together so they always agree. The app swaps the whole
object after a re-index; the models (`SearchModels`) are loaded once per process and
shared by every generation opened.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kb.core.errors import KbError
from kb.core.places import Places
from kb.core.settings import Settings
from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import KbEmbeddings, QueryEncoder, embedder_id, make_embedder
from kb.search.retriever import Retriever
from kb.store.catalogue import Catalogue
from kb.store.generations import Manifest, open_kb
from kb.store.indexes import load_indexes


@dataclass(frozen=True)
class SearchModels:
    """The embedder (with its query-vector memory) and the tokenizer: loaded once, reused."""

    embedder: KbEmbeddings
    queries: QueryEncoder
    tokenizer: Tokenizer
    places: Places  # the division table, for the places questions name

    @classmethod
    def load(cls, settings: Settings, embedder: KbEmbeddings | None = None,
             tokenizer: Tokenizer | None = None) -> SearchModels:
        embedder = embedder or make_embedder(settings)
        return cls(embedder, QueryEncoder(embedder), tokenizer or Tokenizer(), Places())


@dataclass(frozen=True)
class Generation:
    path: Path
    manifest: Manifest
    catalogue: Catalogue
    retriever: Retriever
    models: SearchModels

    @classmethod
    def open(cls, settings: Settings, models: SearchModels | None = None) -> Generation:
        """The current generation of settings.kb_dir, checked against the configured embedder.
        Raises KbError saying what to do when it is missing, of another embedder, or damaged."""
        kb = open_kb(settings.kb_dir)
        try:
            configured = models.embedder.id if models else embedder_id(settings)
            if kb.manifest.embedder != configured:
                raise KbError(
                    f"the knowledge base in {settings.kb_dir} was built with embedder {kb.manifest.embedder}, "
                    f"but {configured} is configured. Either run `python -m ingest --kb {settings.kb_dir}` to "
                    f"re-embed it with {configured}, or set IPKB_EMBEDDER (and IPKB_EMBED_MODEL) back to what built it."
                )
            try:
                indexes = load_indexes(kb.path, settings.ann_nprobe)
            except (OSError, ValueError, KeyError) as exc:
                raise KbError(f"the indexes in {kb.path} are unreadable ({exc}): "
                              f"rebuild with `python -m ingest --rebuild --kb {settings.kb_dir}`") from None
            if indexes.vectors is not None and indexes.vectors.dim != kb.manifest.dimension:
                raise KbError(f"vector index in {kb.path} has dimension {indexes.vectors.dim}, manifest says "
                              f"{kb.manifest.dimension}: rebuild with `python -m ingest --rebuild`")
            catalogue = Catalogue.load(kb, indexes.chunk_ids, settings.status_date)
        finally:
            kb.close()  # everything is in memory now
        models = models or SearchModels.load(settings)
        retriever = Retriever(catalogue, indexes, models.queries, models.tokenizer, settings)
        return cls(kb.path, kb.manifest, catalogue, retriever, models)
