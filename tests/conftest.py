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


from tests_support import REPLY_LETTER, STORES  # noqa: E402


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


@pytest.fixture(scope="session")
def policies_settings(tmp_path_factory, embed_cache):
    """The bundled corpus (data/corpus: the letter and 17 policy documents), built once per session."""
    from dataclasses import replace

    from ingest.build import build
    from kb.core.settings import Settings

    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("policies-kb"), embed_cache=embed_cache,
                       status_date="2026-11-30")
    report = build([Path(__file__).resolve().parents[1] / "data" / "corpus"], settings, progress=False)
    assert not report.failed, report.summary()
    return settings


@pytest.fixture(scope="session")
def policies_milvus_settings(tmp_path_factory, policies_settings):
    """The same corpus with its search index in Milvus (milvus-lite), embedded through the same cache."""
    from dataclasses import replace

    from ingest.build import build

    settings = policies_settings.replace(kb_dir=tmp_path_factory.mktemp("policies-milvus"), store="milvus")
    report = build([Path(__file__).resolve().parents[1] / "data" / "corpus"], settings, progress=False)
    assert not report.failed and report.embedded == 0, report.summary()
    return settings


@pytest.fixture(scope="session", params=STORES)
def policies_answerer(request):
    """An Answerer over the bundled corpus, once per store."""
    from kb.answer.answerer import Answerer

    settings = request.getfixturevalue("policies_milvus_settings" if request.param == "milvus" else "policies_settings")
    answerer = Answerer.open(settings)
    yield answerer
    answerer.close()
