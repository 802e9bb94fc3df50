"""The password lockout is keyed on the real peer: X-Forwarded-For counts only from configured proxies.

uvicorn trusts the header from 127.0.0.1 by default, so a local client (or anything relayed through a
proxy that passes the header on) could name itself anew with every guess and never be locked out.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from app_server import free_port
from tests_support import REPO

from kb.core.settings import WebSettings
from web.serving import forwarded_options


def test_no_proxy_is_trusted_by_default():
    assert forwarded_options(WebSettings()) == {"proxy_headers": False, "forwarded_allow_ips": None}
    assert forwarded_options(WebSettings(forwarded_allow_ips="10.1.0.0/16")) == {
        "proxy_headers": True, "forwarded_allow_ips": "10.1.0.0/16"}


def _guesses(base: str, n: int) -> list[str]:
    from gradio_client import Client

    outcomes = []
    for i in range(n):  # each guess claims another client address
        client = Client(base, headers={"X-Forwarded-For": f"198.51.100.{i + 1}"}, verbose=False)
        outcomes.append(client.predict("wrong-password", api_name="/reindex"))
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_forged_forwarded_header_does_not_escape_the_lockout(tmp_path, workers):
    port = free_port()
    env = {**os.environ, "IPKB_ADMIN_PASSWORD": "right-password", "IPKB_ADMIN_LOCKOUT_SECONDS": "60",
           "IPKB_CORPUS": ""}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--kb", str(tmp_path / "kb"),
                             "--workers", str(workers)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.5)
        outcomes = _guesses(base, 5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert all("管理密码不正确" in o or "错误次数过多" in o for o in outcomes), outcomes
    assert "错误次数过多" in outcomes[2] and all("错误次数过多" in o for o in outcomes[3:]), outcomes
