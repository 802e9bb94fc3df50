"""The background build of the knowledge base: one at a time, its progress, cancel, a re-run when asked
for meanwhile, and waiting while another process builds."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.build import BuildReport, build
from kb.core.errors import BuildBusyError, KbError
from kb.core.settings import Settings
from kb.store.generations import current_generation
from web.reasons import failure_reason_zh
from web.service.uploads import UploadFolder

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


class BuildJobs:
    """Builds the corpus and the uploads in a daemon thread while the current generation keeps answering.

    `build` is ingest's (injected: tests pass a fake); `serving()` is the path of the generation answering
    now and `swap()` opens the current one in its place, called when a build committed a new generation
    (or another process did meanwhile)."""

    def __init__(self, settings: Settings, folder: UploadFolder, serving: Callable[[], Path],
                 swap: Callable[[], object], build: Callable[..., BuildReport] = build):
        self.settings, self.folder = settings, folder
        self.serving, self.swap, self.build = serving, swap, build
        self.wait_s = BUILD_WAIT_S
        self.job = Job()
        self._lock = threading.Lock()
        self._again = False  # a build was asked for while one ran: run once more when it ends
        self._cancel = threading.Event()

    def start(self) -> bool:
        """Start a build; False when one is running (that one then runs once more when it ends, so a
        change made meanwhile is not lost)."""
        with self._lock:
            if self.job.running:
                self._again = True  # files may have changed after this build read them
                return False
            self.job = Job(running=True, message="正在准备…", started=time.time())
        threading.Thread(target=self._run, name="ipkb-reindex", daemon=True).start()
        return True

    def cancel(self) -> bool:
        """Stop the running build between pages: the file being loaded and the rest are skipped, what was
        done is kept. False when none runs."""
        with self._lock:
            if not self.job.running:
                return False
            self._again = False
            self._cancel.set()
            return True

    def _run(self) -> None:
        job = self.job
        self._cancel.clear()

        def on_file(done: int, total: int, name: str) -> None:
            job.done, job.total, job.message = done, total, f"正在处理 {name}（{done + 1}/{total}）"

        try:
            uploads = self.folder.path
            # the uploads folder is always given, even empty or removed: its files gone means their documents go
            uploads.mkdir(parents=True, exist_ok=True)
            paths = [p for p in self.settings.ingest.corpus if p.exists()] + [uploads]
            serving = self.serving()
            indexed_at = serving.stat().st_mtime if serving.exists() else time.time()
            report = self._build_when_free(paths, on_file, job)
            self.folder.set_aside(report)
            job.errors = [f"{Path(r.path).name}：{failure_reason_zh(r.reason)}" for r in report.failed]
            job.added = [Path(r.path).name for r in report.results if r.status == "ok"]
            job.skipped = [f"{Path(r.path).name}（与已有文件 {Path(r.reason.removeprefix('same content as ')).name} 内容相同）"
                           for r in report.results if r.status == "skipped"]
            # a file uploaded since the last index (any worker) that the build found as it was
            job.unchanged = [Path(r.path).name for r in report.results if r.status == "unchanged"
                             and self.folder.uploaded_since(Path(r.path), indexed_at)]
            job.summary = report.summary()
            if report.generation is not None or current_generation(self.settings.store.kb_dir) != serving:
                job.message = "正在载入新索引…"
                self.swap()
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
                threading.Thread(target=self._run, name="ipkb-reindex", daemon=True).start()

    def _build_when_free(self, paths: list[Path], on_file, job: Job) -> BuildReport:
        """Build; while another process (another app worker, `python -m ingest`) holds the build lock,
        wait for it, then build on what it made (a cancel stops the wait)."""
        while True:
            try:
                return self.build(paths, self.settings, progress=False, exclude=self.folder.excluded(),
                                  on_file=on_file, should_stop=self._cancel.is_set)
            except BuildBusyError:
                if self._cancel.is_set():
                    raise KbError("已取消：另一个索引任务正在运行") from None
                job.message = "等待另一个索引任务结束…"
                time.sleep(self.wait_s)
