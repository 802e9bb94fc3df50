"""Where a generation's search index lives, chosen by `settings.store.store`.

A store writes a generation's index during a build, publishes it when the generation folder
is complete (its commit point), says which generation readers should open, and opens it as
a `SearchIndex`. The catalogue (kb.sqlite) is always in the generation folder.

    local   FAISS + BM25 files in the generation folder; the `current` symlink is the commit point
    milvus  one collection per generation; the collection alias is the commit point (milvus.py)
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from kb.core.settings import Settings
from kb.store.generations import current_generation
from kb.store.indexes import IndexRows, LocalIndex, SearchIndex, write_indexes
from kb.store.vectors import IVF_NPROBE


class Store(Protocol):
    kind: str

    def current(self) -> Path | None:
        """The generation readers open now (None: no knowledge base yet)."""

    def recover(self) -> None:
        """Under the build lock, before a build: tidy what an interrupted build left behind."""

    def write(self, generation: Path, rows: IndexRows) -> None: ...

    def publish(self, generation: Path) -> None:
        """Make the complete generation the one readers open (the store's commit point)."""

    def discard(self, generation: Path) -> None:
        """A build that failed: drop what it wrote."""

    def open(self, generation: Path) -> SearchIndex: ...

    def close(self) -> None: ...


class LocalStore:
    kind = "local"

    def __init__(self, kb_dir: Path, ann_threshold: int = 0, ann_nprobe: int = IVF_NPROBE):
        """Above `ann_threshold` rows the dense index is approximate (IVF-Flat, `ann_nprobe` lists a query)."""
        self.kb_dir = kb_dir
        self.ann_threshold, self.ann_nprobe = ann_threshold, ann_nprobe

    def current(self) -> Path | None:
        return current_generation(self.kb_dir)

    def recover(self) -> None:
        pass  # a half-written generation folder is all there is: build_lock removes it

    def write(self, generation: Path, rows: IndexRows) -> None:
        write_indexes(generation, rows.chunk_ids, rows.vectors, rows.token_lists, self.ann_threshold)

    def publish(self, generation: Path) -> None:
        pass  # the `current` symlink, swapped right after, is the commit point

    def discard(self, generation: Path) -> None:
        pass

    def open(self, generation: Path) -> SearchIndex:
        return LocalIndex.load(generation, self.ann_nprobe)

    def close(self) -> None:
        pass


def open_store(settings: Settings) -> Store:
    if settings.store.store == "milvus":
        from kb.store.milvus import MilvusStore  # pymilvus is an optional extra

        return MilvusStore(settings)
    return LocalStore(settings.store.kb_dir, settings.store.ann_threshold, settings.store.ann_nprobe)
