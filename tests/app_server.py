"""Run the real app (FastAPI + Gradio under uvicorn) on 127.0.0.1 in a background thread, for tests."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import uvicorn

from kb.core.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(base: str, proc=None, timeout: float = 240) -> None:
    """Until `base` answers /api/health; fails with the process's stderr when it exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the app exited: {proc.stderr.read() if proc.stderr else proc.returncode}")
            time.sleep(0.5)
    raise RuntimeError("the app did not start")


@contextmanager
def running_app(settings: Settings) -> Iterator[tuple[str, object]]:
    """Yields (base URL, the KnowledgeService behind the app). Every test client is 127.0.0.1, asking as fast
    as it can: the per-client budget of questions is lifted here (tests/test_web.py tests it)."""
    from web.api import create_app

    settings = settings.replace(asks_per_minute=1_000_000)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        raise RuntimeError("the app did not start")
    try:
        yield base, app.state.service
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.service.close()
