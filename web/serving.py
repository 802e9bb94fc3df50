"""How the server that faces clients (the single app, or the front of `--workers N`) is run by uvicorn."""
from __future__ import annotations

from kb.core.settings import WebSettings


def forwarded_options(web: WebSettings) -> dict:
    """uvicorn's proxy-header options: X-Forwarded-For is read only from the configured proxies.

    uvicorn's own default trusts the header from 127.0.0.1, so any local client (or a proxy that passes
    the client's header through) could name itself anew with each request."""
    trusted = web.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
