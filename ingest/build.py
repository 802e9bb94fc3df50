"""Build or update the knowledge base from files: incremental, atomic, per-file errors.

Unchanged files (same content hash) are skipped, changed ones replaced, files that
disappeared from the given folders deleted. A file that fails is reported with its
reason and the batch goes on; if an earlier version of it is in the knowledge base,
that version is kept.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ingest.catalogue import CATALOGUE, catalogue_entry, entry_hash
from ingest.indexing import index_generation
from ingest.loaders import Limits
from ingest.ocr import OcrEngine
from ingest.pipeline import file_hash, process_file, source_key
from ingest.sandbox import PdfSandbox
from kb.core.errors import Cancelled, EmbeddingError, KbError, LoadError
from kb.core.places import Places
from kb.core.settings import Settings
from kb.core.tokenizer import Tokenizer
from kb.models.embeddings import CachedEmbedder, embedder_id, make_embedder
from kb.store.backends import open_store
from kb.store.generations import FileEntry, GenerationWriter, Manifest, build_lock, read_manifest


@dataclass
class FileResult:
    path: str
    status: str  # ok, unchanged, skipped (duplicate content), failed, removed, cancelled (left for the next build)
    reason: str = ""
    chunks: int = 0


@dataclass
class BuildReport:
    kb_dir: Path
    results: list[FileResult] = field(default_factory=list)
    generation: Path | None = None  # None when nothing changed
    embedded: int = 0  # chunks sent to the embedder (the rest came from the cache)
    notices: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        lines = [
            f"{self.count('ok')} ok, {self.count('unchanged')} unchanged, {self.count('skipped')} skipped, "
            f"{self.count('failed')} failed, {self.count('removed')} removed, "
            + (f"{self.count('cancelled')} cancelled, " if self.count("cancelled") else "") +
            f"{self.embedded} chunk(s) embedded -> {self.kb_dir}"
        ]
        lines += [f"  {r.status.upper()} {r.path}: {r.reason}" for r in self.results if r.reason]
        lines += [f"  NOTE {n}" for n in self.notices]
        return "\n".join(lines)


def _cancelled(result: FileResult) -> FileResult:
    """A file whose changes the cancelled build would have written: not indexed, left for the next build."""
    if result.status in ("ok", "removed"):
        return FileResult(result.path, "cancelled", "cancelled while the knowledge base was written")
    return result


def discover(paths: list[Path]) -> list[Path]:
    """Files under the given paths, sorted; hidden files and folders are skipped."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(
                p for p in path.rglob("*")
                if p.is_file() and p.name != CATALOGUE
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found.add(path)  # a missing file is reported as failed, not ignored
    return sorted(found)


def _under(key: str, roots: list[Path]) -> bool:
    path = Path(key)
    return any(path == root or root in path.parents for root in roots)


