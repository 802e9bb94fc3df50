"""The chat widget in chromium (Playwright): a page of another origin (a second small HTTP server on
127.0.0.1) embeds it with one script tag, asks the example question and shows the cited answer with
打开原文; a page of an origin not in `widget_origins` gets nothing. The real app over the sample letter."""
from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest
from app_server import free_port, running_app
from tests_support import REPO

pytestmark = pytest.mark.slow  # starts the app and chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "tests" / "artifacts"
TIMEOUT_MS = 30_000
QUESTION = "专利质押贷款出了坏账谁兜底？"
PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>某市知识产权局</title></head>
<body><h1>某市知识产权局</h1><p>本局网站。</p>
<script src="{base}/widget.js" data-title="政策咨询" defer></script></body></html>"""


@contextmanager
def site(port: int, page: str):
    """A website on 127.0.0.1:port whose every page is `page`."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = page.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def sites(letter_settings, copy_kb):
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI: `make test` installs it (target `browser`, apt-get)")
        pytest.skip("chromium not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    allowed, other = free_port(), free_port()
    settings = copy_kb(letter_settings, widget_origins=[f"http://127.0.0.1:{allowed}"])
    with running_app(settings) as (base, _), site(allowed, PAGE.format(base=base)) as good, \
            site(other, PAGE.format(base=base)) as bad, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield base, good, bad, browser
        finally:
            browser.close()


def open_page(browser, url: str, viewport: dict):
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    seen = {"requests": [], "errors": [], "responses": [], "failed": []}
    context.on("request", lambda r: seen["requests"].append(r.url))
    context.on("response", lambda r: seen["responses"].append((r.status, r.url)))
    context.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.on("pageerror", lambda exc: seen["errors"].append(f"pageerror: {exc}"))
    page.on("console", lambda m: seen["errors"].append(f"console: {m.text}") if m.type == "error" else None)
    page.goto(url)
    return context, page, seen


def test_an_allowed_site_embeds_the_widget_and_shows_a_cited_answer(sites, tmp_path):
    from playwright.sync_api import expect

    base, good, _, browser = sites
    context, page, seen = open_page(browser, good + "/", {"width": 1280, "height": 900})
    try:
        launcher = page.locator("#ipkb-widget .launcher")
        expect(launcher).to_have_text("💬 政策咨询")
        launcher.click()
        panel = page.locator("#ipkb-widget .panel")
        expect(panel).to_be_visible()
        panel.get_by_role("button", name=QUESTION).click()  # the example question
        cites = panel.locator(".cites li")
        expect(cites.first).to_be_visible(timeout=TIMEOUT_MS)
        answer = panel.locator(".msg.bot").last
        expect(answer).to_contain_text("风险池基金")
        expect(answer).to_contain_text("[1]")
        expect(cites.first).to_contain_text("[1] 《关于市政协十五届三次会议第130号提案的答复》 甬市监函〔2019〕25号")
        link = cites.first.get_by_role("link", name="打开原文")
        href = link.get_attribute("href")
        assert href.startswith(f"{base}/files/") and link.get_attribute("target") == "_blank"
        source = httpx.get(href, timeout=30)
        assert source.status_code == 200 and "风险池基金" in source.text  # the original text of the cited letter
        expected = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=120).json()
        assert answer.locator(".text").inner_text().strip() == expected["body"]  # the answer of /api/ask
        assert cites.count() == len(expected["citations"])
        for path in (tmp_path / "widget.png", ARTIFACTS / "widget.png"):
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
        # a follow-up goes with its history, as in the chat
        box = panel.locator("textarea")
        box.fill("那保险呢？")
        box.press("Enter")
        expect(panel.locator(".msg.bot").nth(2)).to_contain_text("保险", timeout=TIMEOUT_MS)
        assert {urlsplit(u).hostname for u in seen["requests"] if u.startswith("http")} == {"127.0.0.1"}
        assert [u for u in seen["requests"] if u.startswith(base)][:2] == [f"{base}/widget.js", f"{base}/widget/config"]
        assert seen["errors"] == [] and all(status < 400 for status, _ in seen["responses"])
    finally:
        context.close()


def test_on_a_phone_the_panel_fills_the_screen(sites):
    from playwright.sync_api import expect

    _, good, _, browser = sites
    context, page, _ = open_page(browser, good + "/", {"width": 390, "height": 780})
    try:
        page.locator("#ipkb-widget .launcher").click()
        panel = page.locator("#ipkb-widget .panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 780)
        page.locator("#ipkb-widget header button").click()  # 关闭
        expect(panel).to_be_hidden()
    finally:
        context.close()


def test_a_site_not_on_the_list_gets_nothing(sites):
    base, _, bad, browser = sites
    context, page, seen = open_page(browser, bad + "/", {"width": 1280, "height": 900})
    try:
        page.wait_for_load_state("networkidle")
        assert f"{base}/widget/config" in seen["requests"]  # asked, and refused by the app (no CORS headers)…
        refused = httpx.post(f"{base}/widget/config", headers={"origin": bad})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        assert f"{base}/widget/config" in seen["failed"]  # …which the browser does not let the page read…
        assert page.locator("#ipkb-widget").count() == 0  # …so the script shows nothing
        # and the page cannot ask on its own either: no CORS headers, nothing to read
        outcome = page.evaluate("""(base) => fetch(base + '/widget/chat', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({messages: [{role: 'user', content: '风险池'}]})})
            .then(r => 'read ' + r.status, e => 'blocked: ' + e.name)""", base)
        assert outcome == "blocked: TypeError"
    finally:
        context.close()
