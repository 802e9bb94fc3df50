"""Question analysis (kb/answer/intent.py), table-driven: what a colloquial question asks for, which
sentences hold that kind of fact, follow-ups, the previous question in a chat history. Pure: no
tokenizer, no embedder, no knowledge base."""
from __future__ import annotations

import pytest

from kb.answer.intent import VALUE_PATTERNS, analyse, has_value, is_follow_up, last_user_question
from kb.answer.tuning import Tuning

# question -> (kinds asked, kinds of fact the answer must state, the document field asked for)
QUESTIONS = [
    ("贴息比例是多少？", {"ratio", "number"}, ["ratio"], None),
    ("补贴能给几成？", {"ratio", "number"}, ["ratio"], None),
    ("补贴几个点？", {"ratio", "number"}, ["ratio"], None),
    ("保费补贴最高多少钱？", {"money", "number"}, ["money"], None),
    ("贷款期限多久？", {"duration"}, ["duration"], None),
    ("什么时候截止？", {"date"}, ["date"], None),
    ("哪一年出台的政策？", {"date"}, ["date"], None),
    ("有几家企业拿到了贷款？", {"count", "number"}, ["count"], None),
    ("咨询电话是多少？", {"phone", "number"}, ["phone"], None),
    ("政府重点培育了几家运营机构，培育多久？", {"count", "duration", "number"}, ["duration", "count"], None),
    ("有没有保险？", {"yesno"}, [], None),
    ("发明专利被侵权有保险吗？", {"yesno"}, [], None),
    ("宁波有哪些知识产权联盟？", {"list"}, [], None),
    ("专利质押贷款出了坏账谁兜底？", {"name"}, [], None),
    ("那保险呢？", set(), [], None),
    ("今天天气怎么样？", set(), [], None),
    # about the document itself: answered from its metadata
    ("这份答复的文号是多少？", {"number"}, ["number"], "doc_number"),
    ("这个回复函的文号是多少？", {"number"}, ["number"], "doc_number"),
    ("这份答复是哪个单位发出来的？", {"name"}, [], "issuer"),
    ("这封答复落款是哪一天？", {"date"}, ["date"], "date"),
    ("这个文件是哪一天发的？", {"date"}, ["date"], "date"),
    ("印发日期是哪天？", {"date"}, ["date"], "printed_date"),
    ("这个文件抄送给了谁？", {"name"}, [], "cc"),
    ("联系人是谁？", {"name"}, [], "contact"),
    # a date of something else than the document is not the document's date
    ("政策什么时候发布的？", {"date"}, ["date"], None),
    # a sum named by what it pays, asked a few characters on: money, not any number
    ("员工发明专利授权后奖金最少发多少、多久内发？", {"money", "duration", "number"}, ["money", "duration"], None),
    ("假冒专利罚款最高罚多少？", {"money", "number"}, ["money"], None),
    ("贴息比例是多少？", {"ratio", "number"}, ["ratio"], None),  # a ratio asked: not money
    ("单位应当在多少天内发奖金？", {"duration", "number"}, ["duration"], None),
    ("专利权质押的质权从什么时候起设立？", {"date"}, ["date"], None),
    # the materials by another name; proving something is no procedure
    ("申请布图设计专有权奖励，要交什么证明？", {"steps"}, [], None),
    ("怎么证明对方侵权？", set(), [], None),
]


