from ingest.clean import clean_pages, collapse_spaced_text, form_labels, is_page_number, table_flags


def test_page_number_lines_are_recognised():
    for line in ["- 1 -", "—16—", "— 3 —", "－2－", "第 3 页", "第1页 共5页", "3/5"]:
        assert is_page_number(line), line
    for line in ["1、加强知识产权创造", "2019年7月22日", "—2024年1月23日在安徽省", "- 1、加强"]:
        assert not is_page_number(line), line


def test_page_numbers_dropped_and_page_break_inside_sentence_joined():
    first = "加强区政府门户网站及政务新媒体日常管理，执行信息审核发布制度。"
    pages = [f"- 1 -\n{first}\n从严从实把好政治关、法律关、政策关，严格执行“分", "- 2 -\n级审核、先审后发”程序。\n第二段。"]
    clean = clean_pages(pages)
    assert clean.text == f"{first}\n从严从实把好政治关、法律关、政策关，严格执行“分级审核、先审后发”程序。\n第二段。"
    assert clean.page_starts == [(0, 1), (clean.text.index("级审核"), 2)]
    assert clean.pages_between(0, len(clean.text)) == [1, 2]
    assert clean.page_at(clean.text.index("第二段")) == 2


def test_blank_line_inside_a_long_sentence_is_joined_but_not_before_a_heading():
    long_line = "集成了知识产权大数据检索系统、知识产权信息数据库和多种平台工具软件以及专利价值"
    text = f"{long_line}\n\n评估系统等平台工具软件。\n\n下一步工作如下\n\n1、加强知识产权创造。"
    lines = clean_pages([text]).text.split("\n")
    assert lines[0] == long_line + "评估系统等平台工具软件。"
    assert lines[1:] == ["下一步工作如下", "1、加强知识产权创造。"]


def test_short_unpunctuated_lines_are_not_joined():
    text = "宁波市市场监督管理局文件\n\n甬市监函〔2019〕25号\n\n关于市政协十五届三次会议第130号提案的答复\n\n刘正义委员："
    assert clean_pages([text]).text.split("\n") == [
        "宁波市市场监督管理局文件", "甬市监函〔2019〕25号", "关于市政协十五届三次会议第130号提案的答复", "刘正义委员：",
    ]


def test_spaced_out_text_collapses_but_ascii_words_keep_spaces():
    assert collapse_spaced_text("号 ， 邮 编 ： 223100 ， 电 话 ：") == "号，邮编：223100，电话："
    assert collapse_spaced_text("2023 年，健康发展 。") == "2023年，健康发展。"
    assert collapse_spaced_text("支持 open source 项目") == "支持 open source 项目"


def test_table_rows_keep_their_cells():
    lines = ["第二十条第（一）项", "信息内容 本年制发件数 本年废止件数", "规章 0 0 0", "行政规范性文件 0 5 5"]
    assert table_flags(lines) == [False, True, True, True]
    assert table_flags(["洪泽区人民政府", "2023 年政府信息公开工作年度报告", "本报告由……编制。"]) == [False] * 3
    assert "规章 0 0 0" in clean_pages(["\n".join(lines)]).text


def test_whitespace_is_normalised_and_nothing_else_is_lost():
    text = "\u3000\u3000一是实施\u00a0高价值专利组合培育工作。\u200b\r\n二是推动运用。"
    assert clean_pages([text]).text == "一是实施高价值专利组合培育工作。\n二是推动运用。"


def test_reply_letter_repairs(reply_letter_text):
    text = clean_pages([reply_letter_text]).text
    assert "专利价值评估系统" in text
    assert "充分发挥专利无形资产价值" in text
    assert "服务体系建设，主要开展了" in text
    assert "开放揽才、产业聚智" in text
    # No character of the letter is lost apart from layout whitespace and the list bullet.
    squeeze = lambda s: "".join(s.split())  # noqa: E731
    assert squeeze(text) == squeeze(reply_letter_text).replace("-1、", "1、")


def _record(n: int, name: str) -> str:
    return "\n".join([f"普惠类兑现清单({n})", f"事项名称 {name}", "政策依据 《山西转型综合改革示范区促进企业自主创新扶持办法》",
                      "申请条件", "1 示范区注册、纳税，具有独立法人资格，且符合示范区产业发展方向的企业和社会组织。",
                      "会审部门 政策法规事务部、财政管理运营部、安全生产监督运行部、工商局、环保分局", "备注",
                      "专利申请须以示范区内生产或经营场所作为专利申请地址方可申请奖励。"])


def test_a_forms_repeated_field_labels_start_lines_of_their_own():
    """A 政策兑现清单's records repeat their form: its labels ("申请条件", "备注") are not glued to the line above
    ("政策依据《…》申请条件" out-covered the line that answers). Three records make a form; two do not."""
    names = ["国内发明专利奖励", "实用新型专利奖励", "PCT专利奖励"]
    three = clean_pages(["\n".join(_record(n, name) for n, name in enumerate(names, 1))]).text.split("\n")
    assert "申请条件" in three and "备注" in three
    assert "政策依据《山西转型综合改革示范区促进企业自主创新扶持办法》" in three
    two = clean_pages(["\n".join(_record(n, name) for n, name in enumerate(names[:2], 1))]).text.split("\n")
    assert "政策依据《山西转型综合改革示范区促进企业自主创新扶持办法》申请条件" in two
    assert form_labels(_record(1, names[0]).split("\n") * 3) >= {"事项名称", "政策依据", "申请条件", "会审部门", "备注"}
