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


def test_a_form_repeated_down_the_document_is_one_chunk_per_record():
    from ingest.chunking import record_labels

    record = ("普惠类兑现清单({n})\n事项名称{name}\n政策依据《扶持办法》申请条件\n1示范区注册、纳税的企业。\n"
              "2首次认定的企业。\n奖励标准一次性给予{money}万元\n印证材料\n1 认定文件复印件\n2 营业执照复印件\n受理部门 政务大厅")
    names = ["国家专利金奖奖励", "国内发明专利奖励", "软件著作权奖励"]
    toc = "\n".join(f"{i}、{name}" for i, name in enumerate(names, 1))
    text = toc + "\n" + "\n".join(record.format(n=i, name=name, money=10 * i) for i, name in enumerate(names, 1))
    _, chunks = _chunks(text)
    records = [c for c in chunks if c.heading_path and c.heading_path[0].startswith("普惠类兑现清单")]
    assert [c.heading_path[0].split()[0] for c in records] == [f"普惠类兑现清单({i})" for i in (1, 2, 3)]
    assert all(len(c.heading_path) == 1 and name in c.text for c, name in zip(records, names))
    assert [c.text.count("奖励标准") for c in records] == [1, 1, 1]  # each record whole, alone
    lines = ["普惠类兑现清单(1)", "事项名称国家专利金奖奖励", "奖励标准…", "普惠类兑现清单(2)", "", "事项名称软件著作权奖励",
             "普惠类兑现清单(3)", "事项名称" + "很长" * 20]
    assert record_labels(lines) == {0: "普惠类兑现清单(1) 事项名称国家专利金奖奖励", 3: "普惠类兑现清单(2) 事项名称软件著作权奖励",
                                    6: "普惠类兑现清单(3)"}  # a long next line is no label
    assert not any(p and p[-1].startswith("3、") for p in (c.heading_path for c in chunks))  # the list is no heading
    # two copies are not yet a series, and a numbered item is not a record
    assert record_labels(["附表(1)", "甲", "附表(2)", "乙"]) == {}
    assert record_labels(["（1）甲", "（2）乙", "（3）丙"]) == {}
