"""Document profiles (level, region, dates, status) and place normalisation, on the real policies.

The documents are read as they are in ../shared/corpus (policies/ and the reply letter); the
Shanxi PDF through pypdf. Synthetic texts written here stand in only for what the corpus lacks:
a later version of the patent implementing rules and the abolished 浙江省专利保护条例.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ingest.profile import profile_document, split_header
from kb.core.places import Places, covers, label
from kb.core.profile import (
    LEVELS,
    STATUS_ABOLISHED,
    STATUS_EXPIRED,
    STATUS_IN_FORCE,
    STATUS_NOT_YET,
    STATUS_SUPERSEDED,
    STATUS_UNKNOWN,
    STATUSES,
    DocumentProfile,
)
from kb.store.status import normalise_title, resolve_statuses, status_as_of

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
POLICIES = CORPUS / "policies"
REPLY = CORPUS / "nbamr-2019-25-reply-to-proposal-130.txt"
AS_OF = "2026-11-30"

needs_corpus = pytest.mark.skipif(
    not POLICIES.is_dir() and not os.environ.get("CI"),
    reason=f"../shared/corpus/policies not found: {POLICIES}",
)

# title, issuer and doc_type as ingestion would pass them: the Markdown "# " title, the first line
# of the guide, the PDF's heading; the measures have no title in the file, so its stem stands in.
SOURCES = {
    "beijing-patent-regulation-2013.md": ("北京市专利保护和促进条例", None, "办法"),
    "guangdong-ip-protection-regulation-2022.md": ("广东省知识产权保护条例", None, "办法"),
    "henan-patent-protection-regulation-2005.md": ("河南省专利保护条例", None, "办法"),
    "nansha-2017-patent-pledge-interest-subsidy-guide.txt": ("2017年度专利质押融资贴息办事指南", None, "其他"),
    "nansha-2017-sci-tech-innovation-support-measures.txt": ("nansha-2017-sci-tech-innovation-support-measures", None, "其他"),
    "natl-civil-code-property-book.md": ("中华人民共和国民法典", None, "其他"),
    "natl-copyright-law-2020.md": ("中华人民共和国著作权法", None, "其他"),
    "natl-patent-law-2020.md": ("中华人民共和国专利法", None, "其他"),
    "natl-patent-law-impl-rules-2010.md": ("中华人民共和国专利法实施细则", None, "办法"),
    "natl-sme-promotion-law-2017.md": ("中华人民共和国中小企业促进法", None, "其他"),
    "natl-trademark-law-2019.md": ("中华人民共和国商标法", None, "其他"),
    "ningbo-patent-regulation-2012.md": ("宁波市专利管理条例", None, "办法"),
    "shandong-patent-regulation-2013.md": ("山东省专利条例", None, "办法"),
    "shanghai-patent-protection-regulation.md": ("上海市专利保护条例", None, "办法"),
    "shanxi-zone-2017-policy-list-puhui.pdf": ("山西转型综合改革示范区普惠类政策兑现清单（试行）", None, "其他"),
    "zhejiang-patent-regulation-2015.md": ("浙江省专利条例", None, "办法"),
    "zhengzhou-patent-regulation-2009.md": ("郑州市专利促进和保护条例", None, "办法"),
    "nbamr-2019-25-reply-to-proposal-130.txt": ("关于市政协十五届三次会议第130号提案的答复", "宁波市市场监督管理局", "答复"),
}

NANSHA = ("广东省", "广州市", "南沙区")
NINGBO = ("浙江省", "宁波市")
SHANXI_ZONE = ("山西省", "太原市", "山西转型综合改革示范区")  # jionlp files the zone under 太原市 (NBS code 140171)
N = ("全国",)

# file: level, region, promulgated, adopted, amended, effective_from, effective_until, abolishes, status as of AS_OF
EXPECTED = {
    "beijing-patent-regulation-2013.md": ("地方性法规", ("北京市",), None, "2005-05-20", "2013-09-27", "2014-03-01", None, (), STATUS_IN_FORCE),
    "guangdong-ip-protection-regulation-2022.md": ("地方性法规", ("广东省",), None, "2022-03-29", None, "2022-05-01", None, (), STATUS_IN_FORCE),
    "henan-patent-protection-regulation-2005.md": ("地方性法规", ("河南省",), None, "2000-11-25", "2005-12-02", "2006-03-01", None, (), STATUS_IN_FORCE),
    "nansha-2017-patent-pledge-interest-subsidy-guide.txt": ("办事指南", NANSHA, None, None, None, None, None, (), STATUS_UNKNOWN),
    "nansha-2017-sci-tech-innovation-support-measures.txt": ("规范性文件", NANSHA, None, None, None, "2017-01-01", "2021-12-31", (), STATUS_EXPIRED),
    "natl-civil-code-property-book.md": ("法律", N, None, "2020-05-28", None, "2021-01-01", None, (), STATUS_IN_FORCE),
    # an amended version's text still says "本法自1991年6月1日起施行" (the first version's date): this version
    # is in force from its latest amendment, not before
    "natl-copyright-law-2020.md": ("法律", N, None, "1990-09-07", "2020-11-11", "2020-11-11", None, (), STATUS_IN_FORCE),
    "natl-patent-law-2020.md": ("法律", N, None, "1984-03-12", "2020-10-17", "2020-10-17", None, (), STATUS_IN_FORCE),
    # the header lists the 2001 text and the 2002 revision only; the 2010 revision is not stated. "1992年…发布的
    # 《中华人民共和国专利法实施细则》同时废止" is an earlier version of itself: not an abolition
    "natl-patent-law-impl-rules-2010.md": ("行政法规", N, "2001-06-15", None, "2002-12-28", "2002-12-28", None, (), STATUS_IN_FORCE),
    "natl-sme-promotion-law-2017.md": ("法律", N, None, "2002-06-29", "2017-09-01", "2018-01-01", None, (), STATUS_IN_FORCE),
    # "注册商标的有效期为十年" is about trademarks, not the law: no effective_until
    "natl-trademark-law-2019.md": ("法律", N, None, "1982-08-23", "2019-04-23", "2019-04-23", None, ("商标管理条例",), STATUS_IN_FORCE),
    "ningbo-patent-regulation-2012.md": ("地方性法规", NINGBO, None, "2003-09-26", "2012-03-31", "2012-03-31", None, (), STATUS_IN_FORCE),
    "shandong-patent-regulation-2013.md": ("地方性法规", ("山东省",), None, "2013-08-01", None, "2013-09-01", None, ("山东省专利保护条例",), STATUS_IN_FORCE),
    # no dates in the header, but 第三十四条 says "本条例自2002年7月1日起施行"
    "shanghai-patent-protection-regulation.md": ("地方性法规", ("上海市",), None, None, None, "2002-07-01", None, (), STATUS_IN_FORCE),
    "shanxi-zone-2017-policy-list-puhui.pdf": ("规范性文件", SHANXI_ZONE, None, None, None, None, None, (), STATUS_UNKNOWN),
    "zhejiang-patent-regulation-2015.md": ("地方性法规", ("浙江省",), "2015-09-25", "2015-09-25", None, "2016-01-01", None, ("浙江省专利保护条例",), STATUS_IN_FORCE),
    "zhengzhou-patent-regulation-2009.md": ("地方性法规", ("河南省", "郑州市"), None, "2009-06-25", None, "2009-10-01", None, (), STATUS_IN_FORCE),
    # signed 2019年7月22日 (printed 7月24日); a letter states no 施行 date
    "nbamr-2019-25-reply-to-proposal-130.txt": ("答复", NINGBO, "2019-07-22", None, None, None, None, (), STATUS_UNKNOWN),
}

# Synthetic: a later version of the implementing rules (the 2023 revision is not in the corpus).
IMPL_RULES_2023 = """# 中华人民共和国专利法实施细则

