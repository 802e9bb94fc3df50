"""Which documents a question is about (kb/answer/scope.py) and the profile filters
(kb/core/filters.py), over a hand-made catalogue: no e5, no knowledge base on disk."""
from __future__ import annotations

from dataclasses import replace

import pytest
from tests_support import passage

from kb.answer.scope import (
    NOTICE_NATIONAL_ONLY,
    NOTICE_NO_PLACE,
    off_year,
    question_scope,
    titled_documents,
    unmentioned_terms,
    validity_notices,
)
from kb.core.profile import DocumentProfile
from kb.core.records import Citation, Document, DocumentMeta
from kb.search.filters import Filters
from kb.store.catalogue import Catalogue


def _doc(doc_id: str, title: str, region: tuple[str, ...], level: str = "地方性法规", status: str = "现行有效",
         text: str = "", date: str | None = None, until: str | None = None) -> Document:
    return Document(doc_id=doc_id, source_path=f"/c/{doc_id}", file_name=f"{doc_id}.md", kind="md", content_hash="h",
                    meta=DocumentMeta(title=title, date=date), text=text or title, page_count=1,
                    profile=DocumentProfile(level=level, region=region, status=status, effective_until=until))


DOCS = [
    _doc("law", "中华人民共和国专利法", ("全国",), level="法律"),
    _doc("zj", "浙江省专利条例", ("浙江省",)),
    _doc("nb", "宁波市专利管理条例", ("浙江省", "宁波市")),
    _doc("bj", "北京市专利保护和促进条例", ("北京市",)),
    _doc("ns", "广州南沙新区（自贸片区）促进科技创新产业发展扶持办法", ("广东省", "广州市", "南沙区"),
         level="规范性文件", status="已过期", until="2021-12-31"),
    _doc("guide", "2017年度专利质押融资贴息办事指南", ("广东省", "广州市", "南沙区"), level="办事指南",
         text="2017年度专利质押融资贴息办事指南 贷款日期在2017年1月1日之后", date="2018-03-01"),
    _doc("odd", "某文件", (), level="其他"),
]


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue(DOCS, [])


def _admitted(scope, catalogue) -> set[str]:
    return {d.doc_id for d in catalogue.documents.values() if scope.filters is None or scope.filters.admits(d)}


@pytest.mark.parametrize("question, region, expected", [
    ("宁波的企业专利质押贷款有什么支持？", "", {"law", "zj", "nb", "odd"}),  # 宁波, 浙江, national; unknown place may apply
    ("专利质押贷款有什么支持？", "北京市", {"law", "bj", "odd"}),  # the asker's place when the question names none
    ("北京对专利质押有什么支持？", "宁波市", {"law", "bj", "odd"}),  # the question's place wins
    ("浙江有哪些专利政策？", "", {"law", "zj", "nb", "odd"}),  # a named province takes in its cities
    ("专利质押贷款有什么支持？", "", {d.doc_id for d in DOCS}),  # no place: everything
])
def test_the_place_selects_the_documents_that_apply(catalogue, places, question, region, expected):
    assert _admitted(question_scope(question, None, None, region, catalogue, places), catalogue) == expected


def test_a_place_only_national_documents_apply_to_gets_a_notice(places):
    only = Catalogue([DOCS[0], DOCS[2]], [])
    scope = question_scope("深圳的企业专利被侵权怎么赔？", None, None, "", only, places)
    assert scope.notices == [NOTICE_NATIONAL_ONLY.format(place="广东省深圳市")] and not scope.refusal
    none = Catalogue([DOCS[2]], [])
    scope = question_scope("杭州对专利质押贷款有没有贴息？", None, None, "", none, places)
    assert scope.refusal and scope.notices == [NOTICE_NO_PLACE.format(place="浙江省杭州市")]


@pytest.mark.parametrize("question, expected", [
    ("宁波市专利管理条例是哪年开始施行的？", ["nb"]),
    ("专利法规定的赔偿怎么算？", ["law"]),  # without 中华人民共和国
    ("南沙那个促进科技创新产业发展扶持办法还有效吗？", ["ns"]),  # the tail of a long title
    ("以前的浙江省专利保护条例还管用吗？", []),  # not in the base; 北京's 专利保护… is another place's
    ("专利质押有什么支持？", []),
])
def test_a_document_named_by_title(catalogue, places, question, expected):
    assert [d.doc_id for d in titled_documents(question, catalogue, places)] == expected


def test_a_follow_up_about_this_document_stays_with_the_last_answers(catalogue, places):
    history = [{"role": "user", "content": "宁波专利专项资金用来干什么？"},
               {"role": "assistant", "content": "用于资助。[1]\n\n来源：\n[1] 《宁波市专利管理条例》第1页"}]
    scope = question_scope("这份文件是哪个部门发的？", history, None, "", catalogue, places)
    assert scope.filters.files == ("nb",)
    conversation = question_scope("那这个扶持办法现在还有效吗？ 南沙贴息", None, None, "", catalogue, places,
                                  ("guide", "ns"), "那这个扶持办法现在还有效吗？")
    assert conversation.filters.files == ("ns",)  # of the conversation's documents, the one called 办法


