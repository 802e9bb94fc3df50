"""An HTML document, rendered for 打开原文 but inert: a strict allow-list of tags (stdlib html.parser).

Kept: text structure (headings, paragraphs, lists, tables, emphasis) and links' `href` when it is
http(s), relative or a fragment. Removed: every other tag (its text kept), every other attribute,
and script, style and other active or embedded content with what is inside. The page is served with
a CSP `sandbox; default-src 'none'` besides, so nothing in it runs or loads.
"""
from __future__ import annotations

import html
from html.parser import HTMLParser

ALLOWED = frozenset("""a abbr b blockquote br caption code dd div dl dt em h1 h2 h3 h4 h5 h6 hr i li ol p pre
q s small span strong sub sup table tbody td tfoot th thead tr u ul""".split())
VOID = frozenset({"br", "hr"})
DROPPED = frozenset("""script style iframe frame frameset object embed applet template noscript svg math head
title textarea select button form canvas audio video source picture img link meta base""".split())
SAFE_SCHEMES = ("http://", "https://", "#", "/")


def _safe_href(value: str | None) -> str | None:
    href = (value or "").strip()
    lowered = "".join(href.split()).lower()
    if not lowered or ":" in lowered.split("/", 1)[0] and not lowered.startswith(("http:", "https:")):
        return None  # javascript:, data:, vbscript: … (a colon before the first slash)
    return href


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: list[str] = []  # open dropped elements: their content is not kept
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag in DROPPED and tag not in ("img", "link", "meta", "base", "source"):
                self.skipping.append(tag)
            return
        if tag in DROPPED:
            if tag not in ("img", "link", "meta", "base", "source"):  # void: nothing inside to skip
                self.skipping.append(tag)
            return
        if tag not in ALLOWED:
            return
        extra = ""
        if tag == "a":
            href = _safe_href(dict(attrs).get("href"))
            extra = f' href="{html.escape(href, quote=True)}" rel="noopener noreferrer"' if href else ""
        self.out.append(f"<{tag}{extra}>")
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID and not self.skipping:
            self.out.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in self.open:  # close what was opened, in order (unclosed children first)
            while self.open:
                top = self.open.pop()
                self.out.append(f"</{top}>")
                if top == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))


def sanitise_html(source: str) -> str:
    """The body of `source` with only allowed tags and `href`s; text escaped."""
    parser = _Sanitiser()
    parser.feed(source)
    parser.close()
    parser.out += [f"</{t}>" for t in reversed(parser.open)]
    return "".join(parser.out)


def html_page(source: str, title: str) -> str:
    """A whole page for the browser: the sanitised body under a charset and the file's name."""
    return ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>{sanitise_html(source)}</body></html>")
