"""KnowledgeService: the one door of the web layer into the knowledge base. Answers, search, documents,
feedback, and management (upload, delete, re-index in the background), with the notices the web adds
to answers added here, once.

Inside, small collaborators: `AdminGate` (the admin password and its lockout), `UploadFolder` (uploads and
exclusions), `BuildJobs` (the background build), `Generations` (the answerer of the current generation,
swapped whole after a re-index). A re-index builds a new generation while the current one keeps
answering; only when the build has committed is the new generation opened (reusing the loaded embedder
and tokenizer) and swapped in.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.build import BuildReport, build
from kb.core.errors import KbError
from kb.core.filters import Filters
from kb.core.guard import suspicious_sentences
from kb.core.places import Places
from kb.core.records import Answer, Document, Passage
from kb.core.settings import Settings
from kb.store.backends import open_store
from kb.store.generations import current_generation
from web.feedback import FeedbackStore
from web.service.admin import AdminGate
from web.service.curated import CuratedDesk, GapDesk
from web.service.generations import Generations, OpenAnswerer
from web.service.jobs import BuildJobs, Job
from web.service.uploads import UploadFolder

if TYPE_CHECKING:
    from kb.answer.answerer import Answerer
    from kb.search.generation import Generation


def open_answerer(settings: Settings) -> OpenAnswerer:
    """The real Answerer factory: e5, the store, the LLM if configured (kb/answer)."""
    from kb.answer.answerer import Answerer

    return lambda models=None: Answerer.open(settings, models)


class KnowledgeService(CuratedDesk, GapDesk):
    def __init__(self, settings: Settings, attempts: MutableMapping | None = None, *,
                 answerer_factory: OpenAnswerer | None = None,
                 build: Callable[..., BuildReport] = build):
        """`attempts`: where wrong admin passwords are counted (web/attempts.py); in memory by default, a file
        the app's worker processes share under `--workers`. `answerer_factory(models)` opens an answerer on
        the current generation and `build` is ingest's: tests inject fakes."""
        self.settings = settings
        self.kb_dir = settings.store.kb_dir
        self.admin = AdminGate(settings, attempts)
        self.folder = UploadFolder(self.kb_dir)
        self.generations = Generations(answerer_factory or open_answerer(settings),
                                       lambda: current_generation(self.kb_dir))
        self.jobs = BuildJobs(settings, self.folder, lambda: self.generation.path, self.generations.swap, build)
        self.feedback = FeedbackStore(self.kb_dir / "feedback.sqlite")
        self._suspicious: tuple[Path | None, dict[str, list[str]]] = (None, {})

    # --- answering and search (always on)
    @property
    def answerer(self) -> Answerer:
        """The Answerer of the current generation (for the evaluation and tests; the web asks through `ask`)."""
        return self.generations.answerer

    @property
    def generation(self) -> Generation:
        """The generation answers come from now (swapped whole after a re-index)."""
        return self.answerer.generation

    @property
    def generation_path(self) -> Path:
        return self.generation.path

    @property
    def places(self) -> Places:
        """The division table, for the places a request names."""
        return self.generation.models.places

    def ask(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
            region: str = "") -> Answer:
        return self._served(self._noticed(self.answerer.answer(question, history, filters=filters, region=region)))

    def stream(self, question: str, history: list[dict] | None = None, filters: Filters | None = None,
               region: str = "") -> Iterator[str | Answer]:
        """Text deltas as the answer is written (LLM), then the final Answer."""
        for event in self.answerer.stream(question, history, filters=filters, region=region):
            yield self._served(self._noticed(event)) if isinstance(event, Answer) else event

    def _served(self, answer: Answer) -> Answer:
        self.count_served(answer)  # hit tracking (web/service/curated.py)
        self.log_gap(answer)  # refused or low confidence: the knowledge-gap log
        return answer

    def _noticed(self, answer: Answer) -> Answer:
        if notice := self.building_notice():
            answer.notices.append(notice)
        return answer

    def building_notice(self) -> str | None:
        """While the first build runs, what a question gets told."""
        job = self.job
        if job.running and not self.generation.catalogue.documents:
            return f"知识库正在建立中（已处理 {job.done}/{job.total or '…'} 个文件），请稍候再问。"
        return None

    def search(self, query: str, k: int = 10, filters: Filters | None = None) -> list[Passage]:
        return self.generation.retriever.search(query, k=k, filters=filters)

    def lookup(self, query: str, k: int = 10, filters: Filters | None = None) -> tuple[list[Passage], Answer]:
        """The hotline lookup (检索): the k best passages and the answer read from them, with one search."""
        answerer = self.answerer  # one generation for both, even if a re-index swaps it meanwhile
        passages = answerer.retrieve(query, filters, k)
        shown = passages[:k]
        if shown and self.settings.answer.search_min_score_ratio > 0:  # not padded to k with passages far below the best
            floor = max(p.score for p in shown) * self.settings.answer.search_min_score_ratio
            shown = [p for p in shown if p.score >= floor]
        return shown, answerer.answer(query, filters=filters, passages=passages)

    def documents(self) -> list[Document]:
        return list(self.generation.catalogue.documents.values())

    def chunk_counts(self) -> dict[str, int]:
        return self.generation.catalogue.chunk_counts()

    def suspicious(self) -> dict[str, list[str]]:
        """Per document, its sentences that are kept from answers and prompts (instructions to the assistant,
        payment demands: kb/core/guard.py), for people to review in 知识库. Worked out once per generation."""
        path, found = self._suspicious
        if path != self.generation_path:
            path = self.generation_path
            found = {d.doc_id: hits for d in self.documents() if (hits := suspicious_sentences(d.text))}
            self._suspicious = (path, found)
        return found

    def source_file(self, doc_id: str) -> Path | None:
        """The original file of a document in the knowledge base (only those: never an arbitrary path)."""
        doc = self.generation.catalogue.documents.get(doc_id)
        path = Path(doc.source_path) if doc else None
        return path if path and path.is_file() else None

    def evaluate(self, testset: Path, out: Path, ablation: bool = False,
                 progress: Callable[[int, int, str], None] | None = None) -> tuple[int, int]:
        """Run an evaluation (eval/) against the current generation, writing into `out`; that generation's
        documents and chunks."""
        from eval.runner import evaluate  # matplotlib and all: only when asked

        answerer = self.answerer  # the knowledge base the run is against, named in the report
        evaluate(answerer, testset, out, ablation=ablation, show_bar=False, progress=progress)
        catalogue = answerer.generation.catalogue
        return len(catalogue.documents), sum(catalogue.chunk_counts().values())

    # --- management (admin only)
    @property
    def management_enabled(self) -> bool:
        return self.admin.enabled

    def check_admin(self, password: str | None, client: str = "") -> None:
        self.admin.check(password, client)

    @property
    def uploads(self) -> Path:
        return self.folder.path

    @property
    def job(self) -> Job:
        return self.jobs.job

    def upload(self, password: str, files: list[tuple[str, Path]], client: str = "") -> list[str]:
        """Copy uploaded files (original name, temporary path) into the KB's uploads folder."""
        self.check_admin(password, client)
        return self.folder.save(files, self.settings.ingest.max_file_bytes, self.settings.ingest.max_file_mb)

    def delete(self, password: str, doc_id: str, client: str = "") -> str:
        """Remove a document: an uploaded file is deleted, a corpus file is excluded. Re-index to apply."""
        self.check_admin(password, client)
        doc = self.generation.catalogue.documents.get(doc_id)
        if doc is None:
            raise KbError(f"没有这个文件：{doc_id}")
        self.folder.remove(doc)
        return doc.file_name

    def reindex(self, password: str, client: str = "") -> bool:
        """Start a background build of the corpus and the uploads; False when one is running
        (that build then runs once more when it ends, so a change made meanwhile is not lost)."""
        self.check_admin(password, client)
        return self.build_corpus()

    def build_corpus(self) -> bool:
        """The background build itself (no password: the app starts one when it has no knowledge base)."""
        return self.jobs.start()

    def cancel(self, password: str, client: str = "") -> bool:
        """Stop the running ingestion between pages; False when none runs."""
        self.check_admin(password, client)
        return self.jobs.cancel()

    def unindexed_uploads(self) -> list[Path]:
        """Uploaded files the knowledge base does not hold: a build killed before it committed left them.
        The app builds at start-up when there are any, instead of showing 空闲 while they wait."""
        from ingest.pipeline import source_key
        from kb.store.generations import read_manifest

        try:
            _, manifest = read_manifest(self.kb_dir)
        except KbError:
            return []  # not readable: the next build starts anew anyway
        return [p for p in self.folder.files() if source_key(p) not in manifest.files]

    def failed_uploads(self) -> list[Path]:
        return self.folder.failed()

    def delete_failed(self, password: str, client: str = "") -> list[str]:
        """Delete the failed uploads kept in uploads/.failed/; their names."""
        self.check_admin(password, client)
        return self.folder.delete_failed()

    # --- generations made by other processes
    def refresh(self) -> bool:
        return self.generations.refresh()

    def watch_generations(self, interval: float = 1.0) -> threading.Event:
        return self.generations.watch(interval)

    def close(self) -> None:
        self.generations.close()
        self.feedback.close()
        self.curated_store.close()
        self.gap_log.close()


def ensure_knowledge_base(settings: Settings) -> bool:
    """With no knowledge base yet, make an empty one, so the app can serve at once while the corpus is
    built in the background (`KnowledgeService.build_corpus`). True when that build is needed."""
    store = open_store(settings)  # the milvus store's current generation is its alias's
    try:
        if store.current() is not None:
            return False
    finally:
        store.close()
    print(f"No knowledge base in {settings.store.kb_dir}: the app starts now and builds one from "
          f"{', '.join(map(str, settings.ingest.corpus))} in the background.", file=sys.stderr)
    build([], settings, progress=False)
    return True