def test_another_year_than_a_dated_document_covers(catalogue):
    guide = passage(1, "贷款日期在2017年1月1日之后。", doc_id="guide", title=DOCS[5].meta.title)
    law = passage(2, "专利权质押的，应当办理出质登记。", doc_id="law", title=DOCS[0].meta.title)
    assert off_year("南沙2020年度专利质押融资贴息什么时候受理？", [guide], catalogue) == ([], "2020")
    assert off_year("2017年度贴息什么时候受理？", [guide], catalogue) == ([guide], "")
    assert off_year("2020年专利质押要登记吗？", [law], catalogue) == ([law], "")  # a law applies in any year


def test_a_subject_no_passage_mentions_is_named(tokenizer, places):
    passages = [passage(1, "对专利质押融资给予贴息。")]
    assert unmentioned_terms("南沙有没有商标质押融资贴息？", passages, tokenizer, places) == ["商标质押"]
    assert unmentioned_terms("专利质押融资有贴息吗？", passages, tokenizer, places) == []


def test_a_citation_of_a_document_no_longer_in_force_gets_a_notice():
    def cite(title, profile):
        return Citation(n=1, text="…", title=title, doc_number=None, date=None, pages=[1], section=[], source="s",
                        chunk_id="c", sentences=[0], profile=profile)
    expired = cite("扶持办法", DocumentProfile(status="已过期", effective_until="2021-12-31"))
    superseded = cite("实施细则", DocumentProfile(status="已被取代"))
    current = cite("专利法", DocumentProfile(status="现行有效"))
    assert validity_notices([expired, superseded, current, expired]) == [
        "《扶持办法》有效期至2021年12月31日，可能已失效，请以最新文件为准。",
        "《实施细则》已被取代，可能已失效，请以最新文件为准。"]


@pytest.mark.parametrize("filters, expected", [
    (Filters(levels=("法律",)), {"law"}),
    (Filters(statuses=("已过期",)), {"ns"}),
    (Filters(region=("浙江省", "宁波市")), {"law", "zj", "nb", "odd"}),
    (Filters(region=("浙江省",)), {"law", "zj", "odd"}),  # the asker in 浙江: 宁波's rules do not apply to all of it
    (Filters(region=("浙江省",), within=True), {"law", "zj", "nb", "odd"}),
    (replace(Filters(region=("北京市",)), levels=("地方性法规",)), {"bj"}),
])
def test_profile_filters(filters, expected):
    assert {d.doc_id for d in DOCS if filters.admits(d)} == expected


def test_the_title_tail_length_is_the_tunings(catalogue, places):
    from kb.answer.tuning import Tuning

    question = "那个产业发展扶持办法还有效吗？"  # the last 8 characters of the 南沙 measures' title
    assert [d.doc_id for d in titled_documents(question, catalogue, places)] == ["ns"]
    assert titled_documents(question, catalogue, places, Tuning(title_tail=9)) == []


def _at(p, region: tuple[str, ...]):
    return replace(p, profile=DocumentProfile(region=region))


@pytest.mark.parametrize("city, province, expected", [
    (0.0, 0.0, ["law", "zj", "nb"]),  # no boost: the search's order
    (0.3, 0.1, ["nb", "law", "zj"]),  # the home city's passage first (0.8 × 1.3 > 1.0)
    (0.2, 0.1, ["law", "zj", "nb"]),  # 0.8 × 1.2 < 0.9 × 1.1 < 1.0: not that far
    (0.0, 0.3, ["zj", "law", "nb"]),  # the province's (0.9 × 1.3) over the national one
])
def test_home_first_ranks_the_home_citys_then_provinces_documents_first(city, province, expected):
    from kb.answer.scope import home_first
    from kb.answer.tuning import Tuning

    found = [_at(passage(1, score=1.0, doc_id="law"), ("全国",)), _at(passage(2, score=0.9, doc_id="zj"), ("浙江省",)),
             _at(passage(3, score=0.8, doc_id="nb"), ("浙江省", "宁波市"))]
    tuning = Tuning(home_city_boost=city, home_province_boost=province)
    assert [p.doc_id for p in home_first(found, ("浙江省", "宁波市"), tuning)] == expected


def test_this_reply_without_a_conversation_is_the_knowledge_bases_one_reply(places):
    from kb.answer.scope import only_document_called

    letter = _doc("letter", "关于市政协十五届三次会议第130号提案的答复", ("浙江省", "宁波市"), level="答复")
    one = Catalogue([*DOCS, letter], [])
    assert only_document_called("这份答复是哪个单位发出来的？", one).doc_id == "letter"
    assert only_document_called("这个回复函的文号是多少？", one).doc_id == "letter"
    assert only_document_called("这个文件是什么时候印发的？", one) is None  # any kind of document: not decided
    assert only_document_called("专利质押贷款出了坏账谁兜底？", one) is None
    two = Catalogue([*DOCS, letter, replace(letter, doc_id="letter2", file_name="letter2.md")], [])
    assert only_document_called("这份答复是哪个单位发出来的？", two) is None  # two replies: which one is not known
    scope = question_scope("这份答复是哪个单位发出来的？", None, None, "", one, places)
    assert scope.filters.files == ("letter",)
