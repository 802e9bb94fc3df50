"""`python app.py --workers 2` as a user starts it: a front on the port, two worker processes behind it.

Concurrent API clients are served by both workers without an error; a document uploaded through the UI
(one worker builds) is seen by both; the UI works through the front (gradio_client, and chromium when
installed); wrong admin passwords count across workers; a killed worker is restarted; SIGTERM stops all.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from app_server import free_port
from gradio_client import Client, handle_file
from tests_support import REPO, SUBSIDY_POLICY, SUBSIDY_QUESTION


pytestmark = pytest.mark.slow  # starts the app: three processes, two of them load e5

PASSWORD = "s3cret"
QUESTIONS = ["专利质押贷款出了坏账谁兜底？", "发明专利被侵权有保险吗？", "知识产权运营公共服务平台有什么功能？",
             "宁波市知识产权学院是做什么的？", "高价值专利组合培育项目有多少个？"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module", autouse=True)
def no_heartbeat():
    """gradio_client's heartbeat stream (as in test_app.py): nothing here needs it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Client, "_stream_heartbeat", staticmethod(lambda *args: None))
        yield


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(out)


def health(base: str) -> tuple[int, dict]:
    r = httpx.get(f"{base}/api/health", timeout=30)
    assert r.status_code == 200, r.text
    return int(r.headers["x-ipkb-worker"]), r.json()


