"""The build command end to end: incremental, atomic, and robust to bad input."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_support import STORES

from ingest.build import build
from kb.core.settings import Settings, load_settings
from kb.store.generations import current_generation, open_kb

REPO = Path(__file__).resolve().parents[1]


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings().replace(kb_dir=tmp_path / "kb", **kw)


def _statuses(report) -> dict[str, str]:
    return {Path(r.path).name: r.status for r in report.results}


def _run_cli(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", "-q", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.slow
def test_incremental_build_skips_replaces_and_deletes(tmp_path, reply_letter_text, embed_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "答复.txt").write_text(reply_letter_text, encoding="utf-8")
    (corpus / "b.md").write_text("# 说明\n\n一、专利质押融资。风险池基金承担部分坏账损失。", encoding="utf-8")
    settings = _settings(tmp_path, embed_cache=embed_cache)

    first = build([corpus], settings, progress=False)
    assert _statuses(first) == {"答复.txt": "ok", "b.md": "ok"}
    kb = open_kb(settings.store.kb_dir)
    assert kb.count()[0] == 2

    second = build([corpus], settings, progress=False)
    assert _statuses(second) == {"答复.txt": "unchanged", "b.md": "unchanged"}
    assert second.generation is None  # nothing changed, nothing written

    (corpus / "b.md").write_text("一、发明专利被侵权保险。保费补助百分之五十。", encoding="utf-8")
    (corpus / "答复.txt").unlink()
    third = build([corpus], settings, progress=False)
    assert _statuses(third) == {"b.md": "ok", "答复.txt": "removed"}
    kb = open_kb(settings.store.kb_dir)
    docs = kb.documents()
    assert [d.file_name for d in docs] == ["b.md"]
    texts = [c.text for c in kb.chunks()]
    assert any("被侵权保险" in t for t in texts) and not any("风险池" in t for t in texts)
    # the old knowledge base that was open before keeps serving
    assert open_kb(settings.store.kb_dir).count() == (1, len(texts))


@pytest.mark.slow
def test_bad_inputs_are_reported_per_file_and_lose_nothing(tmp_path, shared_corpus, reply_letter_text, embed_cache):
    corpus = tmp_path / "in"
    corpus.mkdir()
    good = corpus / "宁波 答复 第130号.txt"  # Chinese characters and spaces in the name
    good.write_text(reply_letter_text, encoding="utf-8")
    (corpus / "gbk 文件.txt").write_bytes("关于专利质押融资风险池基金的通知。\n一、风险池基金承担坏账。".encode("gbk"))
    settings = _settings(tmp_path, max_file_mb=30, embed_cache=embed_cache)
    assert _statuses(build([corpus], settings, progress=False)) == {good.name: "ok", "gbk 文件.txt": "ok"}
    gbk = next(d for d in open_kb(settings.store.kb_dir).documents() if d.file_name == "gbk 文件.txt")
    assert gbk.encoding == "gb18030" and "风险池基金" in gbk.text

    real_pdf = (shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf").read_bytes()
    (corpus / "corrupt.pdf").write_bytes(real_pdf[:2048])
    from pypdf import PdfReader, PdfWriter
    writer = PdfWriter()
    writer.add_page(PdfReader(shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf").pages[0])
    writer.encrypt(user_password="secret")
    with open(corpus / "encrypted.pdf", "wb") as fh:
        writer.write(fh)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "table.xlsx").write_bytes(b"PK\x03\x04 not really")
    with open(corpus / "huge.txt", "wb") as fh:  # 50 MB, sparse: quick to make
        fh.truncate(50 * 1024 * 1024)
    good.write_bytes(b"")  # the good file is now broken: its earlier version must survive

    report = build([corpus], settings, progress=False)
    reasons = {Path(r.path).name: r.reason for r in report.results if r.status == "failed"}
    assert set(reasons) == {"corrupt.pdf", "encrypted.pdf", "empty.txt", "table.xlsx", "huge.txt", good.name}
    assert "not a readable PDF" in reasons["corrupt.pdf"]
    assert "encrypted PDF" in reasons["encrypted.pdf"]
    assert "empty file" in reasons["empty.txt"]
    assert "unsupported file type '.xlsx'" in reasons["table.xlsx"]
    assert "too large" in reasons["huge.txt"] and "IPKB_MAX_FILE_MB" in reasons["huge.txt"]
    assert reasons[good.name].endswith("(previous version kept)")
    assert all("\n" not in r for r in reasons.values())
    assert {d.file_name for d in open_kb(settings.store.kb_dir).documents()} == {good.name, "gbk 文件.txt"}
    assert "FAILED" in report.summary() and "encrypted PDF" in report.summary()


@pytest.mark.slow
def test_cli_summary_and_exit_codes(tmp_path, reply_letter_text, embed_cache):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text(reply_letter_text, encoding="utf-8")
    (corpus / "copy.txt").write_text(reply_letter_text, encoding="utf-8")
    (corpus / "bad.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    result = _run_cli(str(corpus), env={"IPKB_KB_DIR": str(tmp_path / "kb"), "IPKB_EMBED_CACHE": str(embed_cache)})
    assert result.returncode == 1, result.stderr
    assert "1 ok, 0 unchanged, 1 skipped, 1 failed, 0 removed" in result.stdout
    assert "bad.doc: unsupported file type '.doc'" in result.stdout
    assert "copy.txt: same content as" in result.stdout
    assert (tmp_path / "kb" / "current").is_symlink()


@pytest.mark.slow
def test_inspect_prints_text_metadata_and_chunks():
    result = _run_cli("--inspect", "data/corpus/nbamr-2019-25-reply-to-proposal-130.txt")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "doc_number: 甬市监函〔2019〕25号" in out
    assert "专利价值评估系统" in out
    assert "下一步 > 1、加强知识产权创造，提高知识产权质量" in out


def test_settings_from_file_and_environment(tmp_path):
    config = tmp_path / "ipkb.toml"
    config.write_text('kb_dir = "/srv/kb"\nmax_file_mb = 10\nocr = false\n', encoding="utf-8")
    s = load_settings(env={"IPKB_CONFIG": str(config), "IPKB_MAX_FILE_MB": "12.5"})
    assert s.store.kb_dir == Path("/srv/kb") and s.ingest.max_file_mb == 12.5 and s.ingest.ocr is False
    config.write_text('kb_dri = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(env={"IPKB_CONFIG": str(config)})


def _search(kb_dir: Path, query: str, env: dict) -> list[dict]:
    """The passages `python -m kb search` finds, in a process of its own (milvus-lite serves one process)."""
    out = subprocess.run([sys.executable, "-m", "kb", "search", query, "--json", "--k", "5", "--kb", str(kb_dir)],
                         cwd=REPO, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["passages"]


@pytest.mark.slow
@pytest.mark.parametrize("store", STORES)
def test_sigkill_midway_leaves_previous_kb_intact(store, tmp_path, shared_corpus, reply_letter_text, embed_cache):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(reply_letter_text, encoding="utf-8")
    kb_dir = tmp_path / "kb"
    env = {"IPKB_KB_DIR": str(kb_dir), "IPKB_STORE": store}
    if store == "milvus":  # the session's cache holds the bundled corpus's vectors: what keeps it busy is writing them
        env["IPKB_EMBED_CACHE"] = str(embed_cache)
    assert _run_cli(str(corpus), env=env).returncode == 0
    before = open_kb(kb_dir)
    before_chunks = [c.text for c in before.chunks()]
    before_gen = current_generation(kb_dir)
    assert {p["source"] for p in _search(kb_dir, "专利权质押登记", env)} == {"a.txt"}

    # Change the letter (a new generation starts), and add what keeps the build busy long enough to be
    # killed: local, a no-text-layer PDF (OCR); milvus, 17 documents to write into a new collection.
    (corpus / "a.txt").write_text(reply_letter_text.replace("刘正义委员", "张三委员"), encoding="utf-8")
    if store == "local":
        shutil.copy(shared_corpus / "pdf" / "guangdong-2024-budget-report-excerpt.pdf", corpus / "b.pdf")
    else:
        shutil.copytree(REPO / "data" / "corpus" / "policies", corpus / "policies")
    collections = kb_dir / "milvus.db" / "collections"  # milvus-lite's own folders: one per collection

    def started() -> bool:
        if store == "local":
            return bool([g for g in kb_dir.glob("gen-*") if g.resolve() != before_gen])
        return len(list(collections.iterdir())) > 1  # writing the new collection, the alias not yet moved

    proc = subprocess.Popen([sys.executable, "-m", "ingest", "-q", str(corpus)], cwd=REPO,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not started():
        assert proc.poll() is None, "build finished before it could be killed"
        time.sleep(0.02)
    time.sleep(0.5 if store == "local" else 0.2)
    assert proc.poll() is None, "build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    after = open_kb(kb_dir)
    assert current_generation(kb_dir) == before_gen
    assert [c.text for c in after.chunks()] == before_chunks
    assert after.documents()[0].meta.addressee == "刘正义委员"
    # the previous knowledge base answers (with milvus: the alias still names its collection)
    assert {p["source"] for p in _search(kb_dir, "专利权质押登记", env)} == {"a.txt"}

    # The next build clears the half-written generation and succeeds.
    assert _run_cli(str(corpus), "--no-ocr", env=env).returncode in (0, 1)
    assert len(list(kb_dir.glob("gen-*"))) == 1
    assert open_kb(kb_dir).document(after.documents()[0].doc_id).meta.addressee == "张三委员"
    if store == "milvus":  # the killed build's collection is gone; the replaced one stays until the next build
        from kb.store.milvus import MilvusStore

        milvus = MilvusStore(Settings().replace(kb_dir=kb_dir, store="milvus"))
        assert len(milvus._ours()) == 2 and milvus.current() == current_generation(kb_dir)
        milvus.close()
        assert {p["source"] for p in _search_in_process(kb_dir)} != {"a.txt"}  # the new collection answers


def _search_in_process(kb_dir: Path) -> list:
    from kb.search.generation import Generation

    generation = Generation.open(Settings().replace(kb_dir=kb_dir, store="milvus"))
    try:
        return [p.to_json() for p in generation.retriever.search("专利权质押登记", k=5)]
    finally:
        generation.close()


@pytest.mark.slow
def test_a_knowledge_base_of_an_older_format_is_rebuilt_not_fatal(tmp_path, reply_letter_text, embed_cache):
    import json
    import sqlite3

    from kb.core.errors import KbError
    from kb.store.generations import DATABASE, FORMAT_VERSION, MANIFEST

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "答复.txt").write_text(reply_letter_text, encoding="utf-8")
    settings = _settings(tmp_path, embed_cache=embed_cache)
    build([corpus], settings, progress=False)
    # as format 2 wrote it: no sentence spans stored with the chunks
    with sqlite3.connect(current_generation(settings.store.kb_dir) / DATABASE) as db:
        db.execute("ALTER TABLE chunks DROP COLUMN sentences")
    manifest = current_generation(settings.store.kb_dir) / MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": FORMAT_VERSION - 1}))
    with pytest.raises(KbError, match="rebuild with `python -m ingest --rebuild`"):
        open_kb(settings.store.kb_dir)
    report = build([corpus], settings, progress=False)
    assert report.count("ok") == 1 and "building a new one" in report.summary()
    assert open_kb(settings.store.kb_dir).count() == (1, 15)
    assert all(chunk.sentences for chunk in open_kb(settings.store.kb_dir).chunks())
