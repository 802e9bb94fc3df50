"""Index a generation: embed every chunk (through the cache) and tokenise it for BM25."""
from __future__ import annotations

from dataclasses import dataclass

from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import CachedEmbedder
from kb.store.generations import GenerationWriter
from kb.store.indexes import write_indexes


@dataclass
class IndexStats:
    dimension: int
    chunks_embedded: int  # sent to the model; the rest came from the cache


def index_generation(writer: GenerationWriter, embedder: CachedEmbedder, tokenizer: Tokenizer,
                     progress: bool = False, ann_threshold: int = 0) -> IndexStats:
    """Write the search indexes beside the generation's kb.sqlite (an approximate dense index above
    `ann_threshold` chunks, Settings.ann_threshold)."""
    chunks = writer.chunks()
    # Measured on both test sets (bench/retrieval.py): e5 ranks better on the bare passage, while
    # BM25 gains from the title and heading path (they name the place, year and topic).
    vectors = embedder.embed([c.text for c in chunks], progress=progress)
    chunks_embedded = embedder.embedded
    tokens = [tokenizer.tokens(c.search_text) for c in chunks]
    write_indexes(writer.path, [c.chunk_id for c in chunks], vectors, tokens, ann_threshold)
    # Sentences are not embedded here: that doubled the build (there are about three times as many),
    # while the answerer needs the few that cover a question best (Tuning.dense_candidates) and
    # embeds those itself, through the same cache.
    return IndexStats(int(vectors.shape[1]) if len(chunks) else 0, chunks_embedded)