2001年6月15日 中华人民共和国国务院令第306号公布

2002年12月28日 《国务院关于修改〈中华人民共和国专利法实施细则〉的决定》第一次修订

2010年1月9日 《国务院关于修改〈中华人民共和国专利法实施细则〉的决定》第二次修订

2023年12月11日 《国务院关于修改〈中华人民共和国专利法实施细则〉的决定》第三次修订

<!-- INFO END -->

第一条 根据《中华人民共和国专利法》（以下简称专利法），制定本细则。

第一百四十九条 本细则自2001年7月1日起施行。
"""

# Synthetic: the regulation the Zhejiang 2015 regulation abolishes (not in the corpus); no dates.
ZJ_PROTECTION = """# 浙江省专利保护条例

<!-- INFO END -->

第一条 为了保护专利权人的合法权益，制定本条例。
"""


def _read(name: str) -> str:
    path = REPLY if name == REPLY.name else POLICIES / name
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def corpus_profiles(places) -> dict[str, tuple[str, DocumentProfile]]:
    if not POLICIES.is_dir():
        pytest.fail(f"../shared/corpus/policies not found in CI: {POLICIES}")  # skipif covers the non-CI case
    found = sorted(p.name for p in POLICIES.iterdir()) + [REPLY.name]
    assert sorted(found) == sorted(SOURCES), "the corpus changed: update SOURCES and EXPECTED"
    out = {}
    for name, (title, issuer, doc_type) in SOURCES.items():
        out[name] = (title, profile_document(title, issuer, _read(name), name, doc_type, places))
    return out


def _profile(places, title: str, text: str, name: str = "x.md", doc_type: str = "其他", issuer=None) -> DocumentProfile:
    return profile_document(title, issuer, text, name, doc_type, places)


# ---- every real document


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_of_each_document(corpus_profiles, name):
    _, p = corpus_profiles[name]
    level, region, promulgated, adopted, amended, eff_from, eff_until, abolishes, _ = EXPECTED[name]
    got = (p.level, p.region, p.promulgated, p.adopted, p.amended, p.effective_from, p.effective_until, p.abolishes)
    assert got == (level, region, promulgated, adopted, amended, eff_from, eff_until, abolishes)
    assert p.status == STATUS_UNKNOWN  # left to the resolver


@needs_corpus
def test_statuses_of_the_corpus_as_of(corpus_profiles):
    docs = [(name, title, p) for name, (title, p) in corpus_profiles.items()]
    resolved = resolve_statuses(docs, AS_OF)
    assert {name: p.status for name, p in resolved.items()} == {name: e[-1] for name, e in EXPECTED.items()}


@needs_corpus
def test_nansha_measures_valid_five_years_from_2017(corpus_profiles):
    title, p = corpus_profiles["nansha-2017-sci-tech-innovation-support-measures.txt"]
    assert (p.effective_from, p.effective_until) == ("2017-01-01", "2021-12-31")
    on = lambda day: resolve_statuses([("m", title, p)], day)["m"].status  # noqa: E731
    assert on("2016-12-31") == STATUS_NOT_YET
    assert on("2021-12-31") == STATUS_IN_FORCE  # the last day of the fifth year
    assert on("2022-01-01") == STATUS_EXPIRED
    assert on(AS_OF) == STATUS_EXPIRED


@needs_corpus
def test_implementing_rules_2010_superseded_by_a_later_version(corpus_profiles, places):
    title, old = corpus_profiles["natl-patent-law-impl-rules-2010.md"]
    new = _profile(places, "中华人民共和国专利法实施细则（2023修订）", IMPL_RULES_2023, "impl-2023.md")
    assert (new.level, new.region, new.amended) == ("行政法规", N, "2023-12-11")
    docs = [("2010", title, old), ("2023", "中华人民共和国专利法实施细则（2023修订）", new)]
    now = resolve_statuses(docs, AS_OF)
    assert now["2010"].status == STATUS_SUPERSEDED
    # the old text's own "《中华人民共和国专利法实施细则》同时废止" (of the 1992 text) abolishes no version
    assert now["2023"].status == STATUS_IN_FORCE
    before = resolve_statuses(docs, "2023-06-01")  # before the 2023 revision existed
    assert before["2010"].status == STATUS_IN_FORCE
    alone = resolve_statuses(docs[:1], AS_OF)  # without the later version, nothing says it is replaced
    assert alone["2010"].status == STATUS_IN_FORCE
    # an undated text of the same title may be any version: neither abolished nor superseded
    undated = _profile(places, "中华人民共和国专利法实施细则", "第一条 根据专利法，制定本细则。", "impl-undated.txt")
    assert resolve_statuses(docs + [("undated", "中华人民共和国专利法实施细则", undated)], AS_OF)["undated"].status == STATUS_UNKNOWN


@needs_corpus
def test_zhejiang_regulation_abolishes_the_protection_regulation(corpus_profiles, places):
    title, zj = corpus_profiles["zhejiang-patent-regulation-2015.md"]
    old = _profile(places, "浙江省专利保护条例", ZJ_PROTECTION, "zj-protection.md", "办法")
    assert (old.level, old.region, old.effective_from) == ("地方性法规", ("浙江省",), None)
    docs = [("zj2015", title, zj), ("zj-old", "浙江省专利保护条例", old)]
    assert resolve_statuses(docs, AS_OF)["zj-old"].status == STATUS_ABOLISHED
    assert resolve_statuses(docs, AS_OF)["zj2015"].status == STATUS_IN_FORCE
    before = resolve_statuses(docs, "2015-12-31")  # the abolishing regulation is not yet in force
    assert before["zj-old"].status == STATUS_UNKNOWN  # and the old one states no dates: unknown, not guessed
    assert before["zj2015"].status == STATUS_NOT_YET


@needs_corpus
def test_shanghai_header_has_no_dates_but_the_text_states_shixing(corpus_profiles, places):
    _, p = corpus_profiles["shanghai-patent-protection-regulation.md"]
    header, body = split_header(_read("shanghai-patent-protection-regulation.md"))
    assert header is not None and "年" not in header  # really no dates in the header
    assert "本条例自2002年7月1日起施行" in body
    assert (p.promulgated, p.adopted, p.amended, p.effective_from) == (None, None, None, "2002-07-01")
    # without the 施行 article it would be unknown
    no_article = body.replace("本条例自2002年7月1日起施行。", "")
    without = _profile(places, "上海市专利保护条例", header + "<!-- INFO END -->" + no_article, "s.md", "办法")
    assert without.effective_from is None and status_as_of(without, AS_OF) == STATUS_UNKNOWN


@needs_corpus
def test_profiles_round_trip_through_json(corpus_profiles):
    for _, p in corpus_profiles.values():
        data = json.loads(json.dumps(p.to_json(), ensure_ascii=False))
        assert DocumentProfile.from_json(data) == p
        assert p.level in LEVELS and p.status in STATUSES


# ---- dates and statuses on small texts (no corpus needed)


def test_dates_in_text_forms(places):
    cases = {
        "本办法自2018年1月1日起施行，至2020年12月31日止。": ("2018-01-01", "2020-12-31"),
        "本办法自二〇一九年三月一日起施行，有效期三年。": ("2019-03-01", "2022-02-28"),
        "本规定自2020年2月29日起施行，有效期1年。": ("2020-02-29", "2021-02-28"),
        "本通知自2021年1月1日起施行。本通知有效期至2023年6月30日。": ("2021-01-01", "2023-06-30"),
        "本措施有效期5年。": (None, None),  # 5 years from an unknown start: unknown
        "注册商标的有效期为十年。本法自1983年3月1日起施行。": ("1983-03-01", None),
    }
    for text, expected in cases.items():
        p = _profile(places, "某办法", text, "x.txt")
        assert (p.effective_from, p.effective_until) == expected, text


def test_effective_from_the_date_of_issue(places):
    text = "关于某事的通知\n\n一、……\n二、本通知自印发之日起施行。\n\n某市知识产权局\n2021年3月5日\n\n某市知识产权局办公室  2021年3月8日印发\n"
    p = _profile(places, "关于某事的通知", text, "x.txt", "通知")
    assert (p.promulgated, p.effective_from) == ("2021-03-05", "2021-03-08")


@pytest.mark.parametrize(
    "title, issuer, text, doc_type, level",
    [
        ("浙江省专利行政执法办法", None, "浙江省人民政府令\n第335号\n\n第一条 为了规范专利行政执法，制定本办法。", "办法", "规章"),
        ("某市专利资助办法", None, "第一条 根据《专利代理条例》（国务院令第706号）等规定，结合本市实际，制定本办法。", "办法", "规范性文件"),
        ("最高人民法院关于审理专利纠纷案件适用法律问题的若干规定", None, "第一条 ……", "办法", "司法解释"),
        ("中华人民共和国专利法", None, "第一条 ……", "其他", "法律"),
        ("关于开展专利保险工作的通知", "某市知识产权局", "各区县：\n现将有关事项通知如下。", "通知", "规范性文件"),
        ("国务院关于同意设立某新区的批复", "国务院", "……", "答复", "规范性文件"),
        ("专利申请须知", None, "一、……", "其他", "办事指南"),
        ("某会议纪要", None, "会议讨论了专利工作。", "其他", "其他"),
    ],
)
def test_level_of_small_texts(places, title, issuer, text, doc_type, level):
    assert _profile(places, title, text, "x.txt", doc_type, issuer).level == level


def test_no_date_is_taken_from_the_file_name(places):
    p = _profile(places, "某某办法", "第一条 为了规范管理，制定本办法。", "measures-2019-01-01.txt")
    assert (p.promulgated, p.adopted, p.amended, p.effective_from, p.effective_until) == (None,) * 5
    assert status_as_of(p, AS_OF) == STATUS_UNKNOWN


def test_abolition_needs_the_abolisher_in_force_and_an_older_target(places):
    new = DocumentProfile(level="地方性法规", region=("浙江省",), effective_from="2016-01-01", abolishes=("浙江省专利保护条例",))
    older = DocumentProfile(level="地方性法规", region=("浙江省",), effective_from="2002-01-01")
    newer = DocumentProfile(level="地方性法规", region=("浙江省",), effective_from="2020-01-01")
    elsewhere = DocumentProfile(level="地方性法规", region=("山东省",), effective_from="2002-01-01")
    docs = [("n", "浙江省专利条例", new), ("o", "浙江省专利保护条例", older), ("r", "浙江省专利保护条例（2020修订）", newer)]
    got = resolve_statuses(docs + [("e", "浙江省专利保护条例", elsewhere)], AS_OF)
    assert (got["o"].status, got["r"].status, got["e"].status) == (STATUS_ABOLISHED, STATUS_IN_FORCE, STATUS_IN_FORCE)


def test_superseded_needs_the_same_region_and_known_dates():
    a = DocumentProfile(level="规范性文件", region=NANSHA, promulgated="2017-03-01", effective_from="2017-03-01")
    b = DocumentProfile(level="规范性文件", region=NANSHA, promulgated="2018-03-01", effective_from="2018-03-01")
    c = DocumentProfile(level="规范性文件", region=NINGBO, promulgated="2019-03-01", effective_from="2019-03-01")
    undated = DocumentProfile(level="规范性文件", region=NANSHA)
    docs = [("a", "2017年度专利资助办法", a), ("b", "2018年度专利资助办法", b), ("c", "2019年度专利资助办法", c), ("u", "专利资助办法", undated)]
    got = resolve_statuses(docs, AS_OF)
    assert [got[k].status for k in "abcu"] == [STATUS_SUPERSEDED, STATUS_IN_FORCE, STATUS_IN_FORCE, STATUS_UNKNOWN]


@pytest.mark.parametrize(
    "title, key",
    [
        ("中华人民共和国专利法实施细则（2010修订）", "专利法实施细则"),
        ("《中华人民共和国专利法实施细则》(2023年修订)", "专利法实施细则"),
        ("2017年度专利质押融资贴息办事指南", "专利质押融资贴息办事指南"),
        ("山西转型综合改革示范区普惠类政策兑现清单（试行）", "山西转型综合改革示范区普惠类政策兑现清单"),
        ("中华人民共和国专利法", "专利法"),
        ("浙江省专利保护条例", "浙江省专利保护条例"),
    ],
)
def test_normalise_title(title, key):
    assert normalise_title(title) == key


def test_profile_rejects_unknown_values():
    with pytest.raises(ValueError):
        DocumentProfile(level="通知")
    with pytest.raises(ValueError):
        DocumentProfile(status="有效")
    assert DocumentProfile().to_json()["region"] == []


# ---- places


@pytest.mark.parametrize(
    "question, expected",
    [
        ("上海浦东新区", [("上海市", "浦东新区")]),
        ("上海浦东的专利资助", [("上海市", "浦东新区")]),
        ("浦东", [("上海市", "浦东新区")]),
        ("宁波", [NINGBO]),
        ("宁波的企业专利质押贷款有什么支持？", [NINGBO]),
        ("南沙", [NANSHA]),
        ("南沙新区", [NANSHA]),
        ("广州南沙新区（自贸片区）", [NANSHA]),
        ("我们是南沙的工业企业，还能申请专利质押融资贴息吗？", [NANSHA]),
        ("南沙区", [NANSHA]),  # 广州 rather than 三沙: the alias table settles the tie
        ("三沙市南沙区", [("海南省", "三沙市", "南沙区")]),
        ("在浙江，专利被人侵权了找谁处理？", [("浙江省",)]),
        ("北京对专利质押融资有哪些支持？", [("北京市",)]),
        ("海淀", [("北京市", "海淀区")]),
        ("宁波北仑", [NINGBO + ("北仑区",)]),
        ("宁波市江北区", [NINGBO + ("江北区",)]),
        ("郑州的专利专项资金", [("河南省", "郑州市")]),
        ("杭州和宁波的专利政策", [("浙江省", "杭州市"), NINGBO]),
        ("山西示范区的专利奖励", [SHANXI_ZONE]),
        ("吉林", [("吉林省",)]),
        ("吉林市", [("吉林省", "吉林市")]),
        ("明天宁波天气怎么样", [NINGBO]),  # not 天宁(区)
        ("国家层面对中小企业买知识产权保险有什么政策？", [N]),
        ("中华人民共和国", [N]),
        ("国务院", [N]),
        ("全国人民代表大会", [N]),
        ("国家知识产权局办理专利质押登记要交什么材料", [N]),
        # ordinary words that are also (short) place names
        ("校企合作有什么补贴", []),
        ("平安保险的专利险", []),
        ("东方", []),
        ("工业园区的企业", []),
        ("示范区的企业拿到发明专利授权", []),  # which 示范区: unknown
        ("江北区", []),  # 宁波 or 重庆: unknown, not guessed
        ("城区", []),
        ("我想问一下专利资助怎么申请", []),
        ("《中华人民共和国专利法》第七十一条怎么规定", []),  # a quoted title names no place
    ],
)
def test_places_in_questions(places, question, expected):
    assert places.places_in(question) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("中华人民共和国专利法", N),
        ("第十三届全国人民代表大会常务委员会第二十二次会议通过", N),
        ("中华人民共和国国务院令第306号公布", N),
        ("宁波市专利管理条例", NINGBO),
        ("广州南沙新区（自贸片区）促进科技创新产业发展扶持办法", NANSHA),
        ("浙江省实施《中华人民共和国专利法》办法", ("浙江省",)),
        ("关于市政协十五届三次会议第130号提案的答复", ()),
        ("", ()),
    ],
)
def test_region_of_text(places, text, expected):
    assert places.region_of_text(text) == expected


def test_normalise_and_known_paths(places):
    assert places.normalise("上海浦东新区") == ("上海市", "浦东新区")
    assert places.normalise("南沙新区") == NANSHA
    assert places.normalise("合作") is None
    assert places.is_known(NANSHA) and places.is_known(N) and not places.is_known(("浙江省", "广州市"))


def test_alias_table_must_name_a_real_division():
    with pytest.raises(ValueError):
        Places(extra_aliases={"某新区": ("浙江省", "不存在市")}).places_in("某新区")


@pytest.mark.parametrize(
    "doc, asker, expected",
    [
        (N, NINGBO, True),
        (N, (), True),
        (("浙江省",), NINGBO, True),
        (NINGBO, NINGBO + ("北仑区",), True),
        (NINGBO, ("浙江省", "杭州市"), False),
        (NINGBO, ("浙江省",), False),  # a 浙江 asker of unknown city: a city rule is not said to apply
        (NANSHA, ("广东省", "广州市"), False),
        ((), NINGBO, False),  # unknown region: never said to apply
    ],
)
def test_covers(doc, asker, expected):
    assert covers(doc, asker) is expected
    assert Places.covers(doc, asker) is expected


def test_label():
    assert label(NANSHA) == "广东省广州市南沙区"
    assert label(N) == "全国"
    assert label(()) == "未知"
