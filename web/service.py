"""The service the web app and the HTTP API stand on: answers, search, documents, feedback,
and knowledge-base management (upload, delete, re-index in the background).

A re-index builds a new generation while the current one keeps answering; only when the
build has committed is the new generation opened (reusing the loaded embedder and
tokenizer) with its Answerer, and swapped in. Management needs the admin password from the configuration;
with none configured, management is off.
"""
from __future__ import annotations

import hmac
import json
import math
import os
import re
import shutil
import sys
import threading
import time
import unicodedata
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from ingest.build import BuildReport, build
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import source_key
from kb.answer.answerer import Answerer
from kb.core.errors import AdminError, BuildBusyError, KbError, UploadError
from kb.core.records import Answer, Document, Passage
from kb.core.settings import Settings
from kb.search.filters import Filters
from kb.search.generation import Generation
from kb.store.backends import open_store
from kb.store.generations import current_generation
from web.attempts import Attempts
from web.feedback import FeedbackStore

UPLOADS = "uploads"
FAILED = ".failed"  # uploads/.failed/: uploads that could not be ingested (hidden: a build skips it)
EXCLUDED = "excluded.json"
BUILD_WAIT_S = 1.0  # how often a re-index looks whether another process's build has ended




@dataclass
class Job:
    """The background ingestion, as the UI shows it."""

    running: bool = False
    done: int = 0
    total: int = 0
    message: str = "空闲"
    summary: str = ""
    started: float = 0.0
    finished: float = 0.0
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files with the same content as one already there
    added: list[str] = field(default_factory=list)  # files indexed (new or changed)
    unchanged: list[str] = field(default_factory=list)  # uploaded again as they already were: nothing to do

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else (0.0 if self.running else 1.0)


def _uploaded_since(path: Path, uploads: Path, since: float) -> bool:
    try:
        return path.parent.resolve() == uploads.resolve() and path.stat().st_mtime > since
    except OSError:
        return False


def safe_file_name(name: str) -> str:
    """A plain file name for an upload: no folders, no traversal, no control or odd characters."""
    name = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    name = re.sub(r"[^\w\u4e00-\u9fff.()（）\-—，、 ]", "_", name).strip(" .")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        raise UploadError(f"“{name or '(空)'}”没有文件扩展名")
    if f".{suffix.lower()}" not in SUPPORTED_SUFFIXES:
        raise UploadError(f"不支持的文件类型 .{suffix}（支持：{'、'.join(sorted(SUPPORTED_SUFFIXES))}）")
    return f"{stem[:100]}.{suffix.lower()}"


