"""打开原文 on an HTML document: rendered, with only allowed tags and safe hrefs."""
from __future__ import annotations

import pytest

from web.sanitize import html_page, sanitise_html


def test_structure_is_kept_and_active_content_removed():
    source = ('<html><head><title>t</title><style>body{color:red}</style><script>alert(1)</script></head>'
              '<body onload="x()"><h1 style="color:red" class="c">关于专利的通知</h1>'
              '<p id="p">第一条<b>补贴</b><img src="http://evil.example/a.png" onerror="x()">'
              '<a href="javascript:alert(1)">坏链接</a><a href="https://example.gov.cn/a" target="_blank">好链接</a></p>'
              '<iframe src="http://evil.example"><p>inside</p></iframe><table><tr><td>表格</td></tr></table>'
              '<svg><script>alert(2)</script></svg><SCRIPT>alert(3)</SCRIPT>&lt;script&gt;文字&lt;/script&gt;</body></html>')
    out = sanitise_html(source)
    assert out == ('<h1>关于专利的通知</h1><p>第一条<b>补贴</b><a>坏链接</a>'
                   '<a href="https://example.gov.cn/a" rel="noopener noreferrer">好链接</a></p>'
                   '<table><tr><td>表格</td></tr></table>&lt;script&gt;文字&lt;/script&gt;')


@pytest.mark.parametrize("href", ["javascript:alert(1)", " JaVa\tScript:alert(1)", "data:text/html,x",
                                  "vbscript:x"])
def test_unsafe_hrefs_are_dropped(href):
    assert sanitise_html(f'<a href="{href}">x</a>') == "<a>x</a>"


def test_unclosed_tags_are_closed_and_the_page_has_a_charset():
    assert sanitise_html("<ul><li>一<li>二") == "<ul><li>一<li>二</li></li></ul>"
    page = html_page("<p>正文</p>", "<a.html>")
    assert page.startswith('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>&lt;a.html&gt;</title>')
    assert page.endswith("<body><p>正文</p></body></html>")
