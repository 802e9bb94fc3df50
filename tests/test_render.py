"""web/render.py: the HTML people see. Pure functions, no knowledge base needed."""
from __future__ import annotations

import re

import pytest
from tests_support import LETTER_FACTS
from tests_support import passage as make_passage

from kb.core.records import Answer, Citation, Document, DocumentMeta, Passage
from web import render

SCRIPT = "<script>alert(1)</script>"
IMAGE = "![x](http://evil.example/a.png)"
EVIL = f"保险补贴{SCRIPT}说明{IMAGE}<img src=x onerror=alert(2)>\"'&"


def passage(rank: int = 1, text: str = "出台了扶持政策。", **fields) -> Passage:
    """A passage of the sample letter with a fixed score (shown as 相关度 0.032)."""
    return make_passage(rank, text, **{**LETTER_FACTS, "title": "关于第130号提案的答复", "score": 0.0321, "doc_id": "abc123",
                                       "source": "reply.txt", "heading": ["三是提升知识产权运营服务能力"], **fields})


def citation(n: int = 1, *, text: str = "出台了扶持政策。", title: str = "关于第130号提案的答复",
             spans: list[tuple[int, int]] | None = None, source: str = "reply.txt", pages: list[int] | None = None,
             doc_id: str = "abc123", section: list[str] | None = None) -> Citation:
    return Citation(n=n, text=text, title=title, doc_number="甬市监函〔2019〕25号", date="2019-07-22",
                    pages=[1] if pages is None else pages, section=section or ["三是"], source=source,
                    chunk_id=f"{doc_id}-0001", sentences=[0], spans=spans or [], doc_id=doc_id)


def answer(*, refused: bool = False, text: str = "出台了扶持政策。[1]", citations: list[Citation] | None = None,
           passages: list[Passage] | None = None, notices: list[str] | None = None) -> Answer:
    body, _, sources = text.partition("\n\n来源：\n")
    return Answer(question="发明专利被侵权有保险吗？", body=body, sources=sources.splitlines(), refused=refused,
                  citations=[] if refused else (citations or [citation()]), passages=passages or [passage()],
                  notices=notices or [])


def assert_inert(html: str) -> None:
    """Nothing from the text became markup: no script, no image, no handler attribute."""
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    # a Markdown image stays literal text (gr.HTML renders no Markdown): no src attribute loads it
    assert not re.search(r"<[a-z]+[^>]*\ssrc=", html) and IMAGE in html


@pytest.mark.parametrize("field", ["text", "title", "heading", "source", "doc_number"])
def test_passage_card_escapes_every_document_field(field):
    values = {"text": "正文", "title": "标题", "heading": ["一、"], "source": "a.txt", "doc_number": "甬〔2019〕1号"}
    values[field] = [EVIL] if field == "heading" else EVIL
    html = render.passage_card(passage(**values))
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;" in html or field == "source"  # the file name is only used to decide on #page=


def test_search_results_and_citation_cards_escape_text_titles_and_sections():
    html = render.search_results([passage(text=EVIL, title=EVIL, heading=[EVIL])])
    assert_inert(html)
    card = render.citation_card(citation(text=EVIL, title=EVIL, section=[EVIL], spans=[(0, 4)]), "abc123")
    assert_inert(card)
    assert card.count("<mark>") == 1 and "<mark>保险补贴</mark>" in card


def test_answer_panel_escapes_notices_citations_and_refusal_passages():
    html = render.answer_panel(answer(citations=[citation(text=EVIL, title=EVIL, spans=[(4, 4 + len(SCRIPT))])],
                                      notices=[f"提示{SCRIPT}"]))
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert '<div class="ipkb-notice">提示&lt;script&gt;alert(1)&lt;/script&gt;</div>' in html
    # the highlighted span is the script text itself, escaped inside <mark>
    assert "<mark>&lt;script&gt;alert(1)&lt;/script&gt;</mark>" in html
    refused = render.answer_panel(answer(refused=True, text="知识库中没有找到",
                                         passages=[passage(i, text=EVIL, title=EVIL) for i in (1, 2, 3, 4)]))
    assert_inert(refused)
    assert 'class="ipkb-refused"' in refused
    assert refused.count('class="ipkb-card"') == 3  # the closest three, for reference


