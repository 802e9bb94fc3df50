"""The real app in chromium (Playwright): ask, refusal, HTML in documents, the document table.

One app per module, on 127.0.0.1, over a KB of the sample reply letter plus a planted document
whose text carries HTML and Markdown payloads. Every request the page makes is recorded: the
app must work offline (no CDN fonts or scripts) and a document must never make the reader's
browser run a script or fetch anything.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from app_server import running_app
from tests_support import REPLY_LETTER, REPO, SUBSIDY_POLICY

from ingest.build import build

pytestmark = pytest.mark.slow  # starts the app and chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "tests" / "artifacts"
TIMEOUT_MS = 30_000
QUESTION = "专利质押贷款出了坏账谁兜底？"
REFUSED_QUESTION = "杭州对专利质押贷款有没有贴息？"
PASSWORD = "browser-test-password"
PLANTED_QUESTION = "海豚救护专项资金由谁安排？"
PLANTED = """宁波市海豚救护专项资金管理办法

第一条 海豚救护专项资金由市海洋渔业局统一安排<script>window.__pwned = 1</script>，用于搁浅海豚<img src="http://evil.example/b.png">的救护与放生。
第二条 申请海豚救护专项资金的单位应提交救护记录<img src=x onerror="window.__pwned=2">和现场照片<img src="http://evil.example/b.png">，经审核后拨付。
第三条 救护记录的格式见附图![x](http://evil.example/a.png)。
"""


@dataclass
class Session:
    """A page and what it did: every request URL, page errors and console errors."""

    page: object
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory, letter_settings, copy_kb):
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI: `make test` installs it (target `browser`, apt-get)")
        pytest.skip("chromium not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    planted = tmp_path_factory.mktemp("planted")
    (planted / "planted-haitun.txt").write_text(PLANTED, encoding="utf-8")
    settings = copy_kb(letter_settings, admin_password=PASSWORD, corpus=[*letter_settings.ingest.corpus, planted])
    assert not build(settings.ingest.corpus, settings, progress=False).failed  # adds the planted document
    with running_app(settings) as (base, service), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield base, browser, service
        finally:
            browser.close()


@pytest.fixture
def session(browser_app, request):
    base, browser, _ = browser_app
    # an English browser too: Gradio's own strings must be Chinese whatever the reader's language
    locale = getattr(request, "param", "zh-CN")
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    s = Session(page)
    context.on("request", lambda r: s.requests.append(r.url))
    page.on("websocket", lambda ws: s.requests.append(ws.url))
    page.on("pageerror", lambda exc: s.errors.append(f"pageerror: {exc}"))
    context.on("response", lambda r: s.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda msg: s.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(base + "/")
    page.locator("#ipkb-question textarea").wait_for(state="visible")
    try:
        yield s
    finally:
        context.close()


def ask(page, question: str) -> None:
    """Type the question, click 提问, wait until the answer and its panel are there."""
    from playwright.sync_api import expect

    box = page.locator("#ipkb-question textarea")
    box.click()
    box.press_sequentially(question)
    page.get_by_role("button", name="提问").click()
    # the panel is filled in the same update as the final chat message
    expect(page.locator("#ipkb-cited .ipkb-card").first).to_be_visible(timeout=TIMEOUT_MS)


def test_answer_with_citation_offline(session, tmp_path):
    from playwright.sync_api import expect

    page = session.page
    ask(page, QUESTION)
    chat = page.locator("#ipkb-chat")
    expect(chat).to_contain_text(QUESTION)
    expect(chat).to_contain_text("风险池基金")
    expect(chat).to_contain_text("[1]")
    card = page.locator("#ipkb-cited .ipkb-card").first
    expect(card.locator(".src")).to_contain_text("《关于市政协十五届三次会议第130号提案的答复》")
    expect(card.locator(".src")).to_contain_text("甬市监函〔2019〕25号")
    expect(card.locator(".src")).to_contain_text("[1]")
    marks = card.locator("mark")
    expect(marks.first).to_be_visible()
    assert "风险池基金" in "".join(marks.all_inner_texts())
    # the highlighted sentence is the one the answer quotes
    assert marks.first.inner_text().strip().rstrip("。") in chat.inner_text()

    for path in (tmp_path / "app.png", ARTIFACTS / "app.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    assert (ARTIFACTS / "app.png").stat().st_size > 10_000

    assert session.requests, "no request recorded"
    assert session.foreign_requests() == []
    assert session.errors == []


def test_refusal_is_visible(session):
    from playwright.sync_api import expect

    page = session.page
    ask(page, REFUSED_QUESTION)
    chat = page.locator("#ipkb-chat")
    expect(chat).to_contain_text("未找到答案")
    expect(chat).not_to_contain_text("[1]")
    notice = page.locator("#ipkb-cited .ipkb-refused")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("未找到可回答的内容")
    expect(notice).to_contain_text("最接近的段落")
    assert page.locator("#ipkb-cited .ipkb-card").count() >= 1  # the closest passages, for staff
    assert page.locator("#ipkb-cited mark").count() == 0  # nothing is presented as the answer
    assert session.foreign_requests() == [] and session.errors == []


def test_html_in_a_document_shows_as_text_and_runs_nothing(session):
    from playwright.sync_api import expect

    page = session.page
    # 检索: the planted passages as search-result cards
    page.get_by_role("tab", name="检索").click()
    page.locator("#ipkb-query textarea").fill("海豚救护专项资金")
    page.get_by_role("button", name="检索", exact=True).click()
    results = page.locator("#ipkb-results")
    expect(results.locator(".ipkb-card").first).to_contain_text("海豚", timeout=TIMEOUT_MS)
    expect(results).to_contain_text("<script>window.__pwned = 1</script>")
    expect(results).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(results).to_contain_text('<img src="http://evil.example/b.png">')
    expect(results).to_contain_text("![x](http://evil.example/a.png)")
    assert results.locator("script, img").count() == 0

    # 咨询: the planted passages as citation cards, and quoted in the chat bubble
    page.get_by_role("tab", name="咨询").click()
    ask(page, PLANTED_QUESTION)  # answered from 第一条 alone: it holds a script and an image of its own
    cited, chat = page.locator("#ipkb-cited"), page.locator("#ipkb-chat")
    expect(cited).to_contain_text("<script>window.__pwned = 1</script>")
    expect(cited).to_contain_text('<img src="http://evil.example/b.png">')
    expect(chat).to_contain_text("市海洋渔业局")
    expect(chat).to_contain_text("<script>")
    assert cited.locator("script, img").count() == 0
    assert chat.locator(".message-content img, .message-content script").count() == 0

    assert page.get_by_text("<script>", exact=False).first.is_visible()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not [u for u in session.requests if urlsplit(u).hostname == "evil.example"]
    assert not [u for u in session.requests if urlsplit(u).path == "/x"]  # <img src=x> never loaded
    assert session.foreign_requests() == [] and session.errors == []


def test_document_table(session):
    from playwright.sync_api import expect

    page = session.page
    page.get_by_role("tab", name="知识库").click()
    table = page.locator(".table-wrap").first  # Gradio's Dataframe: header table + virtual rows
    expect(table).to_be_visible()
    for header in ("标题", "发文字号", "发文机关", "成文日期", "类型", "分块数", "文件"):
        expect(table).to_contain_text(header)
    expect(table).to_contain_text("关于市政协十五届三次会议第130号提案的答复")
    expect(table).to_contain_text("甬市监函〔2019〕25号")
    expect(table).to_contain_text("宁波市市场监督管理局")
    expect(table).to_contain_text("2019-07-22")
    expect(table).to_contain_text(REPLY_LETTER.name)
    expect(table).to_contain_text("planted-haitun.txt")
    expect(page.get_by_text("知识库：2 份文件")).to_be_visible()
    assert session.foreign_requests() == [] and session.errors == []


def test_clear_empties_chat_cited_passages_and_feedback(session):
    from playwright.sync_api import expect

    page = session.page
    ask(page, QUESTION)
    page.get_by_role("button", name="👍 有帮助").click()
    expect(page.locator("#ipkb-thanks")).to_contain_text("感谢反馈！")
    # the first line of the chat is not under a label
    first = page.locator("#ipkb-chat .message").first.bounding_box()
    labels = page.locator("#ipkb-chat [data-testid='block-label']")
    assert labels.count() == 0 or not labels.first.is_visible() or \
        labels.first.bounding_box()["y"] + labels.first.bounding_box()["height"] <= first["y"]
    # a new question clears the thanks
    box = page.locator("#ipkb-question textarea")
    box.fill("那保险呢？")
    page.get_by_role("button", name="提问").click()
    expect(page.locator("#ipkb-thanks")).not_to_contain_text("感谢反馈！")
    expect(page.locator("#ipkb-chat")).to_contain_text("那保险呢？")
    page.locator("#ipkb-clear").click()
    expect(page.locator("#ipkb-chat")).not_to_contain_text(QUESTION)
    expect(page.locator("#ipkb-cited .ipkb-card")).to_have_count(0)
    page.get_by_role("button", name="👍 有帮助").click()
    expect(page.locator("#ipkb-thanks")).to_contain_text("请先提问")  # the feedback target went too
    assert session.foreign_requests() == [] and session.errors == []


def test_stop_ends_a_running_answer(session, browser_app, monkeypatch):
    import time

    from playwright.sync_api import expect

    service = browser_app[2]

    def slow_stream(question, history, **_):
        for word in ("正在", "慢慢", "回答"):
            time.sleep(1.0)
            yield word
        time.sleep(30)
        yield "不该出现"

    monkeypatch.setattr(service.answerer, "stream", slow_stream)
    page = session.page
    page.locator("#ipkb-question textarea").fill(QUESTION)
    page.get_by_role("button", name="提问").click()
    expect(page.locator("#ipkb-chat")).to_contain_text("正在", timeout=TIMEOUT_MS)
    page.get_by_role("button", name="停止").click()
    time.sleep(3)
    expect(page.locator("#ipkb-chat")).not_to_contain_text("回答")
    expect(page.get_by_role("button", name="提问")).to_be_enabled()


@pytest.mark.parametrize("session", ["zh-CN", "en-US", "fr-FR"], indirect=True)
def test_gradio_strings_are_chinese_in_any_browser(session):
    """Gradio 6 picks its own strings' language from the browser (navigator.language; no server
    setting): the page makes every browser say zh-CN first (web/api.py, ChinesePage)."""
    from playwright.sync_api import expect

    page = session.page
    page.get_by_role("tab", name="评测").click()
    expect(page.get_by_text("将文件拖放到此处", exact=False).first).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Drop File Here")
    assert not session.errors, session.errors


def test_evaluation_report_in_chinese_and_uncropped_plots(session):
    from playwright.sync_api import expect

    page = session.page
    page.get_by_role("tab", name="评测").click()
    page.get_by_role("button", name="运行评测").click()
    expect(page.get_by_text("评测结果", exact=False).first).to_be_visible(timeout=180_000)
    body = page.locator("body")
    expect(body).to_contain_text("知识库：2 份文件")
    expect(body).to_contain_text("检索命中率（前5）")
    expect(body).to_contain_text("要求（eval/floors.toml）")
    thumb = page.locator(".gallery img, [data-testid='detailed-image'], button.thumbnail-item img").first
    expect(thumb).to_be_visible(timeout=TIMEOUT_MS)
    assert thumb.evaluate("img => getComputedStyle(img).objectFit") == "contain"
    assert session.foreign_requests() == [] and session.errors == []


def test_upload_and_delete_refresh_the_header_and_the_search_filters(session, tmp_path):
    """Last in the module: it changes the knowledge base (and puts it back). After an upload the
    header's count and the 检索 tab's type choices are fresh without reopening anything; a duplicate
    upload is reported as skipped; after a delete both go back."""
    from playwright.sync_api import expect

    page = session.page
    policy = tmp_path / "宁波专利保险补贴通知.txt"
    policy.write_text(SUBSIDY_POLICY, encoding="utf-8")
    overview = page.locator("#ipkb-overview")
    expect(overview).to_contain_text("知识库：2 份文件")

    def offered_types() -> list[str]:
        page.get_by_role("tab", name="检索").click()
        page.get_by_label("文件类型").click()
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        return [o.strip() for o in options]

    assert "通知" not in offered_types()
    page.get_by_role("tab", name="知识库").click()
    page.get_by_label("管理密码").fill(PASSWORD)
    copy = tmp_path / "同一通知副本.txt"
    copy.write_text(SUBSIDY_POLICY, encoding="utf-8")
    outcome = page.locator("#ipkb-outcome")
    for upload, said in ((policy, "已建立索引 1 个文件"), (policy, "已在知识库中且内容未变"), (copy, "跳过 1 个重复文件")):
        page.locator("#ipkb-files input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="上传并建立索引").click()
        expect(outcome).to_contain_text("索引任务完成", timeout=120_000)
        expect(outcome).to_contain_text(said)
        expect(outcome).not_to_contain_text("正在后台")
        expect(overview).to_contain_text("知识库：3 份文件")
    assert "通知" in offered_types()

    page.get_by_role("tab", name="知识库").click()
    page.get_by_label("选择文件").click()
    page.get_by_role("option", name="宁波专利保险补贴通知.txt", exact=False).click()
    page.get_by_role("button", name="删除所选文件").click()
    expect(page.locator("#ipkb-outcome")).to_contain_text("已删除")
    expect(overview).to_contain_text("知识库：2 份文件", timeout=120_000)
    assert "通知" not in offered_types()
    assert session.foreign_requests() == []
