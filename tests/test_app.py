"""The real app (FastAPI + Gradio under uvicorn) on 127.0.0.1: the Gradio endpoints through
gradio_client, the JSON API and the file route through httpx, and knowledge-base management, with real
answers. The web layer's own refusals (bad bodies, file routes, private handlers, the admin password and
its lockout) run in-process against a fake answerer in tests/test_web.py."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from tests_support import REPLY_LETTER, SUBSIDY_POLICY, SUBSIDY_QUESTION, wait_idle

from kb.core.settings import Settings
from kb.store.generations import current_generation
from web.feedback import FeedbackStore

pytestmark = pytest.mark.slow  # builds knowledge bases (e5) and starts the app

PASSWORD = "s3cret"
QUESTION = "发明专利被侵权有保险吗？"
LETTER_TITLE = "关于市政协十五届三次会议第130号提案的答复"
LETTER_NUMBER = "甬市监函〔2019〕25号"
POLICY_NAME = "宁波专利保险补贴通知.txt"
BUREAU, HOTLINE = "宁波市市场监督管理局（宁波市知识产权局）", "0574-87187520"


# --- fixtures and helpers
@pytest.fixture(scope="module", autouse=True)
def no_heartbeat():
    """gradio_client keeps a heartbeat stream open per Client (it tells the server a browser tab is
    still there); uvicorn's graceful shutdown then waits out app_server's 10 s join on every app.
    Nothing here needs it: session state lives on the server either way."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Client, "_stream_heartbeat", staticmethod(lambda *args: None))
        yield


@pytest.fixture(scope="module")
def app(letter_settings, copy_kb):
    """The app for asking and searching; its knowledge base is not changed by the tests using it."""
    settings = copy_kb(letter_settings, admin_password=PASSWORD, bureau_name=BUREAU, hotline=HOTLINE)
    with running_app(settings) as (base, service):
        yield SimpleNamespace(base=base, service=service, settings=settings)


@pytest.fixture(scope="module")
def managed(letter_settings, copy_kb):
    """A second app whose knowledge base the management tests change (a copy of the letter's: deleting
    the letter through the app excludes it, the file in the session's copy of the corpus stays)."""
    settings = copy_kb(letter_settings, admin_password=PASSWORD)
    with running_app(settings) as (base, service):
        yield SimpleNamespace(base=base, service=service, settings=settings)
        wait_idle(service)


@pytest.fixture
def client(app) -> Client:
    """A new Gradio session for each test."""
    return Client(app.base, verbose=False)


@pytest.fixture
def http(app):
    with httpx.Client(base_url=app.base, timeout=60) as h:
        yield h


def text_of(message: dict) -> str:
    """A Gradio chat message's text (content is a string or a list of parts)."""
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content




def poll_status(client: Client, service, timeout: float = 120, said: str = "") -> tuple:
    """Poll /status like the UI's timer until the re-index is over: (job text, and the latest document
    table, file choices, overview, 检索 type and issuer choices and outcome sent; /status sends those
    only when the index changed, the outcome only in place of an outcome `said` “in progress”)."""
    deadline, latest = time.time() + timeout, [None] * 6
    while True:
        text, *rest = client.predict(said, api_name="/status")
        latest = [old if value == {"__type__": "update"} else value for old, value in zip(latest, rest)]
        if not service.job.running and "完成" in text:
            return text, *latest
        assert time.time() < deadline, f"re-index still running: {text}"
        time.sleep(0.2)


def kb_state(settings: Settings) -> tuple:
    """What management could change: the files of the KB folder (feedback aside) and the generation."""
    files = sorted(str(p.relative_to(settings.store.kb_dir)) for p in settings.store.kb_dir.rglob("*")
                   if p.is_file() and "feedback" not in p.name and p.name != "build.lock")
    return files, current_generation(settings.store.kb_dir)


