"""Loaders on real files: the shared PDFs, generated TXT/DOCX/HTML, and broken input."""
from __future__ import annotations

import builtins
import difflib
import os
import pathlib
import re
import time
from pathlib import Path

import pytest

from ingest.loaders import SUPPORTED_SUFFIXES, decode_text, load
from ingest.ocr import OcrEngine, lines_from_boxes
from kb.core.errors import LoadError

MB = 1024 * 1024
LIMIT = 30 * MB

TEXT_PDFS = {
    "anhui-2024-budget-report-excerpt.pdf": 2,
    "guizhou-2024-budget-report-excerpt.pdf": 2,
    "huaian-hongze-2023-gov-info-report.pdf": 5,
    "huaian-hongze-2024-gov-info-report.pdf": 5,
    "ningxia-2024-budget-report-excerpt.pdf": 4,
}
GUANGDONG = "guangdong-2024-budget-report-excerpt.pdf"
GUANGDONG_REF = "ocr-reference/guangdong-2024-budget-report-excerpt.ocr.txt"
# printed page numbers such as "—51—" or "一50一" (OCR reads the dash as 一)
PAGE_NUMBER_LINE = re.compile(r"^[\s\-—一－–]*\d+[\s\-—一－–]*$")


class NoOcr(OcrEngine):
    """Fails the test if a page with a text layer gets sent to OCR."""

    def read_pdf_page(self, pdf_path: Path, page_index: int) -> str:
        raise AssertionError(f"OCR called for page {page_index + 1} of {pdf_path.name}")


def _comparable(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not PAGE_NUMBER_LINE.match(ln)]
    return re.sub(r"\s+", "", "".join(lines))


# ---------------------------------------------------------------- PDFs


@pytest.mark.parametrize("name,pages", sorted(TEXT_PDFS.items()))
def test_text_layer_pdf(shared_corpus: Path, name: str, pages: int) -> None:
    progress: list[tuple[int, int]] = []
    doc = load(shared_corpus / "pdf" / name, max_bytes=LIMIT, ocr=NoOcr(),
               on_page=lambda done, total: progress.append((done, total)))
    assert doc.kind == "pdf"
    assert [p.number for p in doc.pages] == list(range(1, pages + 1))
    assert not any(p.ocr for p in doc.pages)
    for p in doc.pages:
        assert len(p.text.strip()) >= 50, f"page {p.number} has almost no text"
    assert re.search(r"[\u4e00-\u9fff]{10}", doc.text)  # real Chinese text, not mojibake
    assert progress == [(i, pages) for i in range(1, pages + 1)]