def test_answer_panel_cites_with_numbers_and_links_to_the_file():
    html = render.answer_panel(answer(citations=[citation(1), citation(2, doc_id="def456")]))
    assert "引用的段落（2）" in html
    assert '<span class="ipkb-n">[1]</span>' in html and '<span class="ipkb-n">[2]</span>' in html
    assert 'href="/files/abc123"' in html and 'href="/files/def456"' in html
    assert "甬市监函〔2019〕25号" in html and "第1页" in html


def test_citation_without_doc_id_takes_it_from_its_passage():
    c = citation(doc_id="")
    c.chunk_id = "fromp-0001"
    html = render.answer_panel(answer(citations=[c], passages=[passage(doc_id="fromp")]))
    assert 'href="/files/fromp"' in html


def test_attribute_values_are_escaped():
    p = passage(doc_id='x" onmouseover="alert(1)')
    html = render.passage_card(p)
    assert 'onmouseover="alert' not in html
    assert re.search(r'data-chunk="[^"]*&quot;', html)


@pytest.mark.parametrize("spans, expected", [
    ([], "abcdefgh"),
    ([(0, 3)], "<mark>abc</mark>defgh"),
    ([(2, 4), (6, 8)], "ab<mark>cd</mark>ef<mark>gh</mark>"),
    ([(6, 8), (2, 4)], "ab<mark>cd</mark>ef<mark>gh</mark>"),  # unsorted input
    ([(0, 8)], "<mark>abcdefgh</mark>"),
    ([(2, 5), (3, 7)], "ab<mark>cde</mark><mark>fg</mark>h"),  # overlap: merged, nothing dropped
    ([(2, 6), (3, 5)], "ab<mark>cdef</mark>gh"),  # contained span: nothing added
    ([(3, 3)], "abcdefgh"),  # empty span: no empty mark
])
def test_highlighted_marks_spans(spans, expected):
    assert render.highlighted("abcdefgh", spans) == expected


def test_highlighted_escapes_inside_and_outside_marks():
    text = "a<b>c&d"
    assert render.highlighted(text, [(1, 4)]) == "a<mark>&lt;b&gt;</mark>c&amp;d"


def test_highlighted_spans_of_chinese_text():
    text = "出台了扶持政策。鼓励开展发明专利被侵权保险。"
    start = text.index("鼓励")
    assert render.highlighted(text, [(start, len(text))]) == \
        "出台了扶持政策。<mark>鼓励开展发明专利被侵权保险。</mark>"


@pytest.mark.parametrize("source, pages, anchor", [
    ("policy.pdf", [3, 4], "#page=3"),
    ("POLICY.PDF", [7], "#page=7"),
    ("policy.pdf", [], ""),
    ("reply.txt", [2], ""),
    ("notice.docx", [1], ""),
    ("page.html", [1], ""),
])
def test_file_link_adds_the_page_only_for_pdfs(source, pages, anchor):
    link = render.file_link("abc123", source, pages)
    assert f'href="/files/abc123{anchor}"' in link
    assert 'target="_blank"' in link and 'rel="noopener"' in link


@pytest.mark.parametrize("doc_id, quoted", [
    ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd"),
    ('a"b<c>', "a%22b%3Cc%3E"),
    ("a b#c?d", "a%20b%23c%3Fd"),
    ("宁波", "%E5%AE%81%E6%B3%A2"),
])
def test_file_link_quotes_the_doc_id(doc_id, quoted):
    link = render.file_link(doc_id, "x.pdf", [2])
    assert f'href="/files/{quoted}#page=2"' in link
    href = re.search(r'href="([^"]*)"', link).group(1)
    assert href.count("/") == 2 and "<" not in href and '"' not in href