# --- 咨询 through gradio_client
def test_ask_answers_with_citations(client, app):
    message, chat, cited = client.predict(QUESTION, [], api_name="/ask")
    assert message == ""  # the question box is cleared
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert text_of(chat[0]) == QUESTION
    reply = text_of(chat[1])
    assert "发明专利被侵权保险" in reply and "[1]" in reply
    assert f"来源：\n[1] 《{LETTER_TITLE}》（{LETTER_NUMBER}）" in reply and "第1页" not in reply  # a .txt has no pages
    assert "引用的段落" in cited
    assert '<div class="ipkb-card"' in cited and '<span class="ipkb-n">[1]</span>' in cited
    assert "<mark>" in cited and LETTER_NUMBER in cited
    assert f'href="/files/{app.service.documents()[0].doc_id}"' in cited


def test_ask_follows_up_on_the_chat(client):
    _, chat, _ = client.predict("专利质押贷款出了坏账谁兜底？", [], api_name="/ask")
    assert "风险池基金" in text_of(chat[-1])
    _, chat, cited = client.predict("那保险呢？", chat, api_name="/ask")
    assert [m["role"] for m in chat] == ["user", "assistant"] * 2
    assert "保险" in text_of(chat[-1]) and "[1]" in text_of(chat[-1]) and "ipkb-card" in cited


def test_ask_refuses_visibly(client, http):
    _, chat, cited = client.predict("杭州对专利质押贷款有没有贴息？", [], api_name="/ask")
    assert text_of(chat[-1]).startswith("⚠️ 未找到答案")
    # the refusal and the header name the configured bureau and hotline
    assert f"建议咨询{BUREAU}，或拨打{HOTLINE}。" in text_of(chat[-1])
    assert f"咨询部门：{BUREAU}　热线：{HOTLINE}" in http.get("/config").text
    assert 'class="ipkb-refused"' in cited


def test_ask_too_long_gets_a_notice_not_an_error(client, app):
    long_question = "专利" * app.settings.answer.max_question_chars
    _, chat, cited = client.predict(long_question, [], api_name="/ask")
    assert "问题过长" in text_of(chat[-1]) and "问题过长" in cited


# --- 检索 through gradio_client
def test_search_returns_results_and_read_aloud_text(client):
    results, aloud = client.predict("发明专利被侵权保险", 5, [], [], "", "", api_name="/search")
    assert results.count('<div class="ipkb-card"') == 5
    assert '<span class="ipkb-n">#1</span>' in results and "相关度" in results
    assert "发明专利被侵权保险" in aloud
    assert f"\n出处：《{LETTER_TITLE}》（{LETTER_NUMBER}）" in aloud and "第1页" not in aloud


def test_search_filters_and_limits(client, app):
    results, _ = client.predict("发明专利被侵权保险", 3, ["答复"], ["宁波市市场监督管理局"], "2019-01-01", "2019-12-31",
                                api_name="/search")
    assert results.count('<div class="ipkb-card"') == 3
    results, _ = client.predict("发明专利被侵权保险", 10, [], [], "2020-01-01", "", api_name="/search")
    assert "没有找到相关段落" in results
    results, aloud = client.predict("专" * (app.settings.answer.max_question_chars + 1), 10, [], [], "", "", api_name="/search")
    assert "检索内容过长" in results and aloud == ""


# --- 👍/👎 through gradio_client: the session's last answer
def test_feedback_stores_the_sessions_last_answer(app):
    first, second = Client(app.base, verbose=False), Client(app.base, verbose=False)
    assert first.predict("up", "", api_name="/feedback") == "请先提问，再评价答案。"
    _, chat, _ = first.predict(QUESTION, [], api_name="/ask")
    _, other_chat, _ = second.predict("专利质押贷款出了坏账谁兜底？", [], api_name="/ask")
    # each session rates its own last answer, whatever the other asked meanwhile
    assert first.predict("up", "答得准确，有出处", api_name="/feedback") == "感谢反馈！"
    assert second.predict("down", "", api_name="/feedback") == "感谢反馈！"
    assert "up" in first.predict("maybe", "", api_name="/feedback")  # not a vote: nothing stored

    store = FeedbackStore(app.settings.store.kb_dir / "feedback.sqlite")
    try:
        rows = store.all()
    finally:
        store.close()
    assert len(rows) == 2
    up, down = rows
    assert up["question"] == QUESTION and up["vote"] == 1 and up["comment"] == "答得准确，有出处"
    assert up["answer"] == text_of(chat[-1])
    assert up["citations"] and up["citations"][0]["n"] == 1
    assert up["citations"][0]["title"] == LETTER_TITLE and up["citations"][0]["doc_number"] == LETTER_NUMBER
    assert "发明专利被侵权保险" in up["citations"][0]["text"]
    assert down["question"] == "专利质押贷款出了坏账谁兜底？" and down["vote"] == -1 and down["comment"] == ""
    assert down["answer"] == text_of(other_chat[-1]) and "风险池基金" in down["answer"]


