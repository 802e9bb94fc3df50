"""One generation of the knowledge base, opened for search: its catalogue (documents,
chunks) and its retriever, opened together so they always agree. Which generation is
current, and where its search index is, the store says (kb/store/backends.py). The app
swaps the whole object after a re-index; the models (`SearchModels`) are loaded once per
process and shared by every generation opened.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kb.core.errors import KbError
from kb.core.places import Places
from kb.core.settings import Settings
from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import KbEmbeddings, QueryEncoder, embedder_id, make_embedder
from kb.search.ranker import LearnedRanker
from kb.search.retriever import Retriever
from kb.store.backends import open_store
from kb.store.catalogue import Catalogue
from kb.store.generations import Manifest, open_kb


@dataclass(frozen=True)
class SearchModels:
    """The embedder (with its query-vector memory) and the tokenizer: loaded once, reused."""

    embedder: KbEmbeddings
    queries: QueryEncoder
    tokenizer: Tokenizer
    places: Places  # the division table, for the places questions name
    ranker: LearnedRanker | None = None  # None: hybrid search fuses by RRF

    @classmethod
    def load(cls, settings: Settings, embedder: KbEmbeddings | None = None,
             tokenizer: Tokenizer | None = None) -> SearchModels:
        embedder = embedder or make_embedder(settings)
        ranker = LearnedRanker.load(settings.answer.ranker_model) if settings.answer.ranker == "learned" else None
        return cls(embedder, QueryEncoder(embedder), tokenizer or Tokenizer(), Places(), ranker)


@dataclass(frozen=True)
class Generation:
    path: Path
    manifest: Manifest
    catalogue: Catalogue
    retriever: Retriever
    models: SearchModels

    @classmethod
    def open(cls, settings: Settings, models: SearchModels | None = None) -> Generation:
        """The current generation of settings.store.kb_dir, checked against the configured embedder.
        Raises KbError saying what to do when it is missing, of another embedder, or damaged."""
        store = open_store(settings)
        try:
            generation = store.current()
            if generation is None and store.kind != "local":
                raise KbError(f"no knowledge base in {settings.store.kb_dir} for the {store.kind} store: "
                              f"build one with `python -m ingest --kb {settings.store.kb_dir}`")
            kb = open_kb(settings.store.kb_dir, generation)
        except BaseException:
            store.close()
            raise
        index = None
        try:
            configured = models.embedder.id if models else embedder_id(settings)
            if kb.manifest.embedder != configured:
                raise KbError(
                    f"the knowledge base in {settings.store.kb_dir} was built with embedder {kb.manifest.embedder}, "
                    f"but {configured} is configured. Either run `python -m ingest --kb {settings.store.kb_dir}` to "
                    f"re-embed it with {configured}, or set IPKB_EMBEDDER (and IPKB_EMBED_MODEL) back to what built it."
                )
            if kb.manifest.store != settings.store.store:
                raise KbError(f"the knowledge base in {settings.store.kb_dir} keeps its indexes in the {kb.manifest.store} "
                              f"store, but store = {settings.store.store} is configured: run `python -m ingest --kb "
                              f"{settings.store.kb_dir}` to index it there, or set IPKB_STORE back")
            try:
                index = store.open(kb.path)
            except (OSError, ValueError, KeyError) as exc:
                raise KbError(f"the indexes in {kb.path} are unreadable ({exc}): "
                              f"rebuild with `python -m ingest --rebuild --kb {settings.store.kb_dir}`") from None
            if index.dim and index.dim != kb.manifest.dimension:
                raise KbError(f"vector index in {kb.path} has dimension {index.dim}, manifest says "
                              f"{kb.manifest.dimension}: rebuild with `python -m ingest --rebuild`")
            catalogue = Catalogue.load(kb, index.chunk_ids, settings.answer.status_date)
        except BaseException:
            (index or store).close()
            raise
        finally:
            kb.close()  # the catalogue is in memory now
        models = models or SearchModels.load(settings)
        retriever = Retriever(catalogue, index, models.queries, models.tokenizer, settings, models.ranker)
        return cls(kb.path, kb.manifest, catalogue, retriever, models)

    def close(self) -> None:
        """Release the search index (a Milvus connection; nothing for local files)."""
        self.retriever.index.close()
