"""KnowledgeService directly (no HTTP) over a real knowledge base: the background re-index and the swap.
The admin rules, the upload folder and each collaborator on its own run over fakes in test_service_parts.py."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from tests_support import REPLY_LETTER, STORES, SUBSIDY_POLICY, SUBSIDY_QUESTION, wait_idle

from ingest.build import build
from kb.core.errors import KbError, UploadError
from kb.store.generations import current_generation
from web.service import EXCLUDED, KnowledgeService, safe_file_name

PASSWORD = "s3cret"
ON_EACH_STORE = pytest.mark.parametrize("service", STORES, indirect=True)  # the re-index and swap tests




@pytest.fixture(scope="module", params=["local"])
def service(request, copy_kb):
    built = request.getfixturevalue("letter_milvus_settings" if request.param == "milvus" else "letter_settings")
    settings = copy_kb(built, admin_password=PASSWORD,
                       admin_max_failures=10**6)  # wrong passwords on purpose here: no lockout (tested in test_service_parts.py, test_web.py)
    svc = KnowledgeService(settings)
    yield svc
    wait_idle(svc)
    svc.close()


@pytest.fixture
def clean_uploads(service):
    """Each test leaves the knowledge base as it found it: only the letter."""
    yield
    wait_idle(service)
    if service.uploads.is_dir():
        shutil.rmtree(service.uploads)
    (service.kb_dir / EXCLUDED).unlink(missing_ok=True)
    if sorted(d.file_name for d in service.documents()) != [REPLY_LETTER.name]:
        assert service.reindex(PASSWORD)
        wait_idle(service)
    assert [d.file_name for d in service.documents()] == [REPLY_LETTER.name]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- upload names and sizes
@pytest.mark.parametrize("name, safe", [
    ("policy.txt", "policy.txt"),
    ("宁波专利保险补贴通知.PDF", "宁波专利保险补贴通知.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\x.md", "x.md"),
    ("a/b/c.pdf", "c.pdf"),
    ("/abs/path/report.docx", "report.docx"),
    ("C:\\Windows\\win.html", "win.html"),
    ("\x00evil.txt", "evil.txt"),
    ("ev\x1fil\x7f.txt", "evil.txt"),
    (".hidden.txt", "hidden.txt"),  # a leading dot would hide the file from the build
    ("....txt", "未命名.txt"),  # a file with no name of its own is still a file: not a refused batch
    (".txt", "未命名.txt"),
    ("．．／．．／fullwidth.txt", "fullwidth.txt"),  # NFKC first, then the folders are dropped
    ("a<b>|c:d*e?.txt", "a_b__c_d_e_.txt"),
    ("通知（2020）第1号—补贴.md", "通知(2020)第1号—补贴.md"),  # NFKC: full-width brackets become ASCII
    ("x" * 300 + ".txt", "x" * 100 + ".txt"),
])
def test_safe_file_name(name, safe):
    assert safe_file_name(name) == safe
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")


@pytest.mark.parametrize("name, reason", [
    ("README", "没有文件扩展名"),
    ("..", "没有文件扩展名"),
    ("../", "没有文件扩展名"),
    ("", "没有文件扩展名"),
    ("evil.exe", "不支持的文件类型"),
    ("evil.txt.exe", "不支持的文件类型"),
    ("../../bin/sh", "没有文件扩展名"),
    ("archive.tar.gz", "不支持的文件类型"),
])
def test_safe_file_name_refuses(name, reason):
    with pytest.raises(UploadError, match=reason):
        safe_file_name(name)


# --- the background re-index
@pytest.mark.slow
def test_job_lifecycle(service, clean_uploads):
    answerer = service.answerer
    generation = current_generation(service.kb_dir)
    before = time.time()
    assert service.reindex(PASSWORD) is True
    started = service.job
    assert started.started >= before  # running, or already done: nothing changed takes milliseconds
    job = wait_idle(service)
    assert job is started  # nothing asked for a second run
    assert not job.running and job.message == "完成" and job.errors == []
    assert job.done == job.total == 0 and job.fraction == 1.0  # the unchanged letter is not counted
    assert job.finished >= job.started and "1 unchanged" in job.summary
    # nothing changed: same generation, same answerer
    assert current_generation(service.kb_dir) == generation and service.answerer is answerer


@pytest.mark.slow
def test_a_failed_file_is_reported_and_the_rest_goes_on(service, tmp_path, clean_uploads):
    answerer = service.answerer
    service.upload(PASSWORD, [("空文件.txt", write(tmp_path, "empty.txt", ""))])
    assert service.reindex(PASSWORD)
    job = wait_idle(service)
    assert job.message == "完成，1 个文件失败"
    assert len(job.errors) == 1 and job.errors[0] == "空文件.txt：空文件（0 字节）"
    assert [d.file_name for d in service.documents()] == [REPLY_LETTER.name]
    assert service.answerer is answerer  # nothing new to serve


@pytest.mark.slow
def test_progress_counts_only_new_files_and_duplicates_are_reported(service, tmp_path, monkeypatch, clean_uploads):
    """One new file next to the unchanged letter: progress is 1 file, not 2; a copy of the letter
    under another name is reported as skipped (with the file it duplicates) and leaves uploads/."""
    seen = []
    real_build = service.jobs.build

    def recording_build(*args, on_file, **kwargs):
        def record(done, total, name):
            seen.append((done, total, name))
            on_file(done, total, name)
        return real_build(*args, on_file=record, **kwargs)

    monkeypatch.setattr(service.jobs, "build", recording_build)
    service.upload(PASSWORD, [("new.txt", write(tmp_path, "new.txt", "关于海豚救护的通知\n\n第一条 海豚救护资金由市里安排。"))])
    assert service.reindex(PASSWORD)
    job = wait_idle(service)
    assert seen == [(0, 1, "new.txt")] and job.total == 1 and job.added == ["new.txt"]
    assert job.skipped == []

    seen.clear()
    service.upload(PASSWORD, [("副本.txt", REPLY_LETTER)])
    assert service.reindex(PASSWORD)
    job = wait_idle(service)
    assert seen == [(0, 1, "副本.txt")] and job.added == [] and job.errors == []
    assert job.skipped == [f"副本.txt（与已有文件 {REPLY_LETTER.name} 内容相同）"]
    assert not (service.uploads / "副本.txt").exists()
    assert "副本.txt" not in [d.file_name for d in service.documents()]


@pytest.mark.slow
@ON_EACH_STORE
def test_a_crashed_build_keeps_the_old_index(service, monkeypatch, clean_uploads):
    def broken(*args, **kwargs):
        raise KbError("磁盘已满")

    answerer = service.answerer
    monkeypatch.setattr(service.jobs, "build", broken)
    assert service.reindex(PASSWORD)
    job = wait_idle(service)
    assert job.message == "失败：磁盘已满" and job.errors == ["磁盘已满"] and not job.running
    assert service.answerer is answerer
    assert not service.answerer.answer("专利质押贷款出了坏账谁兜底？").refused


@pytest.mark.slow
@ON_EACH_STORE
def test_rebuild_swaps_the_answerer_and_answers_meanwhile(service, tmp_path, monkeypatch, clean_uploads):
    gate, entered = threading.Event(), threading.Event()
    real_build = service.jobs.build

    def slow_build(*args, **kwargs):
        entered.set()
        assert gate.wait(60)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(service.jobs, "build", slow_build)
    old = service.answerer
    before = old.answer(SUBSIDY_QUESTION)
    assert before.refused  # the letter does not state this amount
    service.upload(PASSWORD, [("宁波专利保险补贴细则.txt", write(tmp_path, "a.txt", SUBSIDY_POLICY))])
    assert service.reindex(PASSWORD)
    assert entered.wait(30)
    try:
        # the build is running: answers still come, from the old index
        assert service.job.running and service.answerer is old
        assert service.reindex(PASSWORD) is False  # one at a time (this one queues a re-run)
        during = service.answerer.answer("发明专利被侵权有保险吗？")
        assert not during.refused and "[1]" in during.answer
        assert service.answerer.answer(SUBSIDY_QUESTION).refused
        assert service.search("专利保险保费补贴", k=20)[0].source == REPLY_LETTER.name
    finally:
        gate.set()
    job = wait_idle(service)
    assert job.message == "完成" and not job.errors
    new = service.answerer
    assert new is not old
    after = new.answer(SUBSIDY_QUESTION)
    assert not after.refused and "12万元" in after.answer
    assert after.citations[0].source == "宁波专利保险补贴细则.txt"
    assert service.search("专利保险保费补贴")[0].source == "宁波专利保险补贴细则.txt"
    # the old answerer is closed later (requests in flight finish on it); it still works now
    assert old.answer(SUBSIDY_QUESTION).refused
    assert new.generation.models is old.generation.models  # the model was reused, not reloaded
    assert {d.file_name for d in service.documents()} == {REPLY_LETTER.name, "宁波专利保险补贴细则.txt"}


@pytest.mark.slow
def test_a_change_made_during_a_build_is_picked_up(service, tmp_path, monkeypatch, clean_uploads):
    """An upload while a build runs: that build has already listed the files, so it runs once more."""
    gate, entered = threading.Event(), threading.Event()
    real_build = service.jobs.build
    calls = []

    def slow_build(*args, **kwargs):
        calls.append(time.time())
        entered.set()
        assert gate.wait(60)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(service.jobs, "build", slow_build)
    assert service.reindex(PASSWORD)
    assert entered.wait(30)
    service.upload(PASSWORD, [("补贴细则.txt", write(tmp_path, "b.txt", SUBSIDY_POLICY))])
    assert service.reindex(PASSWORD) is False
    gate.set()
    wait_idle(service)
    assert len(calls) == 2
    assert "补贴细则.txt" in {d.file_name for d in service.documents()}
    assert not service.answerer.answer(SUBSIDY_QUESTION).refused


@pytest.mark.slow
def test_documents_of_a_removed_uploads_folder_go_at_the_next_reindex(service, tmp_path, clean_uploads):
    service.upload(PASSWORD, [("补贴细则.txt", write(tmp_path, "e.txt", SUBSIDY_POLICY))])
    assert service.reindex(PASSWORD)
    wait_idle(service)
    assert len(service.documents()) == 2
    shutil.rmtree(service.uploads)  # by hand, outside the app
    assert service.reindex(PASSWORD)
    job = wait_idle(service)
    assert job.message == "完成" and "1 removed" in job.summary
    assert [d.file_name for d in service.documents()] == [REPLY_LETTER.name]


@pytest.mark.slow
def test_delete_removes_uploads_and_excludes_corpus_files(service, letter_corpus, tmp_path, clean_uploads):
    service.upload(PASSWORD, [("补贴细则.txt", write(tmp_path, "c.txt", SUBSIDY_POLICY))])
    assert service.reindex(PASSWORD)
    wait_idle(service)
    docs = {d.file_name: d for d in service.documents()}
    uploaded, letter = docs["补贴细则.txt"], docs[REPLY_LETTER.name]

    with pytest.raises(KbError, match="没有这个文件"):
        service.delete(PASSWORD, "no-such-doc")
    with pytest.raises(KbError):
        service.delete(PASSWORD, "../../etc/passwd")

    assert service.delete(PASSWORD, uploaded.doc_id) == "补贴细则.txt"
    assert not (service.uploads / "补贴细则.txt").exists()  # an upload is deleted
    assert service.delete(PASSWORD, letter.doc_id) == REPLY_LETTER.name
    assert (letter_corpus / REPLY_LETTER.name).read_bytes() == REPLY_LETTER.read_bytes()  # a corpus file is only excluded
    excluded = json.loads((service.kb_dir / "excluded.json").read_text(encoding="utf-8"))
    assert letter.source_path in excluded and uploaded.source_path in excluded
    assert len(service.documents()) == 2  # applied at the next re-index, not before

    assert service.reindex(PASSWORD)
    wait_idle(service)
    assert service.documents() == [] and service.search("专利质押") == []
    empty = service.answerer.answer("专利质押贷款出了坏账谁兜底？")
    assert empty.refused and empty.passages == []
    # the exclusion is on disk: a later re-index (or a restarted service) keeps the letter out
    assert service.reindex(PASSWORD)
    wait_idle(service)
    assert service.documents() == []
    restarted = KnowledgeService(service.settings)
    try:
        assert restarted.folder.excluded() == set(excluded)
    finally:
        restarted.close()

    # uploading the same name again brings the upload back
    service.upload(PASSWORD, [("补贴细则.txt", write(tmp_path, "d.txt", SUBSIDY_POLICY))])
    assert uploaded.source_path not in json.loads((service.kb_dir / "excluded.json").read_text(encoding="utf-8"))
    assert service.reindex(PASSWORD)
    wait_idle(service)
    assert [d.file_name for d in service.documents()] == ["补贴细则.txt"]


# --- several processes on one knowledge base (python app.py --workers N, python -m ingest)
@pytest.mark.slow
def test_a_generation_built_by_another_process_is_swapped_in(service, clean_uploads):
    assert service.refresh() is False  # nothing new: no swap
    write(service.uploads, "补贴通知.txt", SUBSIDY_POLICY)
    # what another worker's re-index (or python -m ingest) does: build and move `current`
    assert not build([*service.settings.ingest.corpus, service.uploads], service.settings, progress=False).failed
    old = service.answerer
    assert service.refresh() is True and service.answerer is not old
    assert sorted(d.file_name for d in service.documents()) == sorted([REPLY_LETTER.name, "补贴通知.txt"])
    assert "12万元" in service.answerer.answer(SUBSIDY_QUESTION).answer
    assert service.refresh() is False


@pytest.mark.slow
def test_a_reindex_waits_while_another_process_builds(service, monkeypatch, clean_uploads):
    from kb.store.generations import build_lock

    monkeypatch.setattr(service.jobs, "wait_s", 0.05)
    with build_lock(service.kb_dir):  # another open file: an flock conflict, as with another process
        assert service.reindex(PASSWORD)
        deadline = time.time() + 30
        while service.job.message != "等待另一个索引任务结束…":
            assert time.time() < deadline, service.job
            time.sleep(0.02)
        assert service.job.running
    job = wait_idle(service)
    assert job.message == "完成" and not job.errors, job