# --- the JSON API
def test_api_ask_returns_the_answer_json(http):
    r = http.post("/api/ask", json={"question": QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    data = r.json()
    assert {"question", "answer", "refused", "citations", "passages", "notices", "timings_ms"} <= set(data)
    assert data["question"] == QUESTION and data["refused"] is False and data["notices"] == []
    assert "发明专利被侵权保险" in data["answer"] and "[1]" in data["answer"]
    citation = data["citations"][0]
    assert citation["n"] == 1 and citation["title"] == LETTER_TITLE and citation["doc_number"] == LETTER_NUMBER
    assert citation["pages"] == [] and citation["source"] == REPLY_LETTER.name  # a .txt has no pages
    for start, end in citation["spans"]:
        assert 0 <= start < end <= len(citation["text"])
    passages = data["passages"]
    assert len(passages) >= 10
    assert [p["rank"] for p in passages] == list(range(1, len(passages) + 1))
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert {c["chunk_id"] for c in data["citations"]} <= {p["chunk_id"] for p in passages}
    assert set(data["timings_ms"]) >= {"retrieve", "answer", "total"}
    assert all(v >= 0 for v in data["timings_ms"].values())


def test_api_ask_resolves_a_follow_up_from_history(http):
    history = [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"},
               {"role": "assistant", "content": [{"type": "text", "text": "制订出台了风险池基金管理办法。[1]"}]}]
    data = http.post("/api/ask", json={"question": "那保险呢？", "history": history}).json()
    assert data["question"] == "那保险呢？" and not data["refused"]
    assert "专利质押贷款出了坏账谁兜底" in data["standalone_question"]  # searched with the previous question
    assert "保险" in data["answer"] and "[1]" in data["answer"]
    alone = http.post("/api/ask", json={"question": "那保险呢？"}).json()
    assert alone["standalone_question"] == "那保险呢？"


@pytest.mark.parametrize("filters, answered", [
    ({"doc_types": ["答复"]}, True),
    ({"doc_types": "答复", "issuers": ["宁波市市场监督管理局"]}, True),
    ({"files": [REPLY_LETTER.name]}, True),
    ({}, True),
    ({"doc_types": ["办法"]}, False),
    ({"files": ["other.pdf"]}, False),
])
def test_api_ask_with_filters(http, filters, answered):
    data = http.post("/api/ask", json={"question": QUESTION, "filters": filters}).json()
    assert data["refused"] is (not answered)
    assert (len(data["passages"]) >= 10) if answered else data["passages"] == []


def test_api_search(http):
    r = http.post("/api/search", json={"query": "发明专利被侵权保险"})
    assert r.status_code == 200
    data = r.json()
    assert set(data) == {"query", "passages"} and data["query"] == "发明专利被侵权保险"
    assert len(data["passages"]) == 10
    assert [p["rank"] for p in data["passages"]] == list(range(1, 11))
    assert "发明专利被侵权保险" in data["passages"][0]["text"]
    assert {"rank", "score", "text", "title", "doc_number", "date", "issuer", "doc_type", "pages", "section",
            "source", "chunk_id", "doc_id", "dense_score", "bm25_score"} <= set(data["passages"][0])
    assert len(http.post("/api/search", json={"query": "保险", "k": 3}).json()["passages"]) == 3
    filtered = http.post("/api/search", json={"query": "保险", "filters": {"doc_types": ["办法"]}}).json()
    assert filtered["passages"] == []


def test_api_health(http):
    data = http.get("/api/health").json()
    assert data["status"] == "ok" and data["documents"] == 1 and data["chunks"] >= 10
    assert data["generation"].startswith("gen-")


# --- the original files
def test_file_route_serves_the_letter_inline_as_plain_text(http, app):
    doc_id = app.service.documents()[0].doc_id
    r = http.get(f"/files/{doc_id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline")
    assert r.content == REPLY_LETTER.read_bytes()


# --- management through the app
def test_upload_with_a_traversal_name_stays_in_uploads(managed):
    """Gradio receives the file under the name the browser sends; the service keeps only a plain name."""
    kb_dir = managed.settings.store.kb_dir
    r = httpx.post(f"{managed.base}/gradio_api/upload",
                   files={"files": ("../../evil.txt", "宁波市知识产权测试文件，无实际内容。".encode())})
    assert r.status_code == 200
    served = {"path": r.json()[0], "orig_name": "../../evil.txt", "meta": {"_type": "gradio.FileData"}}
    c = Client(managed.base, verbose=False)
    outcome = c.predict(PASSWORD, [served], api_name="/upload")
    assert outcome.startswith("已上传 1 个文件：evil.txt")
    poll_status(c, managed.service)
    assert [p.name for p in (kb_dir / "uploads").iterdir()] == ["evil.txt"]
    for outside in (kb_dir / "evil.txt", kb_dir.parent / "evil.txt", kb_dir.parent.parent / "evil.txt"):
        assert not outside.exists()
    evil = next(d for d in managed.service.documents() if d.file_name == "evil.txt")
    assert Path(evil.source_path) == (kb_dir / "uploads" / "evil.txt").resolve()
    # clean up through the app
    assert c.predict(PASSWORD, evil.doc_id, api_name="/delete") == "已删除“evil.txt”；正在后台重建索引。"
    poll_status(c, managed.service)
    assert [d.file_name for d in managed.service.documents()] == [REPLY_LETTER.name]


def test_upload_reindex_delete_through_the_app(managed, tmp_path, monkeypatch):
    service, kb_dir = managed.service, managed.settings.store.kb_dir
    http = httpx.Client(base_url=managed.base, timeout=60)
    c = Client(managed.base, verbose=False)
    policy = tmp_path / POLICY_NAME
    policy.write_text(SUBSIDY_POLICY, encoding="utf-8")
    assert http.post("/api/ask", json={"question": SUBSIDY_QUESTION}).json()["refused"]  # not in the letter

    # the first build is slowed down so that questions certainly arrive while it runs
    real_build, builds = service.jobs.build, []

    def slow_build(*args, **kwargs):
        builds.append(1)
        if len(builds) == 1:
            time.sleep(1.0)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(service.jobs, "build", slow_build)
    answers, failures, stop = [], [], threading.Event()

    def keep_asking():
        with httpx.Client(base_url=managed.base, timeout=60) as h:
            while not stop.is_set():
                running = service.job.running
                try:
                    r = h.post("/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？"})
                    data = r.json()
                    if r.status_code != 200 or data["refused"] or "风险池基金" not in data["answer"]:
                        failures.append((r.status_code, r.text[:300]))
                    answers.append(running)
                except Exception as exc:  # noqa: BLE001 - any error is a failure of the test
                    failures.append(repr(exc))

    askers = [threading.Thread(target=keep_asking) for _ in range(3)]
    for t in askers:
        t.start()
    try:
        outcome = c.predict(PASSWORD, [handle_file(str(policy))], api_name="/upload")
        assert outcome == f"已上传 1 个文件：{POLICY_NAME}；正在后台建立索引，期间仍按旧索引回答。"
        assert service.job.running
        # while it runs: the old index answers; a second request waits for the running one
        during = http.post("/api/ask", json={"question": SUBSIDY_QUESTION}).json()
        assert during["refused"]
        assert c.predict(PASSWORD, api_name="/reindex") == "索引正在建立中，请稍候。"
        status = poll_status(c, service, said=outcome)
        assert len(builds) == 2  # the click during the build ran it once more afterwards
        time.sleep(0.3)  # a few more questions on the new index
    finally:
        stop.set()
        for t in askers:
            t.join(60)
    assert not failures, failures[:3]
    assert any(answers) and not all(answers)  # questions came during the build and after it

    # the new document is searchable, answerable, listed and served
    text, table, picked, overview, types, issuers, said = status
    assert "完成" in text and "知识库：2 份文件" in overview
    # the 检索 filters offer the new document's type and issuer; the outcome says it is done
    assert {"通知", "答复"} <= {c[0] for c in types["choices"]}, types
    assert {c[0] for c in issuers["choices"]} == {"宁波市市场监督管理局"}, issuers
    assert said.startswith("索引任务完成。") and "正在后台" not in said  # (the second run added nothing)
    assert POLICY_NAME in [row[table["headers"].index("文件")] for row in table["data"]]
    hits = http.post("/api/search", json={"query": "专利保险保费补贴"}).json()["passages"]
    assert hits[0]["source"] == POLICY_NAME
    assert any("12万元" in h["text"] for h in hits if h["source"] == POLICY_NAME)
    answer = http.post("/api/ask", json={"question": SUBSIDY_QUESTION}).json()
    assert not answer["refused"] and "12万元" in answer["answer"]
    assert answer["citations"][0]["source"] == POLICY_NAME
    docs = {d.file_name: d for d in service.documents()}
    assert http.get(f"/files/{docs[POLICY_NAME].doc_id}").text == SUBSIDY_POLICY
    assert (kb_dir / "uploads" / POLICY_NAME).read_text(encoding="utf-8") == SUBSIDY_POLICY

    # delete the uploaded document: the file goes, and after the re-index the document too
    assert c.predict(PASSWORD, docs[POLICY_NAME].doc_id, api_name="/delete") == \
        f"已删除“{POLICY_NAME}”；正在后台重建索引。"
    assert not (kb_dir / "uploads" / POLICY_NAME).exists()
    poll_status(c, service)
    hits = http.post("/api/search", json={"query": "专利保险保费补贴", "k": 50}).json()["passages"]
    assert hits and all(h["source"] != POLICY_NAME for h in hits)
    assert http.post("/api/ask", json={"question": SUBSIDY_QUESTION}).json()["refused"]

    # delete the corpus letter: excluded, not deleted from disk; gone after the re-index
    letter = docs[REPLY_LETTER.name]
    assert c.predict(PASSWORD, letter.doc_id, api_name="/delete") == f"已删除“{REPLY_LETTER.name}”；正在后台重建索引。"
    assert Path(letter.source_path).read_bytes() == REPLY_LETTER.read_bytes()
    text, table, picked, overview, types, issuers, _ = poll_status(c, service)
    assert table["data"] == [] and "知识库：0 份文件，0 个分块。" in overview
    assert types["choices"] == [] and issuers["choices"] == []
    assert http.post("/api/search", json={"query": "专利质押"}).json()["passages"] == []
    empty = http.post("/api/ask", json={"question": "专利质押贷款出了坏账谁兜底？"})
    assert empty.status_code == 200 and empty.json()["refused"]
    assert http.get(f"/files/{letter.doc_id}").status_code == 404
    assert http.get("/api/health").json()["documents"] == 0
    assert Path(letter.source_path).is_file()
    http.close()


def test_oversize_upload_is_refused(app, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("专利保险" * 1000, encoding="utf-8")
    before = kb_state(app.settings)
    settings = app.settings.replace(max_file_mb=0.001)
    with running_app(settings) as (base, service):
        c = Client(base, verbose=False)
        with pytest.raises(ValueError, match=f"exceeds the maximum file size of {settings.ingest.max_file_bytes} bytes"):
            c.predict(PASSWORD, [handle_file(str(big))], api_name="/upload")
        # the server refuses it too, whatever the client checks
        r = httpx.post(f"{base}/gradio_api/upload", files={"files": ("big.txt", big.read_bytes())})
        assert r.status_code == 413 and f"{settings.ingest.max_file_bytes} bytes" in r.text
        assert not service.job.running
    assert kb_state(app.settings) == before
    assert not (app.settings.store.kb_dir / "uploads").exists()


# --- 评测 tab
def test_evaluation_tab_runs_the_sample_set_and_offers_the_report(client, app):
    report, plots, download = client.predict("sample", None, False, api_name="/evaluate")
    # in Chinese: the knowledge base it ran against, one line per metric with its limit and verdict
    assert "测试集：sample.jsonl（64 题" in report and "知识库：1 份文件" in report
    for name in ("检索命中率（前5）", "要点召回率", "拒答召回率", "误拒率"):
        assert f"| {name} |" in report
    assert "| ≥ 0.95 |" in report and ("✅ 通过" in report or "❌ 未通过" in report)
    assert "keypoint recall" not in report
    assert len(plots) == 3 and all(".png" in str(plot) for plot in plots)
    path = Path(download if isinstance(download, str) else download["path"])
    assert path.name == "report.html" and "IPKB evaluation" in path.read_text(encoding="utf-8")
    from web.ui import EVAL_RUNS

    runs = list(EVAL_RUNS.glob("run-*"))  # outside the knowledge base; only the last run is kept
    assert len(runs) == 1 and (runs[0] / "metrics.json").is_file()


def test_evaluation_tab_reports_a_bad_uploaded_test_set(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q1"}\n', encoding="utf-8")
    report, plots, download = client.predict("upload", handle_file(str(bad)), False, api_name="/evaluate")
    assert report.startswith("⚠️ bad.jsonl, line 1") and not plots and download is None


def test_evaluation_tab_reads_a_gbk_test_set_and_refuses_an_unreadable_one(client, tmp_path):
    from gradio_client import handle_file

    gbk = tmp_path / "gbk.jsonl"
    gbk.write_text('{"id": "q1", "question": "专利质押贷款出了坏账谁兜底？", "answerable": true, '
                   '"evidence": ["风险池基金"], "keypoints": ["风险池基金"]}\n', encoding="gbk")
    report, plots, _ = client.predict("upload", handle_file(str(gbk)), False, api_name="/evaluate")
    assert "测试集：gbk.jsonl（1 题" in report and len(plots) == 3
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(bytes(range(128, 256)) * 8)
    report, plots, download = client.predict("upload", handle_file(str(garbage)), False, api_name="/evaluate")
    assert report.startswith("⚠️ garbage.jsonl: 测试集不是 UTF-8 文本") and not plots and download is None


# --- security: file inputs, private handlers, password attempts
def call_raw(base: str, api_name: str, data: list) -> str:
    """A Gradio endpoint through raw HTTP (POST /gradio_api/call/{name}, then its event stream)."""
    r = httpx.post(f"{base}/gradio_api/call/{api_name}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"HTTP {r.status_code} {r.text}"
    event_id = r.json()["event_id"]
    return httpx.get(f"{base}/gradio_api/call/{api_name}/{event_id}", timeout=120).text


SERVER_FILE = {"path": "/etc/passwd", "orig_name": "passwd.txt", "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("password", ["", PASSWORD])
def test_file_inputs_take_only_uploaded_files(managed, password, tmp_path, monkeypatch):
    """A server path given as a file value is refused by /upload and /evaluate, with or without the
    password, through gradio_client (made to send the path as is instead of uploading the file) and raw HTTP."""
    from gradio_client.client import Endpoint

    monkeypatch.setattr(Endpoint, "_upload_file", lambda self, f, data_index: f)
    before = kb_state(managed.settings)
    c = Client(managed.base, verbose=False)
    # gradio_client shows the status of the refused call (the raw HTTP calls below read its message)
    with pytest.raises(Exception, match="400 Bad Request"):
        c.predict(password, [SERVER_FILE], api_name="/upload")
    for suffix in (".txt", ".jsonl"):
        secret = tmp_path / f"secret{suffix}"
        secret.write_text('{"id": "root:x:0:0", "question": "宁波市知识产权秘密"}\n', encoding="utf-8")
    for path in (str(tmp_path / "secret.txt"), str(tmp_path / "secret.jsonl")):
        value = dict(SERVER_FILE, path=path)
        refused = f"只接受通过本页面上传的文件（{Path(path).name} 不是上传的文件）"
        with pytest.raises(Exception, match="400 Bad Request"):
            if path.endswith(".txt"):
                c.predict(password, [value], api_name="/upload")
            else:
                c.predict("upload", value, False, api_name="/evaluate")
        for api_name, data in (("upload", [password, [value]]), ("evaluate", ["upload", value, False])):
            text = call_raw(managed.base, api_name, data)
            assert text == f'HTTP 400 {{"error":"{refused}"}}'
    assert call_raw(managed.base, "upload", [password, [SERVER_FILE]]) == \
        'HTTP 400 {"error":"只接受通过本页面上传的文件（passwd 不是上传的文件）"}'
    url = dict(SERVER_FILE, path="http://127.0.0.1:1/x.txt")
    assert call_raw(managed.base, "upload", [password, [url]]).startswith('HTTP 400 {"error":"只接受')
    assert not managed.service.job.running
    assert kb_state(managed.settings) == before


def test_evaluation_writes_nothing_in_the_kb_folder(client, app):
    before = kb_state(app.settings)
    report, plots, download = client.predict("sample", None, False, api_name="/evaluate")
    assert len(plots) == 3
    assert kb_state(app.settings) == before
    assert not (app.settings.store.kb_dir / "eval-runs").exists()


def test_failed_upload_is_set_aside_listed_and_deletable_and_cancel_works(managed, tmp_path, monkeypatch):
    """A file that fails leaves uploads/ for uploads/.failed/, is listed by /status and deleted by
    /delete_failed; /cancel stops a running ingestion between pages."""
    from test_limits import write_blank_pdf

    service, uploads = managed.service, managed.settings.store.kb_dir / "uploads"
    c = Client(managed.base, verbose=False)
    before = [d.file_name for d in service.documents()]  # the management test before may have deleted the letter
    empty = tmp_path / "空白.pdf"
    write_blank_pdf(empty, 2)
    monkeypatch.setattr(service.jobs, "settings", service.jobs.settings.replace(ocr=False))
    assert c.predict(PASSWORD, [handle_file(str(empty))], api_name="/upload").startswith("已上传 1 个文件：空白.pdf")
    text, *_ = poll_status(c, service)
    assert "空白.pdf" in text and "未能建立索引的上传文件（可删除）：空白.pdf" in text
    assert not (uploads / "空白.pdf").exists() and (uploads / ".failed" / "空白.pdf").is_file()
    assert c.predict(PASSWORD, api_name="/delete_failed") == "已删除 1 个失败的文件：空白.pdf"
    assert "未能建立索引" not in c.predict("", api_name="/status")[0]

    # cancel: a build whose loading waits for the cancel
    assert c.predict(PASSWORD, api_name="/cancel") == "没有正在进行的索引任务。"
    real_build = service.jobs.build

    def waiting_build(*args, should_stop, **kwargs):
        deadline = time.time() + 30
        while not should_stop() and time.time() < deadline:
            time.sleep(0.05)
        return real_build(*args, should_stop=should_stop, **kwargs)

    monkeypatch.setattr(service.jobs, "build", waiting_build)
    assert c.predict(PASSWORD, api_name="/reindex") == "已开始重建索引。"
    assert c.predict(PASSWORD, api_name="/cancel") == "已请求取消：当前文件在下一页前停止。"
    job = wait_idle(service, timeout=20)
    assert job.message.startswith("已取消")
    assert [d.file_name for d in service.documents()] == before  # the index is unchanged