def test_read_aloud_gives_the_answer_and_its_sources_in_plain_text():
    a = answer(text="出台了扶持政策。[1]\n\n来源：\n[1] 《关于第130号提案的答复》（甬市监函〔2019〕25号）第1页 · 三是",
               citations=[citation(1)])
    spoken = render.read_aloud(a)
    assert spoken == "出台了扶持政策。\n出处：《关于第130号提案的答复》（甬市监函〔2019〕25号）第1页"
    refused = answer(refused=True, text="知识库中没有找到能回答这个问题的内容。")
    assert render.read_aloud(refused) == "知识库中没有找到能回答这个问题的内容。"


def test_chat_text_marks_refusals():
    assert render.chat_text(answer()) == "出台了扶持政策。[1]"
    assert render.chat_text(answer(refused=True, text="没有找到")).startswith("⚠️ 未找到答案\n没有找到")


def test_search_results_when_nothing_is_found():
    assert "没有找到相关段落" in render.search_results([])


def test_search_results_show_rank_score_and_source():
    html = render.search_results([passage(1), passage(2, source="b.pdf", pages=[5])])
    assert '<span class="ipkb-n">#1</span>' in html and '<span class="ipkb-n">#2</span>' in html
    assert "相关度 0.032" in html and "#page=5" in html


def test_document_rows_match_the_headers():
    meta = DocumentMeta(title="标题", doc_number="甬〔2019〕1号", issuer="宁波市市场监督管理局", date="2019-07-22",
                        doc_type="答复")
    doc = Document(doc_id="abc123", source_path="/corpus/b.txt", file_name="b.txt", kind="txt", content_hash="h", meta=meta,
                   text="正文", page_count=2, ocr_pages=[2])
    rows = render.document_rows([doc], {"abc123": 7})
    assert len(rows) == 1 and len(rows[0]) == len(render.DOCUMENT_HEADERS)
    row = dict(zip(render.DOCUMENT_HEADERS, rows[0]))
    assert row["标题"] == "标题" and row["分块数"] == 7 and row["OCR页"] == "2" and row["ID"] == "abc123"
    assert row["页数"] == "—"  # a text file has no pages
    pdf = Document(doc_id="p1", source_path="/corpus/p.pdf", file_name="p.pdf", kind="pdf", content_hash="h2", meta=meta,
                   text="正文", page_count=3)
    assert dict(zip(render.DOCUMENT_HEADERS, render.document_rows([pdf], {})[0]))["页数"] == 3


def test_job_status_shows_progress_and_escapes_reasons():
    from web.render import job_status

    running = job_status("正在处理 a.pdf（2/4）", 0.5, True, [])
    assert '<progress value="0.500"' in running and "50%" in running
    failed = job_status("完成，1 个文件失败", 1.0, False, ["<b>x.pdf</b>: corrupt"])
    assert "<progress" not in failed and "&lt;b&gt;x.pdf&lt;/b&gt;" in failed and "<b>x.pdf" not in failed


def test_job_status_lists_skipped_duplicates_and_the_outcome_replaces_in_progress():
    from web.render import job_outcome, job_status

    html = job_status("完成", 1.0, False, [], ["<i>b.txt</i>（与已有文件 a.txt 内容相同）"])
    assert "已跳过重复文件：&lt;i&gt;b.txt&lt;/i&gt;（与已有文件 a.txt 内容相同）" in html
    done = job_outcome("完成", ["a.txt"], ["b.txt（与已有文件 a.txt 内容相同）"], [])
    assert done == ("索引任务完成。已建立索引 1 个文件：a.txt。跳过 1 个重复文件（未重复建立索引，上传的副本已删除）："
                    "b.txt（与已有文件 a.txt 内容相同）。")
    assert "正在后台" not in done
    again = job_outcome("完成", [], [], [], ["<b>c.txt</b>"])
    assert again == "索引任务完成。1 个文件已在知识库中且内容未变，未重新建立索引：&lt;b&gt;c.txt&lt;/b&gt;。"