def test_pdf_title_from_metadata(shared_corpus: Path) -> None:
    doc = load(shared_corpus / "pdf" / "huaian-hongze-2023-gov-info-report.pdf", max_bytes=LIMIT)
    assert doc.file_title == "洪泽区人民政府2023年政府信息公开工作年度报告"
    doc = load(shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf", max_bytes=LIMIT)
    assert doc.file_title is None


def test_pdf_without_text_layer_and_no_ocr(shared_corpus: Path) -> None:
    with pytest.raises(LoadError, match=r"^no text found: .*OCR is not available"):
        load(shared_corpus / "pdf" / GUANGDONG, max_bytes=LIMIT)


@pytest.fixture(scope="module")
def guangdong_ocr(shared_corpus: Path):
    progress: list[tuple[int, int]] = []
    started = time.perf_counter()
    doc = load(shared_corpus / "pdf" / GUANGDONG, max_bytes=LIMIT, ocr=OcrEngine(),
               on_page=lambda done, total: progress.append((done, total)))
    seconds = time.perf_counter() - started
    print(f"\nOCR: {len(doc.pages)} pages in {seconds:.1f} s ({seconds / len(doc.pages):.2f} s/page)")
    return doc, progress


@pytest.mark.slow
def test_guangdong_pages_come_from_ocr(guangdong_ocr) -> None:
    doc, progress = guangdong_ocr
    assert [p.number for p in doc.pages] == [1, 2, 3, 4, 5]
    assert all(p.ocr for p in doc.pages)
    assert all(len(p.text.strip()) > 50 for p in doc.pages)
    assert progress == [(i, 5) for i in range(1, 6)]
    assert doc.pages[0].text.splitlines()[:2] == ["附件1", "名词解释"]  # reading order


@pytest.mark.slow
def test_guangdong_ocr_matches_reference(shared_corpus: Path, guangdong_ocr) -> None:
    doc, _ = guangdong_ocr
    reference = (shared_corpus / "pdf" / GUANGDONG_REF).read_text(encoding="utf-8")
    a, b = _comparable(doc.text), _comparable(reference)
    ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    print(f"OCR similarity: {ratio:.3f} ({len(a)} vs {len(b)} chars)")
    assert ratio >= 0.9
    # lines the angle classifier used to flip and lose
    assert "资产的无偿补助资金（如：支持发展新型农村集体经济的资金" in doc.text
    assert "央财政在2023年预算执行中新增发行10000亿元国债资金" in doc.text


# ---------------------------------------------------------------- TXT / MD

SAMPLE = "关于市政协十五届三次会议第130号提案的答复\r\n甬市监函〔2019〕25号\r\n高价值专利培育，质押融资风险池基金。\r"
EXPECTED = SAMPLE.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize(
    "encoding,reported",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030"),
     ("utf-16", "utf-16")],
)
def test_decode_text(encoding: str, reported: str) -> None:
    assert decode_text(SAMPLE.encode(encoding)) == (EXPECTED, reported)


def test_decode_gb18030_only_character() -> None:
    text = "㐀 is in GB18030 but not GBK"  # 4-byte GB18030 sequence
    assert decode_text(text.encode("gb18030")) == (text, "gb18030")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_load_txt_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "宁波 市 答复 2019.txt"  # Chinese and spaces in the name
    path.write_bytes(SAMPLE.encode(encoding))
    doc = load(path, max_bytes=LIMIT)
    assert doc.kind == "txt" and doc.path == str(path)
    assert doc.pages == [doc.pages[0]] and doc.pages[0].number == 1 and not doc.pages[0].ocr
    assert doc.text == EXPECTED
    assert doc.encoding == {"gbk": "gb18030"}.get(encoding, encoding)


def test_load_real_txt_and_markdown(shared_corpus: Path, tmp_path: Path) -> None:
    doc = load(shared_corpus / "nbamr-2019-25-reply-to-proposal-130.txt", max_bytes=LIMIT)
    assert "甬市监函〔2019〕25号" in doc.text and "\r" not in doc.text
    md = tmp_path / "说明.MD"  # suffix match is case-insensitive
    md.write_text("# 标题\n\n- 条目一\n", encoding="utf-8")
    doc = load(md, max_bytes=LIMIT)
    assert doc.kind == "md" and doc.text == "标题\n\n- 条目一\n" and doc.file_title == "标题"


# ---------------------------------------------------------------- DOCX