def build(paths: list[Path], settings: Settings, *, rebuild: bool = False, progress: bool = True,
          exclude: set[str] | None = None, on_file: Callable[[int, int, str], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> BuildReport:
    """Ingest `paths` into the knowledge base. `exclude`: source paths to leave out (and remove);
    `on_file(done, total, name)` reports progress to a UI; `should_stop()` true cancels the build: the
    file being loaded stops (between pages), the files still to do and, when the cancel comes while chunks
    are embedded, the files already loaded are reported "cancelled", and the knowledge base stays as it was
    for them (an unchanged file stays "unchanged")."""
    kb_dir = settings.store.kb_dir
    report = BuildReport(kb_dir)
    model_id = embedder_id(settings)
    ocr = OcrEngine(scale=settings.ingest.ocr_scale) if settings.ingest.ocr else None
    limits = Limits.from_settings(settings.ingest, should_stop=should_stop)
    places = Places()  # the division table loads on the first document
    exclude = exclude or set()
    files = [f for f in discover(paths) if source_key(f) not in exclude]
    roots = [p.resolve() for p in paths]
    store = open_store(settings)
    sandbox = (PdfSandbox(memory_mb=settings.ingest.max_parse_memory_mb, ocr_scale=settings.ingest.ocr_scale if settings.ingest.ocr else None)
               if settings.ingest.max_parse_memory_mb else None)
    with build_lock(kb_dir, store.recover), sandbox or nullcontext():
        try:
            previous, old = (None, Manifest()) if rebuild else read_manifest(kb_dir)
        except KbError as exc:  # an older format or a damaged manifest: ingest everything again
            report.notices.append(f"existing knowledge base not reusable ({exc}); building a new one")
            previous, old, rebuild = None, Manifest(), True
        manifest = Manifest(embedder=model_id, store=settings.store.store, files=dict(old.files))
        writer: GenerationWriter | None = None

        def open_writer() -> GenerationWriter:
            nonlocal writer
            if writer is None:
                writer = GenerationWriter(kb_dir, previous, manifest)
            return writer

        # which files will be processed (new or changed): progress counts only those
        digests: dict[Path, str] = {}
        for path in files:
            try:
                digests[path] = entry_hash(file_hash(path), catalogue_entry(path))
            except Exception:  # noqa: BLE001 - unreadable: reported as failed in the loop
                pass
        pending = [p for p in files if rebuild or p not in digests
                   or getattr(old.files.get(source_key(p)), "content_hash", None) != digests[p]]
        position = {p: i for i, p in enumerate(pending)}

        try:
            bar = tqdm(files, desc="ingest", unit="file", disable=not progress, file=sys.stderr)
            for path in bar:
                bar.set_postfix_str(path.name[-30:])
                if on_file and path in position:
                    on_file(position[path], len(pending), path.name)
                key = source_key(path)
                try:
                    if not path.is_file():
                        raise LoadError("file not found")
                    digest = digests.get(path) or entry_hash(file_hash(path), catalogue_entry(path))
                    entry = old.files.get(key)
                    if entry and entry.content_hash == digest and not rebuild:
                        report.results.append(FileResult(str(path), "unchanged"))
                        continue
                    if should_stop is not None and should_stop():
                        report.results.append(FileResult(str(path), "cancelled", "cancelled before it was read"))
                        continue
                    duplicate = next((k for k, e in manifest.files.items() if e.content_hash == digest and k != key), None)
                    if duplicate:
                        report.results.append(FileResult(str(path), "skipped", f"same content as {duplicate}"))
                        continue
                    show_pages = progress and path.suffix.lower() == ".pdf"
                    with tqdm(desc="  pages", unit="page", leave=False, disable=not show_pages, file=sys.stderr) as pages:
                        def on_page(done: int, total: int) -> None:
                            pages.total = total
                            pages.update(done - pages.n)

                        doc, _ = process_file(path, max_bytes=settings.ingest.max_file_bytes, ocr=ocr,
                                              content_hash=digest, on_page=on_page, places=places, limits=limits,
                                              sandbox=sandbox)
                except Exception as exc:  # one bad file never aborts the batch
                    if should_stop is not None and should_stop() and str(exc) == "cancelled":
                        report.results.append(FileResult(str(path), "cancelled", "cancelled while it was read"))
                        continue
                    if isinstance(exc, LoadError):
                        reason = str(exc)
                    elif isinstance(exc, OSError):
                        reason = f"cannot read file: {exc.strerror or exc}"
                    else:
                        reason = f"internal error while processing: {type(exc).__name__}: {exc}"
                    if key in manifest.files:
                        reason += " (previous version kept)"
                    report.results.append(FileResult(str(path), "failed", reason))
                    continue
                open_writer().put_document(doc)
                manifest.files[key] = FileEntry(doc.doc_id, digest, path.stat().st_size)
                report.results.append(FileResult(str(path), "ok", chunks=len(doc.chunks)))

            seen = {source_key(p) for p in files}
            for key in sorted(old.files):
                if key not in seen and (key in exclude or ((_under(key, roots) or rebuild) and not Path(key).exists())):
                    open_writer().delete_document(old.files[key].doc_id)
                    del manifest.files[key]
                    report.results.append(FileResult(key, "removed"))
            if writer is None and (previous is None or old.embedder != model_id or old.store != settings.store.store
                                   or store.current() != previous):
                open_writer()  # first build, another embedder or store: still write a generation
            if writer is not None:
                embedder = CachedEmbedder(settings.embed_cache_path, model_id, lambda: make_embedder(settings),
                                          settings.models.embed_batch, seed=settings.models.embed_seed)
                try:
                    stats = index_generation(writer, embedder, Tokenizer(), store, progress=progress,
                                             status_date=settings.answer.status_date, should_stop=should_stop)
                except EmbeddingError as exc:
                    raise KbError(f"embedding failed, knowledge base left as it was: {exc}") from None
                except Cancelled:
                    store.discard(writer.path)
                    writer.abort()
                    report.results = [_cancelled(r) for r in report.results]
                    return report
                finally:
                    embedder.close()
                manifest.dimension = stats.dimension
                report.embedded = stats.chunks_embedded
                report.generation = writer.commit(store.publish)
        except BaseException:
            if writer is not None:
                store.discard(writer.path)
                writer.abort()
            raise
        finally:
            store.close()
    return report
