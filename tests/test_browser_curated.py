"""The real app in chromium: save a chat answer as 标准口径, ask a paraphrase and get it marked as such; replace
its source document with a changed version (delete, upload) and see the entry flagged 待复核 and no longer served."""
from __future__ import annotations

import os
import re
import shutil

import pytest
from app_server import running_app
from tests_support import REPLY_LETTER

pytestmark = pytest.mark.slow  # starts the app and chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 30_000
PASSWORD = "browser-curated-password"
QUESTION = "专利质押贷款出了坏账谁兜底？"
PARAPHRASE = "专利质押贷款坏账谁来承担？"


@pytest.fixture(scope="module")
def page(letter_settings, copy_kb):
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI")
        pytest.skip("chromium not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    settings = copy_kb(letter_settings, admin_password=PASSWORD)
    with running_app(settings) as (base, _service), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN").new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(base + "/")
            page.locator("#ipkb-question textarea").wait_for(state="visible")
            yield page
        finally:
            browser.close()


def ask(page, question: str) -> None:
    """A fresh page (no earlier answers on it), the question asked, its answer's panel shown."""
    from playwright.sync_api import expect

    page.reload()
    box = page.locator("#ipkb-question textarea")
    box.wait_for(state="visible")
    box.click()
    box.press_sequentially(question)
    page.get_by_role("button", name="提问").click()
    expect(page.locator("#ipkb-chat")).to_contain_text(question)
    expect(page.locator("#ipkb-cited .ipkb-card, #ipkb-cited .ipkb-notice").first).to_be_visible()


def test_save_ask_a_paraphrase_then_replace_the_source(page, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine: the first answer loads e5 and jieba

    ask(page, QUESTION)
    expect(page.locator("#ipkb-chat")).to_contain_text("风险池基金")
    page.get_by_text("保存为标准口径（管理员）").click()
    page.get_by_role("button", name="用上一条答案预填").click()
    expect(page.locator("#ipkb-curate-question textarea")).to_have_value(QUESTION)
    expect(page.locator("#ipkb-curate-sources textarea")).to_have_value(re.compile(re.escape(REPLY_LETTER.name) + "｜.*风险池"))
    page.locator("#ipkb-curate-by textarea, #ipkb-curate-by input").first.fill("知识产权处")
    page.locator("#ipkb-curate-password input").fill(PASSWORD)
    page.locator("#ipkb-curate-save").click()
    expect(page.locator("#ipkb-curate-said")).to_contain_text("已保存为标准口径（第 1 条）")

    ask(page, PARAPHRASE)
    chat = page.locator("#ipkb-chat")
    expect(chat).to_contain_text("【标准口径】")
    expect(chat).to_contain_text("审定：知识产权处")

    # replace the letter with a version whose cited sentences changed: delete it, upload the new one
    changed = tmp_path / REPLY_LETTER.name
    changed.write_text(REPLY_LETTER.read_text(encoding="utf-8").replace("风险池基金", "风险补偿基金"), encoding="utf-8")
    page.get_by_role("tab", name="知识库").click()
    page.get_by_label("管理密码").fill(PASSWORD)
    outcome = page.locator("#ipkb-outcome")
    page.get_by_label("选择文件").click()
    page.get_by_role("option", name=REPLY_LETTER.name, exact=False).click()
    page.get_by_role("button", name="删除所选文件").click()
    expect(page.locator("#ipkb-overview")).to_contain_text("知识库：0 份文件", timeout=120_000)
    page.locator("#ipkb-files input[type=file]").set_input_files(str(changed))
    page.get_by_role("button", name="上传并建立索引").click()
    expect(outcome).to_contain_text("索引任务完成", timeout=120_000)
    expect(page.locator("#ipkb-overview")).to_contain_text("知识库：1 份文件")

    ask(page, PARAPHRASE)
    expect(page.locator("#ipkb-cited")).to_contain_text("待复核")
    expect(page.locator("#ipkb-chat")).not_to_contain_text("【标准口径】")
    page.get_by_role("tab", name="标准口径").click()
    page.get_by_role("button", name="刷新", exact=True).click()
    expect(page.locator("#ipkb-curated-table")).to_contain_text("待复核")