@pytest.mark.parametrize("question, asks, wants, metadata", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_analyse(question, asks, wants, metadata):
    intent = analyse(question)
    assert intent.asks == asks
    assert intent.wants_value == wants
    assert intent.metadata == metadata


def test_analyse_ignores_surrounding_space():
    assert analyse("  贴息比例是多少？ \n") == analyse("贴息比例是多少？")


# sentence -> every kind of fact it holds
SENTENCES = [
    ("按实际缴纳保费的60%给予补贴。", {"ratio", "number"}),
    ("贴息比例为三成", {"ratio", "number"}),
    ("每家企业每年最高补贴12万元。", {"money", "number"}),
    ("贷款规模达5亿", {"money", "number"}),
    ("数据达5亿条", {"count", "number"}),  # 亿条 counts records, it is no sum of money
    ("已有2家企业获得贷款。", {"count", "number"}),
    ("出台了三项措施", {"count", "number"}),
    ("培育期为三年。", {"duration", "number"}),
    ("2019年7月22日", {"date", "duration", "number"}),
    ("企业应于每年3月31日前提交申请。", {"date", "duration", "number"}),
    ("联系电话：87189123", {"phone", "number"}),
    # the event a time is counted from, as laws state it, answers "从什么时候起"
    ("质权自办理出质登记时设立。", {"date"}),
    ("转让自登记之日起生效。", {"date"}),
    ("商标局应当自收到申请之日起九个月内做出决定。", {"date", "duration", "count", "number"}),
    ("同时予以公告。", set()),
    ("风险池基金为专利质押贷款兜底。", set()),
    ("成立了宁波市知识产权学院。", set()),  # 成立 is no ratio
    ("推动成果转化", set()),
]


@pytest.mark.parametrize("sentence, kinds", SENTENCES, ids=[s[0] for s in SENTENCES])
def test_has_value(sentence, kinds):
    assert {kind for kind in VALUE_PATTERNS if has_value(sentence, kind)} == kinds


# question, its number of content terms (tokens), whether it leans on the previous question
FOLLOW_UPS = [
    ("那保险呢？", 1, True),
    ("那么贴息呢", 1, True),
    ("这个文件是哪个部门发的？", 4, True),
    ("还有别的补贴吗？", 2, True),
    ("保险？", 1, True),  # one term: too short to stand alone
    ("保险", 0, True),
    ("专利保险有补贴吗？", 4, False),
    ("发明专利被侵权有保险吗？", 5, False),
    ("宁波有哪些知识产权联盟？", 6, False),
]


@pytest.mark.parametrize("question, terms, follow_up", FOLLOW_UPS, ids=[f[0] for f in FOLLOW_UPS])
def test_is_follow_up(question, terms, follow_up):
    assert is_follow_up(question, terms) is follow_up


@pytest.mark.parametrize("max_terms, follow_up", [(1, False), (2, True), (3, True)])
def test_a_short_question_is_a_follow_up_up_to_follow_up_max_terms(max_terms, follow_up):
    """"专利保险" has 2 content terms (专利, 保险; 专利保险 too, but it is one word): the boundary is there."""
    assert is_follow_up("专利保险", 2, Tuning(follow_up_max_terms=max_terms)) is follow_up


def _parts(*texts: str) -> list[dict]:
    """Gradio 6 / OpenAI content parts."""
    return [{"type": "text", "text": t} for t in texts]


HISTORIES = [
    ("no history", None, None),
    ("empty", [], None),
    ("plain strings", [{"role": "user", "content": "专利质押贷款出了坏账谁兜底？"},
                       {"role": "assistant", "content": "风险池基金。[1]"}], "专利质押贷款出了坏账谁兜底？"),
    ("the last user message", [{"role": "user", "content": "第一问"}, {"role": "assistant", "content": "答"},
                               {"role": "user", "content": "第二问"}], "第二问"),
    ("content parts", [{"role": "user", "content": _parts("专利质押贷款出了坏账谁兜底？")}],
     "专利质押贷款出了坏账谁兜底？"),
    ("several parts joined", [{"role": "user", "content": _parts("专利质押", "坏账谁兜底？")}], "专利质押 坏账谁兜底？"),
    ("a file part only is skipped", [{"role": "user", "content": "有没有保险？"},
                                     {"role": "user", "content": [{"type": "file", "file": {"path": "/tmp/a.pdf"}}]}],
     "有没有保险？"),
    ("blank messages are skipped", [{"role": "user", "content": "有没有保险？"}, {"role": "user", "content": "  \n"},
                                    {"role": "user", "content": None}], "有没有保险？"),
    ("assistant only", [{"role": "assistant", "content": "您好，请问有什么可以帮您？"}], None),
    ("no role", [{"content": "有没有保险？"}], None),
    ("space trimmed", [{"role": "user", "content": _parts("  有没有保险？ ")}], "有没有保险？"),
]


@pytest.mark.parametrize("history, expected", [h[1:] for h in HISTORIES], ids=[h[0] for h in HISTORIES])
def test_last_user_question(history, expected):
    assert last_user_question(history) == expected


@pytest.mark.parametrize("sentence, listed", [
    ("着重对行业龙头企业、单项冠军企业等重点企业开展培训。", True), ("材料如下：申请表；营业执照复印件。", True),
    ("申请材料：\n1. 申请表\n2. 营业执照", True), ("提升重点企业专利保护和应用水平。", False),
    ("按企业实际缴纳保费的60%给予补贴，每年最高12万元。", False)])
def test_an_enumeration_is_recognised(sentence, listed):
    from kb.answer.intent import has_value

    assert has_value(sentence, "list") is listed
