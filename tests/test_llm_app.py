"""`python app.py` with an LLM configured starts and answers through it (the scripted server on loopback).

A new release of openai's HTTP client once made the LLM client fail at construction, so the app did not
start at all with an LLM configured; this starts the real app as a user does and asks it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from app_server import free_port
from fake_openai import FakeOpenAI
from test_llm import honest_reply
from tests_support import REPLY_LETTER, REPO

pytestmark = pytest.mark.slow

QUESTION = "专利质押贷款出了坏账谁兜底？"


def test_the_app_starts_with_an_llm_and_answers_through_it(tmp_path, embed_cache):
    with FakeOpenAI(responder=honest_reply) as server:
        port = free_port()
        env = {**os.environ, "IPKB_CORPUS": str(REPLY_LETTER), "IPKB_EMBED_CACHE": str(embed_cache),
               "IPKB_LLM_BASE_URL": server.base_url, "IPKB_LLM_MODEL": "fake-model", "IPKB_LLM_STRUCTURED": "off"}
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--kb", str(tmp_path / "kb"), "--build"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline, documents = time.time() + 300, 0
            while time.time() < deadline and documents < 1:
                try:
                    documents = httpx.get(f"{base}/api/health", timeout=5).json()["documents"]
                except httpx.HTTPError:
                    assert proc.poll() is None, f"the app exited: {proc.stderr.read()}"
                time.sleep(0.5)
            assert documents >= 1, "the app did not build its knowledge base"
            answer = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=120).json()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert server.chat_requests(), "the app never called the LLM"
        assert answer["answerer"] == "llm", answer
        assert not answer["refused"] and "风险池" in answer["answer"] and answer["citations"]
