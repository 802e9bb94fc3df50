from ingest.chunking import CAP, chunk_document
from ingest.clean import clean_pages


def _chunks(text, pages=None):
    clean = clean_pages(pages or [text])
    return clean, chunk_document("doc", "标题", clean)


def test_reply_letter_chunks_follow_its_structure(reply_letter_text):
    clean, chunks = _chunks(reply_letter_text)
    paths = [c.heading_path for c in chunks]
    for part in ["一是", "二是", "三是", "四是", "五是"]:
        assert any(p and p[-1].startswith(part) for p in paths), part
    for n in range(1, 7):
        assert ["下一步"] == next(p[:-1] for p in paths if p and p[-1].startswith(f"{n}、")), n
    assert sum("专利价值评估系统" in c.text for c in chunks) == 1
    assert sum("充分发挥专利无形资产价值" in c.text for c in chunks) == 1
    assert any(p == ["抄送"] for p in paths)
    for c in chunks:
        assert len(c.text) <= CAP
        assert c.text == clean.text[c.start : c.end]
        assert c.pages == [1]
        assert c.search_text.startswith("标题\n") and c.search_text.endswith(c.text)
        assert c.chunk_id == f"doc-{c.ordinal:04d}"


def test_a_heading_never_stands_alone():
    text = "一、总体情况\n（一）主动公开情况。主要通过政府门户网站主动公开政府文件。\n（二）依申请公开。受理申请21件。"
    _, chunks = _chunks(text)
    assert chunks[0].text.startswith("一、总体情况\n（一）")
    assert chunks[0].heading_path == ["一、总体情况", "（一）主动公开情况"]
    assert chunks[1].heading_path == ["一、总体情况", "（二）依申请公开"]


def test_long_sections_split_at_sentence_ends_within_the_cap():
    sentence = "推动发明专利被侵权保险业务的开展，降低企业维权成本，增强企业维权信心。"  # 35 chars
    text = "第三条 保险\n" + sentence * 60
    clean, chunks = _chunks(text)
    assert len(chunks) > 2
    for c in chunks:
        assert len(c.text) <= CAP
        assert c.text.endswith("。")
        assert c.heading_path == ["第三条"]  # an article is labelled by its number
    assert "".join(c.text for c in chunks).replace("\n", "") == clean.text.replace("\n", "")


def test_one_huge_sentence_is_cut_at_the_cap():
    text = "专利" * 1000
    _, chunks = _chunks(text)
    assert all(len(c.text) <= CAP for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_a_table_split_across_chunks_repeats_its_header():
    header = "信息内容 本年制发件数 本年废止件数 现行有效件数"
    rows = [f"行政规范性文件第{i}类 {i} {i + 1} {i + 2}" for i in range(60)]
    _, chunks = _chunks("\n".join(["二、主动公开政府信息情况", header, *rows]))
    assert len(chunks) >= 2
    for c in chunks:
        assert header in c.text
    assert sum(c.text.count(rows[0]) for c in chunks) == 1


def test_pages_of_chunks():
    pages = ["一、第一部分\n" + "第一页的内容。" * 50, "- 2 -\n" + "第二页的内容。" * 50, "二、第二部分\n第三页。"]
    _, chunks = _chunks(None, pages)
    assert chunks[0].pages == [1]
    assert {p for c in chunks for p in c.pages} == {1, 2, 3}
    assert chunks[-1].pages == [3] and chunks[-1].heading_path == ["二、第二部分"]


def test_each_article_of_a_regulation_is_its_own_chunk_under_its_chapter():
    """Laws and regulations are cited by article: 第二条 and 第三条 never share a chunk, even short ones."""
    text = "第一章 总则\n第一条 为了加强专利管理，制定本条例。\n第二条 本条例适用于本市。\n第二章 资助\n第三条 市人民政府设立专利专项资金。"
    _, chunks = _chunks(text)
    assert [c.heading_path for c in chunks] == [["第一章总则", "第一条"], ["第一章总则", "第二条"], ["第二章资助", "第三条"]]
    assert chunks[1].text == "第二条本条例适用于本市。"
