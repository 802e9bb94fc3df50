"""A local GGUF model served in-process: llama.cpp's own server through `xllamacpp` (optional).

`llm_gguf = "/path/model.gguf"` starts llama.cpp's HTTP server inside this process on a free
loopback port, once per process and model file; the LLM client then talks to it like to any
OpenAI-compatible endpoint (chat completions, streaming, JSON-schema structured output).
`xllamacpp` is an optional extra (`pip install -e ".[local-llm]"`), imported only here, only
when the setting is used.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from kb.core.errors import LlmError
from kb.core.settings import Settings

log = logging.getLogger(__name__)

_SERVERS: dict[tuple, LocalServer] = {}
_LOCK = threading.Lock()


@dataclass
class LocalServer:
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str  # the model's id on that server
    handle: object  # the xllamacpp.Server: the server lives as long as this reference

    def close(self) -> None:
        self.handle = None


def local_server(settings: Settings) -> LocalServer:
    """The in-process llama.cpp server for `settings.llm.llm_gguf`, started on first use."""
    path = Path(settings.llm.llm_gguf).expanduser().resolve()
    threads = settings.llm.llm_gguf_threads or max(1, os.cpu_count() or 1)
    key = (str(path), settings.llm.llm_gguf_ctx, threads)
    with _LOCK:
        if key in _SERVERS:
            return _SERVERS[key]
        if not path.is_file():
            raise LlmError("本地模型文件不存在", f"llm_gguf {path} is not a file")
        try:
            import xllamacpp
        except ImportError:
            raise LlmError("未安装本地模型支持", 'llm_gguf needs xllamacpp: pip install -e ".[local-llm]"') from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = settings.llm.llm_gguf_ctx
        params.n_parallel = 1  # one answer at a time on a CPU; others queue
        params.port = 0  # a free port
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        log.info("starting llama.cpp for %s (%d threads, context %d)", path, threads, settings.llm.llm_gguf_ctx)
        try:
            handle = xllamacpp.Server(params)
        except Exception as exc:  # a bad file, too little memory
            raise LlmError("本地模型无法启动", f"{type(exc).__name__}: {exc}"[:200]) from None
        address = str(handle.listening_address).rstrip("/")
        server = LocalServer(f"{address}/v1", str(path), handle)
        _SERVERS[key] = server
        return server
