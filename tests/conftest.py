"""Shared pytest fixtures. Tests must never reach the network."""
from __future__ import annotations

import os

# set before any test module imports HF / Gradio code
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The read-only corpus of real documents next to the repository (../shared/corpus)."""
    if not (SHARED_CORPUS / "pdf").is_dir():
        if os.environ.get("CI"):  # CI always has ../shared: a skip there would hide a broken setup
            pytest.fail(f"../shared/corpus not found in CI: {SHARED_CORPUS}")
        pytest.skip(f"../shared/corpus not found: {SHARED_CORPUS}")
    return SHARED_CORPUS


from tests_support import REPLY_LETTER  # noqa: E402


@pytest.fixture(scope="session")
def reply_letter_text() -> str:
    """The bundled sample document, as received (with its page-break damage)."""
    return REPLY_LETTER.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def embed_cache(tmp_path_factory) -> Path:
    """One embedding cache for the test session: each text is embedded by e5 once."""
    return tmp_path_factory.mktemp("embed-cache") / "embed-cache.sqlite"


@pytest.fixture(scope="session")
def tokenizer():
    """One jieba tokenizer for the session (loading its dictionary takes about a second)."""
    from kb.core.tokenizer import Tokenizer

    return Tokenizer()
