"""PDFs are read in a child process with a memory and a time ceiling the app cannot exceed.

A PDF is untrusted input that decompresses: a 1 MB page image can inflate to gigabytes when it is
rendered for OCR (a "Flate bomb"), and a page can take pdfium or the OCR model minutes. Parsing,
rendering and OCR therefore run in one child process per build (spawned, so the parent's threads and
models are not copied), with RLIMIT_AS set to `max_parse_memory_mb`. The parent waits page by page:
it relays progress, kills the child on cancel or when a page overruns the file's time budget, and
turns a child that ran out of memory or died into a LoadError for that file alone; the next file
gets a fresh child. The OCR model stays loaded in the child between files.
"""
from __future__ import annotations

import multiprocessing
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

from ingest.loaders import Limits, load
from ingest.records import RawDocument
from kb.core.errors import LoadError

_POLL_SECONDS = 0.1  # how often the parent checks cancel and the deadline while a page is read
_OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "Failed to allocate", "cannot allocate")
_GRACE_SECONDS = 30.0  # past max_file_seconds: the child checks time only between pages


class PdfSandbox:
    """Reads PDFs in a memory-limited child process; a context manager (the child ends on exit)."""

    def __init__(self, *, memory_mb: int, ocr_scale: float | None):
        self.memory_mb = memory_mb
        self.ocr_scale = ocr_scale  # None: no OCR
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> PdfSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)  # asks the child to exit
            except OSError:
                pass
        self._stop(wait=2.0)

    def _stop(self, wait: float = 0.0) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            process.join(wait)
            if process.is_alive():
                process.kill()
                process.join(5)
        if conn is not None:
            conn.close()

    def _child(self) -> Connection:
        if self._process is None or not self._process.is_alive():
            self._stop()
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, self.memory_mb, self.ocr_scale),
                                      name="ipkb-pdf-reader", daemon=True)
            process.start()
            child.close()
            self._process, self._conn = process, parent
        assert self._conn is not None
        return self._conn

    def load(self, path: Path, *, max_bytes: int, limits: Limits,
             on_page: Callable[[int, int], None] | None = None) -> RawDocument:
        """Like ingest.loaders.load for one PDF; raises LoadError, never takes the parent down."""
        conn = self._child()
        conn.send((str(path), max_bytes, replace(limits, should_stop=None)))
        deadline = time.monotonic() + limits.max_file_seconds + _GRACE_SECONDS
        while True:
            if limits.should_stop is not None and limits.should_stop():
                self._stop()
                raise LoadError("cancelled")
            if time.monotonic() > deadline:
                self._stop()
                raise LoadError(f"time budget exceeded: a page took longer than {limits.max_file_seconds:g} s "
                                "(max_file_seconds)")
            try:
                if not conn.poll(_POLL_SECONDS):
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                code = self._process.exitcode if self._process is not None else None
                self._stop()
                raise LoadError(f"the PDF reader stopped (exit code {code}): the file needs more than "
                                f"{self.memory_mb} MB of memory or is malformed (max_parse_memory_mb)") from None
            kind = message[0]
            if kind == "page":
                if on_page is not None:
                    on_page(message[1], message[2])
            elif kind == "ok":
                return message[1]
            else:  # "error": the reason; "memory": the child gave up its state and exits
                if kind == "memory":
                    self._stop(wait=5.0)
                    raise LoadError(f"memory limit exceeded: reading the PDF needs more than {self.memory_mb} MB "
                                    "(max_parse_memory_mb)")
                raise LoadError(message[1])


def _serve(conn: Connection, memory_mb: int, ocr_scale: float | None) -> None:
    """The child: read PDFs sent by the parent until it sends None."""
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    ocr = None
    if ocr_scale is not None:
        from ingest.ocr import OcrEngine

        ocr = OcrEngine(scale=ocr_scale)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, max_bytes, limits = request
        try:
            doc = load(Path(path), max_bytes=max_bytes, ocr=ocr, limits=limits,
                       on_page=lambda done, total: conn.send(("page", done, total)))
            conn.send(("ok", doc))
        except LoadError as exc:
            # an allocation refused deep in pdfium or onnxruntime surfaces as a LoadError about the page
            if isinstance(exc.__cause__, MemoryError) or any(m in str(exc) for m in _OUT_OF_MEMORY):
                conn.send(("memory",))
                return
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("memory",))
            return
