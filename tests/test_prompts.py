"""The prompt files: the refusal names the configured bureau and hotline, or a neutral text."""
from __future__ import annotations

from tests_support import REPO

from kb.answer.prompts import Prompts
from web import render

NEUTRAL = "知识库中没有找到能回答这个问题的内容。建议咨询当地知识产权管理部门，或拨打12345政务服务热线。"


def test_refusal_is_neutral_when_no_bureau_is_configured():
    assert Prompts.load(REPO / "prompts").refusal == NEUTRAL


def test_refusal_names_the_configured_bureau_and_hotline():
    refusal = Prompts.load(REPO / "prompts", "宁波市市场监督管理局（宁波市知识产权局）", "0574-87187520").refusal
    assert refusal == ("知识库中没有找到能回答这个问题的内容。建议咨询宁波市市场监督管理局（宁波市知识产权局），"
                       "或拨打0574-87187520。")
    assert "{" not in refusal


def test_refusal_fills_only_what_is_set(tmp_path):
    for name in ("system", "answer", "answer_json", "condense"):
        (tmp_path / f"{name}.txt").write_text(name, encoding="utf-8")
    (tmp_path / "refusal.txt").write_text("请联系{bureau}（{hotline}）", encoding="utf-8")
    assert Prompts.load(tmp_path, "某局", "").refusal == "请联系某局（12345政务服务热线）"
    assert Prompts.load(tmp_path, "", "96315").refusal == "请联系当地知识产权管理部门（96315）"


def test_header_contact_line():
    assert render.contact_line("", "") == ""
    assert render.contact_line("某局", "96315") == "咨询部门：某局　热线：96315"
    assert render.contact_line("<b>局</b>", "") == "咨询部门：&lt;b&gt;局&lt;/b&gt;"
