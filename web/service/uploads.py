"""The knowledge base's uploads folder and its exclusions: what an admin adds and removes."""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import unicodedata
from pathlib import Path

from ingest.build import BuildReport
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.pipeline import source_key
from kb.core.errors import UploadError
from kb.core.records import Document

UPLOADS = "uploads"
FAILED = ".failed"  # uploads/.failed/: uploads that could not be ingested (hidden: a build skips it)
EXCLUDED = "excluded.json"


def safe_file_name(name: str) -> str:
    """A plain file name for an upload: no folders, no traversal, no control or odd characters."""
    name = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    name = re.sub(r"[^\w\u4e00-\u9fff.()（）\-—，、 ]", "_", name).strip(" ")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not suffix:
        raise UploadError(f"“{name or '(空)'}”没有文件扩展名")
    stem = stem.strip(" .") or "未命名"  # "....txt", ".txt": a file still, with no name of its own
    if f".{suffix.lower()}" not in SUPPORTED_SUFFIXES:
        raise UploadError(f"不支持的文件类型 .{suffix}（支持：{'、'.join(sorted(SUPPORTED_SUFFIXES))}）")
    return f"{stem[:100]}.{suffix.lower()}"


class UploadFolder:
    """kb_dir/uploads/ (uploaded files), uploads/.failed/ (those that could not be ingested) and
    kb_dir/excluded.json (source files a build leaves out: deleted corpus files)."""

    def __init__(self, kb_dir: Path):
        self.kb_dir = kb_dir
        self.path = kb_dir / UPLOADS
        self._lock = threading.Lock()

    def holds(self, path: Path) -> bool:
        return path.parent.resolve() == self.path.resolve()

    def files(self) -> list[Path]:
        """The uploaded files waiting in uploads/ (not the failed ones set aside)."""
        return sorted(p for p in self.path.iterdir() if p.is_file()) if self.path.is_dir() else []

    def save(self, files: list[tuple[str, Path]], max_bytes: int, max_mb: float) -> list[str]:
        """Copy uploaded files (original name, temporary path) in; their safe names. Every file is checked
        before any is copied: a refused batch leaves nothing behind."""
        checked = []
        for original, temp in files:
            name = safe_file_name(original)
            size = Path(temp).stat().st_size
            if size > max_bytes:
                raise UploadError(f"“{name}”有 {size / 2**20:.1f} MB，超过上限 {max_mb:g} MB")
            checked.append((original, name, temp))
        self.path.mkdir(parents=True, exist_ok=True)
        saved = []
        for original, name, temp in checked:
            target = (self.path / name).resolve()
            if target.parent != self.path.resolve():
                raise UploadError(f"文件名不安全：{original}")
            shutil.copyfile(temp, target)
            self.set_excluded(source_key(target), False)
            saved.append(name)
        return saved

    def remove(self, doc: Document) -> None:
        """An uploaded file is deleted, a corpus file is excluded: gone at the next build."""
        path = Path(doc.source_path)
        if self.holds(path):
            path.unlink(missing_ok=True)
        self.set_excluded(doc.source_path, True)

    def excluded(self) -> set[str]:
        path = self.kb_dir / EXCLUDED
        return set(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else set()

    def set_excluded(self, key: str, excluded: bool) -> None:
        with self._lock:
            keys = self.excluded()
            keys = keys | {key} if excluded else keys - {key}
            tmp = self.kb_dir / f".{EXCLUDED}.{os.getpid()}"  # replaced whole: another worker may be reading it
            tmp.write_text(json.dumps(sorted(keys), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.kb_dir / EXCLUDED)

    def failed(self) -> list[Path]:
        """Uploaded files that could not be ingested, kept aside in uploads/.failed/ until deleted."""
        folder = self.path / FAILED
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def delete_failed(self) -> list[str]:
        names = []
        for path in self.failed():
            path.unlink(missing_ok=True)
            names.append(path.name)
        return names

    def set_aside(self, report: BuildReport) -> None:
        """Failed uploads leave uploads/ (not retried on every re-index), into uploads/.failed/;
        a duplicate upload (the same content as a document already there) is removed."""
        uploads = self.path.resolve()
        for result in report.results:
            path = Path(result.path)
            if result.status == "skipped" and path.parent.resolve() == uploads and path.is_file():
                path.unlink(missing_ok=True)
        for result in report.failed:
            path = Path(result.path)
            if path.parent.resolve() == uploads and path.is_file() and not result.reason.startswith("cancelled"):
                (uploads / FAILED).mkdir(exist_ok=True)
                path.replace(uploads / FAILED / path.name)

    def uploaded_since(self, path: Path, since: float) -> bool:
        try:
            return self.holds(path) and path.stat().st_mtime > since
        except OSError:
            return False