def test_read_aloud_names_each_document_once_without_markers():
    a = answer(text="出台了扶持政策。[1]还有保险。[2][3]", citations=[citation(1), citation(2, pages=[2]), citation(3)])
    spoken = render.read_aloud(a)
    assert spoken == "出台了扶持政策。还有保险。\n出处：《关于第130号提案的答复》（甬市监函〔2019〕25号）第1-2页" or \
        spoken.count("《关于第130号提案的答复》") == 1
    assert "[" not in spoken


def test_issuer_names_of_one_organ_are_one_choice(places):
    groups = render.issuer_groups(["洪泽区人民政府", "淮安市洪泽区人民政府", "宁波市人民政府", "宁波市知识产权局", ""],
                                  places)
    assert groups == {"宁波市人民政府": ["宁波市人民政府"], "宁波市知识产权局": ["宁波市知识产权局"],
                      "洪泽区人民政府": ["洪泽区人民政府", "淮安市洪泽区人民政府"]}


def test_eval_report_in_chinese_with_limits_and_the_knowledge_base():
    metrics = {"questions": 3, "answerable": 2, "unanswerable": 1,
               "settings": {"retrieval_mode": "hybrid", "answerer": "extractive", "embedder": "e5"},
               "retrieval": {"hit@5": 1.0, "MRR@10": 0.5}, "answers": {"keypoint_recall": 0.95},
               "refusals": {"refusal_recall": 1.0, "false_refusal_rate": 0.5},
               "latency_ms": {"total": {"p50": 30.2, "p95": 120.0}}}
    limits = {"floors": {"retrieval.hit@5": 0.95, "retrieval.MRR@10": 0.85}, "ceilings": {"refusals.false_refusal_rate": 0.05}}
    report = render.eval_report(metrics, limits, "/tmp/x/sample.jsonl", 18, 400)
    assert report.startswith("### 评测结果：2 项未达标")
    assert "测试集：sample.jsonl（3 题：可回答 2，不可回答 1）" in report and "知识库：18 份文件，400 个分块" in report
    assert "| 检索命中率（前5） | 1.000 | ≥ 0.95 | ✅ 通过 |" in report
    assert "| 平均倒数排名（前10） | 0.500 | ≥ 0.85 | ❌ 未通过 |" in report
    assert "| 误拒率 | 0.500 | ≤ 0.05 | ❌ 未通过 |" in report
    assert "| 引用准确率 | — | — | — |" in report and "中位数 30 毫秒" in report


def test_eval_report_says_not_applicable_for_a_metric_over_no_question(tmp_path):
    from eval.gate import check

    metrics = {"questions": 2, "answerable": 2, "unanswerable": 0, "settings": {},
               "retrieval": {"hit@5": 1.0, "MRR@10": 1.0}, "answers": {"keypoint_recall": 1.0},
               "refusals": {"refusal_recall": 0.0, "false_refusal_rate": 0.0}}
    limits = {"floors": {"refusals.refusal_recall": 0.8, "retrieval.hit@5": 0.9}}
    report = render.eval_report(metrics, limits, "mine.jsonl", 1, 10)
    assert report.startswith("### 评测结果：全部达标")
    assert "| 拒答召回率 | — | — | 不适用 |" in report and "❌" not in report
    floors = tmp_path / "floors.toml"
    floors.write_text('[floors]\n"refusals.refusal_recall" = 0.8\n"retrieval.hit@5" = 0.9\n', encoding="utf-8")
    assert check(metrics, floors) == []
    assert check({**metrics, "unanswerable": 1}, floors) == ["refusals.refusal_recall = 0.000, below its floor 0.8"]