def test_load_docx_keeps_body_order(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "专利质押融资办法"
    d.add_heading("第一章 总则", level=1)
    d.add_paragraph("第一条 为促进专利转化运用，制定本办法。")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["项目", "金额", "备注"], ["风险池基金", "1000万元", "市级"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = table.cell(2, 0).merge(table.cell(2, 1))  # spans two grid columns
    merged.text = "合计"
    table.cell(2, 2).text = "两项"
    d.add_paragraph("第二条 本办法自发布之日起施行。")
    path = tmp_path / "办法 草案.docx"
    d.save(str(path))

    doc = load(path, max_bytes=LIMIT)
    assert doc.kind == "docx" and doc.file_title == "专利质押融资办法" and len(doc.pages) == 1
    lines = [ln for ln in doc.text.splitlines() if ln.strip()]
    assert lines == [
        "第一章 总则",
        "第一条 为促进专利转化运用，制定本办法。",
        "项目 金额 备注",
        "风险池基金 1000万元 市级",
        "合计 两项",  # a merged cell is read once
        "第二条 本办法自发布之日起施行。",
    ]


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file" * 20)
    with pytest.raises(LoadError, match=r"^not a readable DOCX: "):
        load(path, max_bytes=LIMIT)


# ---------------------------------------------------------------- HTML

HTML = """<!DOCTYPE html><html><head>{meta}<title>关于知识产权质押的通知</title>
<style>.x {{ color: red }} 样式文字</style><script>var 脚本 = 1;</script></head>
<body><nav>首页 | 导航</nav><header>网站页头</header>
<h1>关于知识产权质押的通知</h1>
<p>各区县：根据<a href="#">《专利法》</a>规定，
现通知如下。</p>
<table><tr><td>项目</td><td>金额</td></tr></table>
<!-- 注释 -->
<footer>版权所有 网站页脚</footer></body></html>"""


@pytest.mark.parametrize(
    "meta,encoding,reported",
    [("", "utf-8", "utf-8"), ('<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', "gbk",
                              "gb18030"), ('<meta charset="GBK">', "gbk", "gb18030")],
)
def test_load_html(tmp_path: Path, meta: str, encoding: str, reported: str) -> None:
    path = tmp_path / "通知 页面.HTM"
    path.write_bytes(HTML.format(meta=meta).encode(encoding))
    doc = load(path, max_bytes=LIMIT)
    assert doc.kind == "html" and doc.encoding == reported
    assert doc.file_title == "关于知识产权质押的通知"
    for absent in ("样式文字", "脚本", "导航", "网站页头", "网站页脚", "注释", "color"):
        assert absent not in doc.text
    lines = doc.text.splitlines()
    assert lines[0] == "关于知识产权质押的通知"
    assert "各区县：根据《专利法》规定， 现通知如下。" in lines  # inline <a> does not split the sentence
    assert "项目" in lines and "金额" in lines
    assert "\n\n\n" not in doc.text


# ---------------------------------------------------------------- bad input


def test_corrupt_pdf_truncated(shared_corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "截断.pdf"
    path.write_bytes((shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf").read_bytes()[:2048])
    with pytest.raises(LoadError, match=r"^not a readable PDF: \w+"):
        load(path, max_bytes=LIMIT)


def test_corrupt_pdf_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(os.urandom(20_000))
    with pytest.raises(LoadError, match=r"^not a readable PDF: \w+"):
        load(path, max_bytes=LIMIT)


def test_encrypted_pdf(shared_corpus: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf").pages[0])
    writer.encrypt(user_password="secret")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(LoadError, match=r"^encrypted PDF: remove the password and ingest again$"):
        load(locked, max_bytes=LIMIT)

    # only an owner password: opens with the empty user password and loads
    writer = PdfWriter()
    writer.add_page(PdfReader(shared_corpus / "pdf" / "anhui-2024-budget-report-excerpt.pdf").pages[0])
    writer.encrypt(user_password="", owner_password="owner")
    owner_only = tmp_path / "owner-only.pdf"
    with owner_only.open("wb") as fh:
        writer.write(fh)
    doc = load(owner_only, max_bytes=LIMIT)
    assert len(doc.pages) == 1 and len(doc.text) > 100


def test_empty_file(tmp_path: Path) -> None:
    for name in ("empty.txt", "empty.pdf"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(LoadError, match=r"^empty file \(0 bytes\)$"):
            load(tmp_path / name, max_bytes=LIMIT)


def test_whitespace_only_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\r\n　\n", encoding="utf-8")  # includes an ideographic space
    with pytest.raises(LoadError, match=r"^no text found"):
        load(path, max_bytes=LIMIT)


@pytest.mark.parametrize("name", ["表格.xlsx", "setup.EXE", "README"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"data")
    suffix = Path(name).suffix.lower()
    shown = f"'{suffix}'" if suffix else "(no extension)"
    expected = f"unsupported file type {shown} (supported: .docx, .htm, .html, .md, .pdf, .txt)"
    with pytest.raises(LoadError) as info:
        load(path, max_bytes=LIMIT)
    assert str(info.value) == expected
    assert SUPPORTED_SUFFIXES == {".pdf", ".docx", ".txt", ".md", ".html", ".htm"}


def test_file_over_small_limit(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("专利" * 1000, encoding="utf-8")  # 6000 bytes
    with pytest.raises(LoadError, match=r"^file too large: 0\.0 MB exceeds the 0\.0 MB limit"):
        load(path, max_bytes=5000)
    assert load(path, max_bytes=6000).text == "专利" * 1000  # exactly at the limit is fine


def test_file_over_limit_fails_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "大 文件.pdf"
    with big.open("wb") as fh:  # sparse: instant to create, 50 MB on stat
        fh.seek(50 * MB - 1)
        fh.write(b"\0")
    assert big.stat().st_size == 50 * MB

    real_open, real_path_open = builtins.open, pathlib.Path.open

    def guarded_open(file, *args, **kwargs):
        if os.fspath(file) == str(big):
            raise AssertionError("the loader opened a file it should have rejected by size")
        return real_open(file, *args, **kwargs)

    def guarded_path_open(self, *args, **kwargs):
        if str(self) == str(big):
            raise AssertionError("the loader opened a file it should have rejected by size")
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(pathlib.Path, "open", guarded_path_open)
    started = time.perf_counter()
    with pytest.raises(LoadError) as info:
        load(big, max_bytes=LIMIT)
    assert time.perf_counter() - started < 0.5
    assert str(info.value) == "file too large: 50.0 MB exceeds the 30.0 MB limit (set IPKB_MAX_FILE_MB to raise it)"


def test_undecodable_binary_txt(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(LoadError, match=r"^undecodable text"):
        load(path, max_bytes=LIMIT)


def test_unexpected_parser_error_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bs4

    def boom(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded\nwhile parsing")

    monkeypatch.setattr(bs4, "BeautifulSoup", boom)
    path = tmp_path / "deep.html"
    path.write_text("<p>深层嵌套</p>", encoding="utf-8")
    with pytest.raises(LoadError) as info:
        load(path, max_bytes=LIMIT)
    assert str(info.value) == "html loader failed: RecursionError: maximum recursion depth exceeded while parsing"


# ---------------------------------------------------------------- OCR line grouping


def _box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def test_lines_from_boxes_orders_lines_and_fragments() -> None:
    results = [
        (_box(300, 102, 500, 128), "第二行右半", 0.99),
        (_box(320, 48, 600, 72), "第一行右半", 0.98),
        (_box(100, 100, 290, 126), "第二行左半", 0.97),
        (_box(100, 50, 310, 74), "第一行左半", 0.99),
        (_box(100, 150, 180, 175), "IPC", 0.9),
        (_box(190, 152, 260, 177), "G06F", 0.9),
        (_box(270, 151, 330, 176), "分类", 0.9),
    ]
    assert lines_from_boxes(results) == ["第一行左半第一行右半", "第二行左半第二行右半", "IPC G06F分类"]
    assert lines_from_boxes(None) == [] and lines_from_boxes([]) == []


def test_markdown_loses_its_marks_and_keeps_its_title():
    from ingest.loaders import markdown_text

    text, title = markdown_text("# 宁波市专利管理条例\n\n2003年9月26日 通过\n\n<!-- INFO END -->\n\n## 第一章 总则\n\n**第一条** 为了……")
    assert title == "宁波市专利管理条例"
    assert "#" not in text and "<!--" not in text and "**" not in text
    assert "第一章 总则" in text.split("\n") and "第一条 为了……" in text.split("\n")