class KnowledgeService:
    def __init__(self, settings: Settings, attempts: MutableMapping | None = None):
        """`attempts`: where wrong admin passwords are counted (web/attempts.py); in memory by default,
        a file the app's worker processes share under `--workers`."""
        self.settings = settings
        self.kb_dir = settings.store.kb_dir
        self.uploads = self.kb_dir / UPLOADS
        self._lock = threading.RLock()
        self._swap_lock = threading.Lock()
        self._answerer = Answerer.open(settings)
        self.feedback = FeedbackStore(self.kb_dir / "feedback.sqlite")
        self.job = Job()
        self._again = False  # a re-index was asked for while one ran: run once more when it ends
        self._cancel = threading.Event()
        # client -> (wrong passwords in a row, locked until)
        self._failures = attempts if attempts is not None else Attempts()

    # --- answering and search (always on)
    @property
    def answerer(self) -> Answerer:
        with self._lock:
            return self._answerer

    @property
    def generation(self) -> Generation:
        """The generation answers come from now (swapped whole after a re-index)."""
        return self.answerer.generation

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

    def source_file(self, doc_id: str) -> Path | None:
        """The original file of a document in the knowledge base (only those: never an arbitrary path)."""
        doc = self.generation.catalogue.documents.get(doc_id)
        path = Path(doc.source_path) if doc else None
        return path if path and path.is_file() else None

    def building_notice(self) -> str | None:
        """While the first build runs, what a question gets told."""
        job = self.job
        if job.running and not self.generation.catalogue.documents:
            return f"知识库正在建立中（已处理 {job.done}/{job.total or '…'} 个文件），请稍候再问。"
        return None

    # --- management (admin only)
    @property
    def management_enabled(self) -> bool:
        return bool(self.settings.web.admin_password)

    def check_admin(self, password: str | None, client: str = "") -> None:
        """The admin password, rate-limited per client (its address): after `admin_max_failures` wrong
        passwords, every attempt (right or wrong) is refused for a wait that doubles with each further
        failure, up to `admin_lockout_max_seconds`. A right password clears the count."""
        if not self.management_enabled:
            raise AdminError("知识库管理未启用：请在配置中设置 admin_password")
        now = time.monotonic()
        with self._lock, self._failures.locked():
            failures, until = self._failures.get(client, (0, 0.0))
            if now < until:
                raise AdminError(f"密码错误次数过多，请 {math.ceil(until - now)} 秒后再试")
        if not hmac.compare_digest((password or "").encode(), self.settings.web.admin_password.encode()):
            with self._lock, self._failures.locked():
                failures = self._failures.get(client, (0, 0.0))[0] + 1
                until = 0.0
                over = failures - self.settings.web.admin_max_failures
                if over >= 0:
                    until = now + min(self.settings.web.admin_lockout_seconds * 2 ** over,
                                      self.settings.web.admin_lockout_max_seconds)
                self._failures[client] = (failures, until)
            raise AdminError("管理密码不正确" + ("；错误次数过多，请稍后再试" if until else ""))
        with self._lock, self._failures.locked():
            self._failures.pop(client, None)

    def upload(self, password: str, files: list[tuple[str, Path]], client: str = "") -> list[str]:
        """Copy uploaded files (original name, temporary path) into the KB's uploads folder."""
        self.check_admin(password, client)
        checked = []  # every file is checked before any is copied: a refused batch leaves nothing behind
        for original, temp in files:
            name = safe_file_name(original)
            size = Path(temp).stat().st_size
            if size > self.settings.ingest.max_file_bytes:
                raise UploadError(f"“{name}”有 {size / 2**20:.1f} MB，超过上限 {self.settings.ingest.max_file_mb:g} MB")
            checked.append((original, name, temp))
        self.uploads.mkdir(parents=True, exist_ok=True)
        saved = []
        for original, name, temp in checked:
            target = (self.uploads / name).resolve()
            if target.parent != self.uploads.resolve():
                raise UploadError(f"文件名不安全：{original}")
            shutil.copyfile(temp, target)
            self._set_excluded(source_key(target), False)
            saved.append(name)
        return saved

    def delete(self, password: str, doc_id: str, client: str = "") -> str:
        """Remove a document: an uploaded file is deleted, a corpus file is excluded. Re-index to apply."""
        self.check_admin(password, client)
        doc = self.generation.catalogue.documents.get(doc_id)
        if doc is None:
            raise KbError(f"没有这个文件：{doc_id}")
        path = Path(doc.source_path)
        if path.parent.resolve() == self.uploads.resolve():
            path.unlink(missing_ok=True)
        self._set_excluded(doc.source_path, True)
        return doc.file_name

    def _excluded(self) -> set[str]:
        path = self.kb_dir / EXCLUDED
        return set(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else set()

    def _set_excluded(self, key: str, excluded: bool) -> None:
        with self._lock:
            keys = self._excluded()
            keys = keys | {key} if excluded else keys - {key}
            tmp = self.kb_dir / f".{EXCLUDED}.{os.getpid()}"  # replaced whole: another worker may be reading it
            tmp.write_text(json.dumps(sorted(keys), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.kb_dir / EXCLUDED)

    def reindex(self, password: str, client: str = "") -> bool:
        """Start a background build of the corpus and the uploads; False when one is running
        (that build then runs once more when it ends, so a change made meanwhile is not lost)."""
        self.check_admin(password, client)
        return self.build_corpus()

    def build_corpus(self) -> bool:
        """The background build itself (no password: the app starts one when it has no knowledge base)."""
        with self._lock:
            if self.job.running:
                self._again = True  # files may have changed after this build read them
                return False
            self.job = Job(running=True, message="正在准备…", started=time.time())
        threading.Thread(target=self._reindex, name="ipkb-reindex", daemon=True).start()
        return True

    def cancel(self, password: str, client: str = "") -> bool:
        """Stop the running ingestion between pages: the file being loaded and the rest are skipped,
        what was done is kept. False when none runs."""
        self.check_admin(password, client)
        with self._lock:
            if not self.job.running:
                return False
            self._again = False
            self._cancel.set()
            return True

    def failed_uploads(self) -> list[Path]:
        """Uploaded files that could not be ingested, kept aside in uploads/.failed/ until deleted."""
        folder = self.uploads / FAILED
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def delete_failed(self, password: str, client: str = "") -> list[str]:
        """Delete the failed uploads kept in uploads/.failed/; their names."""
        self.check_admin(password, client)
        names = []
        for path in self.failed_uploads():
            path.unlink(missing_ok=True)
            names.append(path.name)
        return names

    def _set_aside(self, report: BuildReport) -> None:
        """Failed uploads leave uploads/ (not retried on every re-index), into uploads/.failed/;
        a duplicate upload (the same content as a document already there) is removed."""
        uploads = self.uploads.resolve()
        for result in report.results:
            path = Path(result.path)
            if result.status == "skipped" and path.parent.resolve() == uploads and path.is_file():
                path.unlink(missing_ok=True)
        for result in report.failed:
            path = Path(result.path)
            if path.parent.resolve() == uploads and path.is_file() and not result.reason.startswith("cancelled"):
                (uploads / FAILED).mkdir(exist_ok=True)
                path.replace(uploads / FAILED / path.name)

    def _reindex(self) -> None:
        job = self.job
        self._cancel.clear()

        def on_file(done: int, total: int, name: str) -> None:
            job.done, job.total, job.message = done, total, f"正在处理 {name}（{done + 1}/{total}）"

        try:
            # the uploads folder is always given, even empty or removed: its files gone means their documents go
            self.uploads.mkdir(parents=True, exist_ok=True)
            paths = [p for p in self.settings.ingest.corpus if p.exists()] + [self.uploads]
            indexed_at = self.generation.path.stat().st_mtime if self.generation.path.exists() else time.time()
            report = self._build_when_free(paths, on_file, job)
            self._set_aside(report)
            job.errors = [f"{Path(r.path).name}: {r.reason}" for r in report.failed]
            job.added = [Path(r.path).name for r in report.results if r.status == "ok"]
            job.skipped = [f"{Path(r.path).name}（与已有文件 {Path(r.reason.removeprefix('same content as ')).name} 内容相同）"
                           for r in report.results if r.status == "skipped"]
            # a file uploaded since the last index (any worker) that the build found as it was
            job.unchanged = [Path(r.path).name for r in report.results if r.status == "unchanged"
                             and _uploaded_since(Path(r.path), self.uploads, indexed_at)]
            job.summary = report.summary()
            if report.generation is not None or current_generation(self.kb_dir) != self.generation.path:
                job.message = "正在载入新索引…"
                self._swap()
            job.message = ("已取消" if self._cancel.is_set() else "完成") + (
                f"，{len(job.errors)} 个文件失败" if job.errors else "")
        except Exception as exc:  # the old index keeps serving; the error is shown, not raised
            job.message = f"失败：{exc}"
            job.errors.append(str(exc))
        finally:
            job.done = job.total
            job.finished = time.time()
            with self._lock:
                again, self._again = self._again, False
                if again:
                    self.job = Job(running=True, message="正在准备…", started=time.time())
                job.running = False
            if again:
                threading.Thread(target=self._reindex, name="ipkb-reindex", daemon=True).start()

    def _build_when_free(self, paths: list[Path], on_file, job: Job) -> BuildReport:
        """Build; while another process (another app worker, `python -m ingest`) holds the build lock,
        wait for it, then build on what it made (a cancel stops the wait)."""
        while True:
            try:
                return build(paths, self.settings, progress=False, exclude=self._excluded(), on_file=on_file,
                             should_stop=self._cancel.is_set)
            except BuildBusyError:
                if self._cancel.is_set():
                    raise KbError("已取消：另一个索引任务正在运行") from None
                job.message = "等待另一个索引任务结束…"
                time.sleep(BUILD_WAIT_S)

    def refresh(self) -> bool:
        """Swap in the current generation if another process built it (`--workers`: every worker sees a
        re-index made by any); True when swapped. A readlink: cheap enough to call every second."""
        current = current_generation(self.kb_dir)
        return current is not None and current != self.generation.path and self._swap()

    def watch_generations(self, interval: float = 1.0) -> threading.Event:
        """Call `refresh` every `interval` seconds in a daemon thread, until the returned event is set."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(interval):
                try:
                    self.refresh()
                except Exception as exc:  # a generation being replaced again, an unreadable one: next time
                    print(f"ipkb: could not open the new knowledge base generation: {exc}", file=sys.stderr)

        threading.Thread(target=watch, name="ipkb-generation-watch", daemon=True).start()
        return stop

    def _swap(self) -> bool:
        """Open the current generation, reusing the loaded model, then switch answers over to it; False when
        it is already the one answering (a build's own swap and the watcher's may meet)."""
        with self._swap_lock:
            old = self.answerer
            if current_generation(self.kb_dir) == old.generation.path:
                return False
            new = Answerer.open(self.settings, old.generation.models)
            with self._lock:
                self._answerer = new
        # requests still running on the old generation finish first
        threading.Timer(60, old.close).start()
        return True

    def close(self) -> None:
        self.answerer.close()
        self.feedback.close()


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
