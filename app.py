"""IPKB web app: Gradio UI (咨询 · 检索 · 知识库 · 评测) and a JSON API (web/).

    python app.py [--host H] [--port P] [--kb DIR] [--config FILE] [--build] [--workers N]   # or `make run`
                             # builds the knowledge base first if there is none

With --workers N (N > 1) a front process on the port relays to N worker processes, each the whole app
with its own e5 (web/workers.py, web/proxy.py, web/worker.py).

Routes: the Gradio UI at /, POST /api/ask, POST /api/search, GET /api/health, and
GET /files/{doc_id} (the original file of a document in the knowledge base, read-only); the
OpenAI-compatible POST /v1/chat/completions and GET /v1/models (web/openai_api.py; off until api_keys are
set), and the chat widget for other sites, GET /widget.js (web/widget.py).
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from kb.core.errors import IpkbError  # noqa: E402
from kb.core.settings import Settings, load_settings  # noqa: E402
from kb.store.generations import current_generation  # noqa: E402

# web.api (Gradio) and web.service are imported when needed: the front of --workers needs neither (≈30 MB
# instead of ≈220 MB); only its workers load the app.


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the IPKB web app and JSON API.")
    parser.add_argument("--host", help="address to listen on (default: setting host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: setting port, 7860)")
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: setting kb_dir, .kb)")
    parser.add_argument("--config", type=Path, help="settings file (default: IPKB_CONFIG or ./ipkb.toml)")
    parser.add_argument("--build", action="store_true",
                        help="bring the knowledge base up to date with the corpus in the background at start "
                             "(without it, only a missing knowledge base is built)")
    parser.add_argument("--workers", type=int,
                        help="app worker processes behind the one port, each with its own e5 model (default: "
                             "setting workers, 1 = a single process); a browser keeps to one worker, the JSON API "
                             "goes to the least busy one")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    if args.config and not args.config.is_file():
        raise IpkbError(f"settings file {args.config} not found")
    settings = load_settings(config_file=args.config)
    overrides = {"host": args.host, "port": args.port, "kb_dir": args.kb, "workers": args.workers}
    return settings.replace(**{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = settings_from(args)
        needs_build = False
        if current_generation(settings.store.kb_dir) is None:
            from web.service import ensure_knowledge_base

            needs_build = ensure_knowledge_base(settings)
    except IpkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.web.workers > 1:  # the background build, if any, runs in worker 0 only
        from web.workers import serve

        return serve(settings, build=needs_build or args.build)
    from web.api import create_app

    app = create_app(settings)
    # a build made elsewhere (`python -m ingest`, another machine sharing kb_dir and a Milvus server) is
    # picked up within a second, as workers do
    app.state.service.watch_generations(1.0)
    # serve now; answers come once the build swaps the new generation in. Uploads a killed build left
    # un-indexed are built too, rather than wait while the status says 空闲.
    if needs_build or args.build or app.state.service.unindexed_uploads():
        app.state.service.build_corpus()
    print(f"IPKB ready: http://{settings.web.host}:{settings.web.port}", file=sys.stderr)
    from web.serving import forwarded_options

    uvicorn.run(app, host=settings.web.host, port=settings.web.port, log_level="warning",
                **forwarded_options(settings.web))
    return 0


if __name__ == "__main__":
    sys.exit(main())
