"""`python app.py` as a user starts it: flags, and serving at once while a missing knowledge base is
built in the background."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from app_server import free_port
from tests_support import REPLY_LETTER, REPO, SUBSIDY_POLICY, SUBSIDY_QUESTION

pytestmark = pytest.mark.slow


def test_help_lists_the_flags():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for flag in ("--host", "--port", "--kb", "--config", "--build", "--workers"):
        assert flag in out.stdout


def test_a_missing_config_file_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "app.py", "--config", str(tmp_path / "nope.toml")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "nope.toml" in out.stderr and "Traceback" not in out.stderr


def test_serves_at_once_on_the_given_port_and_builds_in_the_background(tmp_path, embed_cache):
    port = free_port()
    env = {**os.environ, "IPKB_CORPUS": str(REPLY_LETTER), "IPKB_EMBED_CACHE": str(embed_cache)}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--kb", str(tmp_path / "kb")], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, health = time.time() + 240, None
        while time.time() < deadline and health is None:
            try:
                health = httpx.get(f"{base}/api/health", timeout=5).json()
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.5)
        assert health is not None, "the app did not answer on the given port"
        while time.time() < deadline and httpx.get(f"{base}/api/health", timeout=5).json()["documents"] < 1:
            early = httpx.post(f"{base}/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？"}, timeout=60).json()
            assert early["refused"] or "风险池" in early["answer"]
            time.sleep(1)
        answer = httpx.post(f"{base}/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？"}, timeout=60).json()
        assert not answer["refused"] and "风险池基金" in answer["answer"]
        # a build by another process (the CLI) is served without a restart
        policy = tmp_path / "policy.txt"
        policy.write_text(SUBSIDY_POLICY, encoding="utf-8")
        cli = subprocess.run([sys.executable, "-m", "ingest", "--kb", str(tmp_path / "kb"), str(policy)], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=300)
        assert cli.returncode == 0, cli.stderr
        while time.time() < deadline and httpx.get(f"{base}/api/health", timeout=5).json()["documents"] < 2:
            time.sleep(0.5)
        answer = httpx.post(f"{base}/api/ask", json={"question": SUBSIDY_QUESTION}, timeout=60).json()
        assert not answer["refused"] and "12万元" in answer["answer"], answer["answer"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