@pytest.fixture(scope="module")
def front(tmp_path_factory, embed_cache, letter_settings, copy_kb):
    kb_dir = copy_kb(letter_settings).store.kb_dir
    (corpus,) = letter_settings.ingest.corpus
    config = tmp_path_factory.mktemp("config") / "ipkb.toml"
    config.write_text("", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "IPKB_CONFIG": str(config), "IPKB_CORPUS": str(corpus), "IPKB_EMBED_CACHE": str(embed_cache),
           "IPKB_ADMIN_PASSWORD": PASSWORD, "IPKB_LLM_BASE_URL": "", "IPKB_LLM_MODEL": "",
           "IPKB_ASKS_PER_MINUTE": "100000"}  # the 20 simulated clients are all 127.0.0.1
    log = open(kb_dir.parent / "front.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--kb", str(kb_dir), "--workers", "2"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, (kb_dir.parent / "front.log").read_text(errors="replace")
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "the app did not start"
            time.sleep(0.5)
        yield SimpleNamespace(base=base, proc=proc, kb_dir=kb_dir, log=kb_dir.parent / "front.log")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        log.close()


def test_help_names_the_workers_flag():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "--workers" in out.stdout and "least busy" in out.stdout


def test_a_bad_workers_value_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "app.py", "--workers", "0", "--kb", str(tmp_path / "kb")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "workers" in out.stderr and "Traceback" not in out.stderr


def test_two_workers_behind_one_port(front):
    assert len(children_of(front.proc.pid)) == 2
    seen = {health(front.base)[0] for _ in range(6)}
    assert seen == {0, 1}  # the API goes to the least busy, ties in turn


def test_concurrent_clients_are_served_by_both_workers(front):
    """20 clients × 10 questions at once: no error, and both workers answered."""
    errors, served, lock = [], {}, threading.Lock()
    start = threading.Barrier(20)

    def client(n: int) -> None:
        with httpx.Client(timeout=120) as http:
            start.wait()
            for q in range(10):
                question = f"{QUESTIONS[(n + q) % len(QUESTIONS)]}（{n}-{q}）"
                try:
                    r = http.post(f"{front.base}/api/ask", json={"question": question})
                    assert r.status_code == 200 and "answer" in r.json(), r.text[:200]
                    with lock:
                        served[r.headers["x-ipkb-worker"]] = served.get(r.headers["x-ipkb-worker"], 0) + 1
                except Exception as exc:  # noqa: BLE001 - every failure counts
                    with lock:
                        errors.append(f"{question}: {exc}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(served.values()) == 200 and set(served) == {"0", "1"}, served


def test_the_ui_works_through_the_front(front):
    c = Client(front.base, verbose=False)
    assert c.cookies.get("ipkb-worker") in ("0", "1")  # given with /config: every later call goes to that worker
    _, chat, cited = c.predict("专利质押贷款出了坏账谁兜底？", [], api_name="/ask")
    assert "风险池基金" in str(chat[-1]["content"]) and "甬市监函〔2019〕25号" in cited
    results, _ = c.predict("发明专利被侵权保险", 5, [], [], "", "", api_name="/search")
    assert "甬市监函〔2019〕25号" in results


def test_api_limits_hold_through_the_front(front):
    r = httpx.post(f"{front.base}/api/ask", content=b"{" + b" " * (65 * 1024) + b"}",
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json() == {"error": "请求体过大（上限 64 KB）"}
    r = httpx.post(f"{front.base}/api/ask", json={"history": []}, timeout=30)
    assert r.status_code == 422 and r.json() == {"error": "缺少 question"}
    r = httpx.post(f"{front.base}/gradio_api/call/false", json={"data": []}, timeout=30)
    assert r.status_code == 404  # GradioEndpointsByName, in the worker


def test_wrong_passwords_count_across_workers(front):
    """Three wrong passwords on worker 0, and a fourth guess on worker 1 is counted as the fourth (a shared
    count: on its own, worker 1 would say only 管理密码不正确)."""
    first = Client(front.base, verbose=False, httpx_kwargs={"cookies": {"ipkb-worker": "0"}})
    second = Client(front.base, verbose=False, httpx_kwargs={"cookies": {"ipkb-worker": "1"}})
    outcomes = [first.predict(f"guess{i}", api_name="/cancel") for i in range(3)]
    assert outcomes[2].startswith("⚠️ 管理密码不正确；错误次数过多"), outcomes
    assert "错误次数过多" in second.predict("guess3", api_name="/cancel")  # locked, or counted as the 4th
    deadline = time.time() + 60  # the wait (2 s, then 4 s) ends; the right password clears the count
    while (outcome := second.predict(PASSWORD, api_name="/cancel")) != "没有正在进行的索引任务。":
        assert "错误次数过多" in outcome and time.time() < deadline, outcome
        time.sleep(0.5)


def test_an_upload_on_one_worker_is_seen_by_both(front, tmp_path):
    policy = tmp_path / "宁波专利保险补贴通知.txt"
    policy.write_text(SUBSIDY_POLICY, encoding="utf-8")
    c = Client(front.base, verbose=False)
    assert c.predict(PASSWORD, [handle_file(str(policy))], api_name="/upload").startswith("已上传 1 个文件")
    deadline, documents = time.time() + 180, {}
    while len(documents) < 2 or set(documents.values()) != {2}:
        assert time.time() < deadline, f"documents per worker: {documents}"
        worker, body = health(front.base)
        documents[worker] = body["documents"]
        time.sleep(0.2)
    answered = set()
    for _ in range(6):
        r = httpx.post(f"{front.base}/api/ask", json={"question": SUBSIDY_QUESTION}, timeout=60)
        assert "12万元" in r.json()["answer"]
        answered.add(r.headers["x-ipkb-worker"])
    assert answered == {"0", "1"}


@pytest.mark.skipif(not CHROMIUM, reason="chromium not installed (apt-get install chromium fonts-noto-cjk)")
def test_a_browser_asks_through_the_front(front):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.set_default_timeout(60_000)
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(front.base + "/")
            box = page.locator("#ipkb-question textarea")
            box.wait_for(state="visible")
            box.click()
            box.press_sequentially("专利质押贷款出了坏账谁兜底？")
            page.get_by_role("button", name="提问").click()
            expect(page.locator("#ipkb-chat")).to_contain_text("风险池基金", timeout=60_000)
            expect(page.locator("#ipkb-cited .ipkb-card").first).to_be_visible()
            assert page.context.cookies()[0]["name"] == "ipkb-worker" and errors == []
        finally:
            browser.close()


def test_a_killed_worker_is_restarted(front):
    before = children_of(front.proc.pid)
    os.kill(before[1], signal.SIGKILL)
    for _ in range(10):  # meanwhile the other worker answers
        assert httpx.post(f"{front.base}/api/ask", json={"question": QUESTIONS[0]}, timeout=60).status_code == 200
    deadline, seen = time.time() + 240, set()
    while seen != {0, 1}:
        assert time.time() < deadline, f"the killed worker did not come back: {front.log.read_text(errors='replace')}"
        seen.add(health(front.base)[0])
        time.sleep(0.2)
    after = children_of(front.proc.pid)
    assert len(after) == 2 and before[1] not in after
    log = front.log.read_text(errors="replace")
    assert "a new one starts in 0.5 s and serves once its models are loaded" in log
    assert re.search(r"worker \d \(pid \d+\) serves again, [\d.]+ s after it stopped", log), log


def test_with_every_worker_down_requests_wait_for_one_instead_of_failing(front):
    """Both workers killed at once: the front holds the requests until a restarted worker serves them."""
    for pid in children_of(front.proc.pid):
        os.kill(pid, signal.SIGKILL)
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda _: httpx.get(f"{front.base}/api/health", timeout=120).status_code, range(10)))
    assert codes == [200] * 10


def test_sigterm_stops_every_worker(front):
    workers = children_of(front.proc.pid)
    front.proc.terminate()
    front.proc.wait(timeout=60)
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.time() < deadline, "workers left running"
        time.sleep(0.2)
