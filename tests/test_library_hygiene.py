"""Chunks, metadata and profiles of every law file: the national IP law library (../shared/corpus/library,
or its bundled copy under data/corpus once there) and the bundled policies (data/corpus/policies).

What each file must satisfy is computed here from the file itself, simply and independently of ingest/:
no chunk without body text, no article cut or glued to another, no enumerated item as a heading, no page
for a file without pages, the type, issuer and dates its own title and header state. A small table of
hand-checked values covers what a rule cannot, and the versions of one title are ordered.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ingest.chunking import CAP
from ingest.pipeline import process_file
from kb.core.profile import STATUS_IN_FORCE, STATUS_SUPERSEDED
from kb.store.status import normalise_title, resolve_statuses
from tests_support import BUNDLED_CORPUS, REPO

SHARED_LIBRARY = REPO.parent / "shared" / "corpus" / "library"
LIBRARY = next((p for p in (BUNDLED_CORPUS / "library", SHARED_LIBRARY) if p.is_dir()), SHARED_LIBRARY)
POLICIES = BUNDLED_CORPUS / "policies"
INFO_END = "<!-- INFO END -->"
AS_OF = "2026-11-30"

if not LIBRARY.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"the law library is missing in CI: {LIBRARY}")
    pytest.skip(f"the law library is not here: {LIBRARY}", allow_module_level=True)


def _files() -> list[Path]:
    library = [p for p in sorted(LIBRARY.iterdir()) if p.suffix == ".md" and p.name != "SOURCES.md"]
    policies = [p for p in sorted(POLICIES.iterdir()) if p.suffix != ".toml"]
    return library + policies + [BUNDLED_CORPUS / "nbamr-2019-25-reply-to-proposal-130.txt"]


FILES = {p.name: p for p in _files()}
LAWS = sorted(n for n, p in FILES.items() if p.suffix == ".md")  # every Markdown file here is a LawRefBook law


@pytest.fixture(scope="module")
def docs(places):
    return {name: process_file(path, max_bytes=50_000_000, ocr=None, places=places)[0] for name, path in FILES.items()}


# ---- what a file states, read simply

_ARTICLE = re.compile(r"^第[一二三四五六七八九十百零〇]+条")
_CHAPTER = re.compile(r"^第[一二三四五六七八九十百零〇]+分?[编章节]\s")
_ITEM = re.compile(r"^(?:[（(]\s*[一二三四五六七八九十0-9]+\s*[）)]|[一二三四五六七八九十]+、|[0-9]{1,2}\s*[、.．]|[①②③④⑤⑥⑦⑧⑨⑩])")
_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _header_lines(path: Path) -> list[str]:
    """The dated lines of a LawRefBook header, bracketed titles taken out."""
    if path.suffix != ".md":
        return []
    raw = path.read_text(encoding="utf-8")
    if INFO_END not in raw:
        return []
    lines = [x.replace("\u3000", " ").strip() for x in raw.split(INFO_END)[0].split("\n")]
    return [x for x in lines if _DATE.search(x)]


def _dates(line: str) -> list[str]:
    return [f"{int(y):04d}-{int(m):02d}-{int(d):02d}" for y, m, d in _DATE.findall(line)]


def _outside_titles(line: str) -> str:
    return re.sub(r"《[^《》]*》", "", line)


def _type_of_title(title: str) -> str | None:
    t = re.sub(r"[（(][^（）()]*[）)]$", "", title.strip())
    if re.search(r"(?<![办方做])法$|法典[\u4e00-\u9fa5]{0,4}编?$", t):
        return "法"
    return next((w for w in ("条例", "细则", "解释", "规定", "办法", "决定", "批复") if t.endswith(w)), None)


# ---- chunks


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_chunk_is_only_title_headings_or_header(docs, name):
    doc = docs[name]
    title, header = _squeeze(doc.meta.title), {_squeeze(x) for x in _header_lines(FILES[name])}
    for chunk in doc.chunks:
        body = [x for x in (_squeeze(l) for l in chunk.text.split("\n"))
                if x and x not in title and x not in header and not _CHAPTER.match(x + " ")
                and not (chunk.heading_path and x == _squeeze(chunk.heading_path[-1]))]
        assert body, f"{chunk.chunk_id} has no body text: {chunk.text!r}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_an_article_is_one_chunk_or_cut_only_between_its_paragraphs(docs, name):
    doc = docs[name]
    for chunk in doc.chunks:
        starts = {m.group(0) for m in (_ARTICLE.match(l.strip()) for l in chunk.text.split("\n")) if m}
        assert len(starts) <= 1, f"{chunk.chunk_id} holds the start of {sorted(starts)}"
    # each article: from its 第X条 line to the next article or chapter line
    lines, offset, bounds = doc.text.split("\n"), 0, []
    for line in lines:
        bare_heading = _ITEM.match(line.strip()) and not re.search(r"[。；;，,：:”]$", line.strip())  # "二、支持…"
        if _ARTICLE.match(line.strip()) or _CHAPTER.match(line.strip() + " ") or bare_heading:
            bounds.append((offset, bool(_ARTICLE.match(line.strip())), _ARTICLE.match(line.strip())))
        offset += len(line) + 1
    bounds.append((len(doc.text), False, None))
    for (start, is_article, m), (end, _, _) in zip(bounds, bounds[1:]):
        if not is_article:
            continue
        article = doc.text[start:end].rstrip("\n")
        parts = [c for c in doc.chunks if c.start < start + len(article) and c.end > start]
        if len(article) <= CAP:
            assert any(c.start <= start and c.end >= start + len(article) for c in parts), \
                f"{m.group(0)} ({len(article)} chars) is cut: {[c.chunk_id for c in parts]}"
        else:
            for c in parts:
                assert m.group(0) in c.heading_path, f"{c.chunk_id}, a part of {m.group(0)}, is filed under {c.heading_path}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_enumerated_item_is_a_heading(docs, name):
    doc = docs[name]
    lines = {_squeeze(l) for l in doc.text.split("\n")}
    has_articles = any(_ARTICLE.match(l.strip()) for l in doc.text.split("\n"))
    for chunk in doc.chunks:
        path = chunk.heading_path
        articles = [i for i, label in enumerate(path) if _ARTICLE.match(label)]
        assert not articles or articles[-1] == len(path) - 1, f"{chunk.chunk_id}: something filed under an article: {path}"
        for label in path:
            if has_articles and _ITEM.match(label):
                # a numbered heading of a law is a line of its own with no sentence punctuation ("一、总则"); an
                # item of an article ends with "。" or "；" ("（七）法律、行政法规规定可以出质的其他财产权利。")
                assert _squeeze(label) in lines and not re.search(r"[。；;，,：:]$", label), \
                    f"{chunk.chunk_id}: the item {label!r} is used as a heading: {path}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_pages_only_for_files_with_pages(docs, name):
    doc = docs[name]
    for chunk in doc.chunks:
        if FILES[name].suffix == ".pdf":
            assert chunk.pages and all(1 <= p <= doc.page_count for p in chunk.pages)
        else:
            assert chunk.pages == [], f"{chunk.chunk_id} of a {FILES[name].suffix} file cites pages {chunk.pages}"


def test_known_articles_under_their_own_number(docs):
    def chunk_with(name, needle):
        return next(c for c in docs[name].chunks if needle in c.text)

    civil = chunk_with("natl-civil-code-property-book.md", "第四百四十四条")
    assert civil.heading_path[-1] == "第四百四十四条" and not any(_ITEM.match(x) for x in civil.heading_path)
    assert chunk_with("natl-civil-code-property-book.md", "（七）法律、行政法规规定可以出质的其他财产权利").heading_path[-1] == "第四百四十条"
    assert chunk_with("natl-patent-law-2020.md", "第七十一条").heading_path == ["第七章 专利权的保护", "第七十一条"]
    assert chunk_with("natl-patent-law-impl-rules-2010.md", "第九十四条").heading_path[-1] == "第九十四条"
    pledge = chunk_with("ningbo-patent-regulation-2012.md", "（二）以专利权质押的")
    assert pledge.text.startswith("第十六条") and "（五）其他需要认定专利权有效的。" in pledge.text and "第十七条" not in pledge.text


# ---- metadata and profiles of laws


@pytest.mark.parametrize("name", LAWS)
def test_type_issuer_and_dates_of_each_law_as_its_title_and_header_state(docs, name):
    doc, header = docs[name], _header_lines(FILES[name])
    meta, profile, title = doc.meta, doc.profile, doc.meta.title
    expected_type = _type_of_title(title)
    assert expected_type and meta.doc_type == expected_type, (title, meta.doc_type)
    assert meta.issuer, f"{title}: no issuer"
    joined = "\n".join(header)
    if title.startswith("最高人民法院"):
        assert "最高人民法院" in meta.issuer and profile.level == "司法解释"
    if "全国人民代表大会常务委员会" in joined:
        assert meta.issuer == "全国人民代表大会常务委员会" and profile.level == "法律"
    if "国务院令" in joined:
        assert meta.issuer.startswith("国务院") and profile.level == "行政法规"
    place = re.match(r"^(.{2,4}?[省市])", title)
    if place and "人民代表大会" in joined:
        assert meta.issuer in (place.group(1) + "人民代表大会常务委员会", place.group(1) + "人民代表大会"), meta.issuer
        assert profile.level == "地方性法规" and place.group(1) in "".join(profile.region)
    if profile.level in ("法律", "行政法规", "司法解释"):
        assert profile.region == ("全国",)
    # dates: the latest stated but 施行 is the document's date; the latest 修订/修正 is `amended`
    stated = [d for line in header if not line.rstrip(" ）)").endswith("施行") for d in _dates(line)]
    assert meta.date == (max(stated) if stated else None)
    changes = [d for line in header if re.search("修订|修正", _outside_titles(line)) for d in _dates(line)]
    assert profile.amended == (max(changes) if changes else None)
    adoptions = [min(_dates(line)) for line in header
                 if "通过" in _outside_titles(line) and not re.search("修订|修正", _outside_titles(line))]
    if adoptions:
        assert profile.adopted == min(adoptions)
    in_force = [d for line in header if line.rstrip(" ）)").endswith("施行") for d in _dates(line)]
    if in_force:  # unless it is the first version's, before a later amendment
        assert profile.effective_from == max([*in_force, *changes])
    if profile.effective_from and profile.amended:
        assert profile.effective_from >= profile.amended  # never the first version's date for an amended one
    assert normalise_title(title) not in {normalise_title(t) for t in profile.abolishes}


# file: doc_type, issuer, date, level, region, promulgated, adopted, amended, effective_from (checked by hand)
HAND_CHECKED = {
    "natl-civil-code-property-book.md":
        ("法", "全国人民代表大会", "2020-05-28", "法律", ("全国",), None, "2020-05-28", None, "2021-01-01"),
    "natl-patent-law-2020.md":
        ("法", "全国人民代表大会常务委员会", "2020-10-17", "法律", ("全国",), None, "1984-03-12", "2020-10-17", "2020-10-17"),
    "beijing-patent-regulation-2013.md":
        ("条例", "北京市人民代表大会常务委员会", "2013-09-27", "地方性法规", ("北京市",), None, "2005-05-20", "2013-09-27", "2014-03-01"),
    "行政法规-专利法实施细则(2023-12-11).md":
        ("细则", "国务院", "2023-12-11", "行政法规", ("全国",), "2001-06-15", None, "2023-12-11", "2023-12-11"),
    "浙江-宁波市科技创新促进条例(2011-04-11).md":
        ("条例", "宁波市人民代表大会常务委员会", "2011-04-11", "地方性法规", ("浙江省", "宁波市"), "2011-04-11", "2010-12-24", None, "2011-05-01"),
    "浙江-杭州市科学技术普及条例(2015-04-16).md":  # "市十二届人大常委会…通过", "杭州市…公告第42号公布"
        ("条例", "杭州市人民代表大会常务委员会", "2015-04-16", "地方性法规", ("浙江省", "杭州市"), "2015-04-16", "2014-10-28", None, "2015-05-01"),
    "司法解释-最高人民法院、最高人民检察院关于办理侵犯知识产权刑事案件具体应用法律若干问题的解释(2004-12-08).md":
        ("解释", "最高人民法院、最高人民检察院", "2004-12-08", "司法解释", ("全国",), "2004-12-08", "2004-11-02", None, "2004-12-22"),
    "司法解释-最高人民法院关于北京、上海、广州知识产权法院案件管辖的规定(2020-12-29).md":
        ("规定", "最高人民法院", "2020-12-23", "司法解释", ("全国",), None, "2014-10-27", None, None),
    "行政法规-国防专利条例(2004-09-17).md":
        ("条例", "国务院、中央军事委员会", "2004-09-17", "行政法规", ("全国",), "2004-09-17", None, None, "2004-11-01"),
    "行政法规-科学技术档案工作条例(1980-12-27).md":  # four organs over four lines; "发布之日施行"
        ("条例", "国家经济委员会、国家基本建设委员会、国家科学技术委员会、国家档案局", "1980-12-27", "行政法规", ("全国",),
         "1980-12-27", None, None, "1980-12-27"),
    "浙江-浙江省技术市场条例(2021-09-30).md":  # four dated events on one line
        ("条例", "浙江省人民代表大会常务委员会", "2021-09-29", "地方性法规", ("浙江省",), None, "1987-12-29", "2021-09-29", "2021-09-29"),
    "重庆-重庆市专利促进与保护条例(2011-11-29).md":  # "…第一次修正  根据", "…第二次修正）"
        ("条例", "重庆市人民代表大会常务委员会", "2011-11-25", "地方性法规", ("重庆市",), None, "2007-07-27", "2011-11-25", "2011-11-25"),
    "河南-郑洛新国家自主创新示范区条例(2020-08-03).md":  # no place in the title: the province that passed it
        ("条例", "河南省人民代表大会常务委员会", "2020-07-31", "地方性法规", ("河南省",), None, "2020-07-31", None, "2020-09-01"),
    "行政法规-保障中小企业款项支付条例(2020-07-05).md":  # no header at all
        ("条例", "国务院", None, "行政法规", ("全国",), None, None, None, "2020-09-01"),
    "上海-上海市技术市场条例.md":  # an empty header
        ("条例", "上海市人民代表大会常务委员会", None, "地方性法规", ("上海市",), None, None, None, "1995-07-01"),
}


@pytest.mark.parametrize("name", sorted(HAND_CHECKED))
def test_hand_checked_laws(docs, name):
    doc = docs[name]
    m, p = doc.meta, doc.profile
    got = (m.doc_type, m.issuer, m.date, p.level, p.region, p.promulgated, p.adopted, p.amended, p.effective_from)
    assert got == HAND_CHECKED[name]
    assert p.abolishes == ()


VERSIONS = [  # (earlier, later): SOURCES.md of the library; the 2010 implementing rules are a bundled policy
    ("natl-patent-law-impl-rules-2010.md", "行政法规-专利法实施细则(2023-12-11).md"),
    ("行政法-科学技术普及法(2002-06-29).md", "行政法-科学技术普及法(2024-12-25).md"),
    ("行政法规-国家科学技术奖励条例(2020-10-07).md", "行政法规-国家科学技术奖励条例(2024-05-26).md"),
    ("行政法规-保障中小企业款项支付条例(2020-07-05).md", "行政法规-保障中小企业款项支付条例(2025-03-17).md"),
    ("司法解释-最高人民法院关于知识产权法庭若干问题的规定(2018-12-28).md", "司法解释-最高人民法院关于知识产权法庭若干问题的规定(2023-10-21).md"),
    ("上海-上海市科学技术进步条例(2010-09-17).md", "上海-上海市科学技术进步条例(2024-05-10).md"),
]


def test_of_two_versions_the_later_is_in_force_and_the_earlier_superseded(docs):
    statuses = resolve_statuses([(n, d.meta.title, d.profile) for n, d in docs.items()], AS_OF)
    for earlier, later in VERSIONS:
        assert normalise_title(docs[earlier].meta.title) == normalise_title(docs[later].meta.title)
        assert (statuses[earlier].status, statuses[later].status) == (STATUS_SUPERSEDED, STATUS_IN_FORCE), (earlier, later)
    # nothing else is superseded: only real versions of one title are ordered
    superseded = {n for n, p in statuses.items() if p.status == STATUS_SUPERSEDED}
    assert superseded == {earlier for earlier, _ in VERSIONS}
