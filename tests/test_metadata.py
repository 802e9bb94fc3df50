from ingest.clean import clean_pages
from ingest.metadata import doc_type_of, extract_metadata, parse_date


def test_reply_letter_metadata(reply_letter_text):
    meta = extract_metadata(clean_pages([reply_letter_text]).text, "letter.txt")
    assert meta.doc_number == "甬市监函〔2019〕25号"
    assert meta.issuer == "宁波市市场监督管理局"
    assert meta.date == "2019-07-22"
    assert meta.addressee == "刘正义委员"
    assert meta.title == "关于市政协十五届三次会议第130号提案的答复"
    assert meta.doc_type == "答复"
    assert meta.category_mark == "A"
    assert meta.contact == "吴春莉" and meta.phone == "55330646"
    assert meta.cc == "市政府办公厅、市政协提案委、江北区政协提案委、市委组织部、市科技局、市经信局"
    assert meta.printed_by == "宁波市市场监督管理局办公室" and meta.printed_date == "2019-07-24"
    assert not meta.title_from_filename


def test_dates():
    assert parse_date("2019年7月22日") == "2019-07-22"
    assert parse_date("二〇一九年七月二十二日") == "2019-07-22"
    assert parse_date("二〇二四年十二月三十一日") == "2024-12-31"
    assert parse_date("2019年13月1日") is None
    assert parse_date("无日期") is None


def test_missing_elements_are_none_and_title_falls_back_to_file_name():
    meta = extract_metadata("这是一段没有版头的正文。\n第二段正文。", "专利 质押 说明.txt")
    assert meta.title == "专利 质押 说明" and meta.title_from_filename
    assert (meta.doc_number, meta.issuer, meta.date, meta.addressee, meta.cc, meta.contact) == (None,) * 6
    assert meta.doc_type == "其他"


def test_head_elements_of_a_notice():
    text = "\n".join([
        "宁波市知识产权局文件", "甬知〔2023〕7号", "宁波市知识产权局关于印发", "《宁波市专利质押融资管理办法》的通知",
        "各区（县、市）市场监管局：", "现将办法印发给你们，请认真贯彻执行。", "宁波市知识产权局", "2023年3月1日",
    ])
    meta = extract_metadata(text, "x.txt")
    assert meta.title == "宁波市知识产权局关于印发《宁波市专利质押融资管理办法》的通知"
    assert meta.doc_type == "通知"
    assert meta.doc_number == "甬知〔2023〕7号"
    assert meta.addressee == "各区（县、市）市场监管局"
    assert meta.date == "2023-03-01"


def test_doc_types():
    assert doc_type_of("宁波市知识产权质押融资风险池基金管理办法（暂行）") == "办法"
    assert doc_type_of("关于加快知识产权强市建设的若干措施") == "措施"
    assert doc_type_of("关于强化知识产权保护的意见") == "意见"
    assert doc_type_of("2023年政府信息公开工作年度报告") == "报告"
    assert doc_type_of("专利导航工作指引") == "其他"
