"""One worker process of `python app.py --workers N` (started and restarted by web/workers.py).

The whole app of one process (`create_app`: the JSON API, the Gradio UI, every middleware) with its
own e5, served on a Unix socket in the front process's private folder (mode 0700: only the front,
as the same user, reaches it). Besides what one process does, a worker

- watches the knowledge base's `current` pointer (a readlink a second) and swaps in a generation that
  another worker or `python -m ingest` built (`KnowledgeService.refresh`);
- counts wrong admin passwords in a file every worker shares (web/attempts.py);
- takes the client's address from the front's X-Forwarded-For (the front sets it, never the client);
- names itself in every response (header X-IPKB-Worker) and in /api/health (`worker`);
- exits when the front process is gone (killed without a chance to stop it).

    python -m web.worker --index I --socket PATH --run-dir DIR --parent PID [--build]
    (the settings come in the environment variable IPKB_WORKER_SETTINGS, as JSON)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

SETTINGS_ENV = "IPKB_WORKER_SETTINGS"
HEADER = b"x-ipkb-worker"


class WorkerHeader:
    """ASGI middleware: every HTTP response says which worker made it."""

    def __init__(self, app, index: int):
        self.app, self.value = app, str(index).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_named(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, send_named)


def _exit_with(parent: int) -> None:
    """Stop (as on SIGTERM, then for good) once the front process is gone: its children are re-parented."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(15)
        os._exit(1)

    threading.Thread(target=watch, name="ipkb-parent-watch", daemon=True).start()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.worker", description="One worker of python app.py --workers N.")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--build", action="store_true", help="bring the knowledge base up to date in the background")
    args = parser.parse_args(argv)
    _exit_with(args.parent)

    import uvicorn

    from kb.core.settings import settings_from_values
    from web.api import create_app
    from web.attempts import SharedAttempts
    from web.service import KnowledgeService

    settings = settings_from_values(json.loads(os.environ[SETTINGS_ENV]))
    service = KnowledgeService(settings, attempts=SharedAttempts(args.run_dir / "admin-attempts.json"))
    service.watch_generations(1.0)
    app = create_app(settings, service)
    app.state.worker = args.index
    if args.build or (args.index == 0 and service.unindexed_uploads()):  # worker 0 builds for all
        service.build_corpus()
    signal.signal(signal.SIGTERM, _interrupt)  # uvicorn raises the signal again once it has stopped: `finally` runs
    try:
        uvicorn.run(WorkerHeader(app, args.index), uds=str(args.socket), proxy_headers=True, forwarded_allow_ips="*",
                    log_level="warning", timeout_graceful_shutdown=5)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
