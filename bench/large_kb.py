"""A large knowledge base for benchmarks, built from a real one by repeating its documents.

Each copy gets new document and chunk ids and a copy marker in its text (so de-duplication
keeps it); its vector is the original's plus a little noise (search cost does not depend on
the values, and embedding 10,000 chunks with e5 would take about 17 minutes).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from kb.core.guard import quotable_sentences
from kb.core.sentences import sentence_spans
from kb.core.settings import Settings
from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import CachedEmbedder, E5Embeddings
from kb.store.generations import FileEntry, GenerationWriter, Manifest, open_kb
from kb.store.indexes import write_indexes


def build_large(source: Path, target: Settings, size: int, cache: Path) -> float:
    """Write a `size`-chunk knowledge base by repeating the documents of `source` under new ids."""
    kb = open_kb(source)
    docs = [kb.document(d.doc_id) for d in kb.documents()]
    embedder = CachedEmbedder(cache, E5Embeddings.id, E5Embeddings)
    base = {c.chunk_id: v for d in docs for c, v in zip(d.chunks, embedder.embed([c.text for c in d.chunks]))}
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    manifest = Manifest(embedder=E5Embeddings.id, dimension=384)
    target.store.kb_dir.mkdir(parents=True, exist_ok=True)
    writer = GenerationWriter(target.store.kb_dir, None, manifest)
    chunk_ids, vectors, tokens, texts, tokenizer, copy = [], [], [], [], Tokenizer(), 0
    while len(chunk_ids) < size:
        for doc in docs:
            if len(chunk_ids) >= size:
                break
            doc_id = f"{doc.doc_id}-{copy:04d}"
            mark = f"（副本{copy}）"
            chunks = [replace(c, chunk_id=f"{doc_id}-{c.ordinal}", doc_id=doc_id, text=c.text + mark,
                              search_text=c.search_text + mark, sentences=sentence_spans(c.text + mark))
                      for c in doc.chunks][: size - len(chunk_ids)]
            writer.put_document(replace(doc, doc_id=doc_id, source_path=f"{doc.source_path}#{copy}",
                                        file_name=f"{copy:04d}-{doc.file_name}", chunks=chunks))
            manifest.files[f"{doc.source_path}#{copy}"] = FileEntry(doc_id, doc.content_hash, 0)
            for original, chunk in zip(doc.chunks, chunks):
                noisy = base[original.chunk_id] + rng.normal(0, 0.02, 384).astype(np.float32)
                vectors.append(noisy / np.linalg.norm(noisy))
                chunk_ids.append(chunk.chunk_id)
                tokens.append(tokenizer.tokens(chunk.search_text))
                texts.append((chunk.text, chunk.sentences))
        copy += 1
    write_indexes(writer.path, chunk_ids, np.vstack(vectors), tokens, target.store.ann_threshold)
    # as ingestion does: the extractive answerer's sentence vectors go into the cache
    embedder.embed(list(dict.fromkeys(s for text, spans in texts for _, _, s in quotable_sentences(text, spans))))
    writer.commit()
    kb.close()
    embedder.close()
    return time.perf_counter() - start
