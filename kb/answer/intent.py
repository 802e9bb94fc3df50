"""What a question asks for, and how to resolve a follow-up against the conversation. Pure.

`analyse` finds the kinds of fact a question wants (a number, an amount of money, a
ratio, a date, a duration, a count, a phone number, a list, steps or materials, a name, a yes
or no) and
whether it asks about the document itself (发文机关, 文号, 成文日期…). `VALUE_PATTERNS`
recognise those facts in a sentence; the extractive answerer refuses when the asked-for
fact is nowhere in the passages that match the question.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.answer.tuning import Tuning
from kb.core.text import message_text

_NUM = r"[0-9０-９]+(?:\.[0-9]+)?|[一二三四五六七八九十百千万两半]+"

# A sentence holds a fact of this kind when the pattern matches it.
VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "money": re.compile(rf"(?:{_NUM})\s*(?:亿|万|千)?\s*元|(?:{_NUM})\s*(?:亿|万)(?!条|人|件|项|户|家)"),
    "ratio": re.compile(rf"(?:{_NUM})\s*[%％‰]|百分之|(?:{_NUM})\s*成(?!立|果|员|本|为|功)|(?:{_NUM})\s*倍"),
    # a calendar date, or the event a time is counted from, as laws state it: "质权自办理出质登记时设立",
    # "自公告之日起", "转让自登记之日起生效" (the answer to "从什么时候起…")
    "date": re.compile(r"[0-9]{4}\s*年(?:\s*[0-9]{1,2}\s*月)?|[0-9]{1,2}\s*月\s*[0-9]{1,2}\s*日|[0-9]{4}[-/.][0-9]{1,2}"
                       r"|自[^，。；：]{1,40}?(?:之日|时)(?:起)?|[^，。；：]{2,30}?之日起"),
    # (a four-digit year, "2017年度", is a date, not a duration)
    "duration": re.compile(rf"(?<![0-9０-９])(?:[0-9０-９]{{1,3}}(?:\.[0-9]{{1,2}})?(?![0-9])|[一二三四五六七八九十百千万两半]+)\s*"
                           r"(?:年|个月|月|周|天|日|个工作日|小时)(?:内|以内|时间)?"),
    "count": re.compile(rf"(?:{_NUM})\s*(?:余)?\s*(?:家|个|项|件|份|人|名|次|条|篇|场|所|批|类|种|户|位|亿条|多家|多个)"),
    "phone": re.compile(r"(?:\d{3,4}-)?\d{7,8}|1\d{10}"),
    "number": re.compile(rf"[0-9０-９]|(?:{_NUM})\s*(?:家|个|项|件|人|名|次|条|篇|年|月|天|元|成|倍)"),
    # an enumeration: "行业龙头企业、单项冠军企业", items after "；", numbered items
    "list": re.compile(r"[^、，。；;\s]、[^、，。；;\s]|[；;]\s*\S|(?:^|\n)\s*(?:[0-9]+[.．、]|[（(][0-9一二三四五六七八九十]+[）)]|[一二三四五六七八九十]+、)"),
}

# (kind, pattern in the question). Order matters only for readability; a question may ask several.
_ASKS: list[tuple[str, re.Pattern[str]]] = [
    ("phone", re.compile(r"电话|手机号|联系方式|热线")),
    ("ratio", re.compile(r"比例|百分之|几成|多少成|百分比|占比|比率|贴息率|费率|几个点|多少个点|百分点|增长多少|涨了?多少|降了?多少")),
    ("money", re.compile(r"多少钱|金额|多少(?:亿|万|千)?元|多少亿|多少万|几万|几亿|多大额度|额度|资助多少|补贴多少|补助多少|奖励多少|"
                         r"贷到了?多少|补多少|给多少|拿多少|标准是多少|规模多大|总共有多少钱")),
    ("duration", re.compile(r"多久|多长时间|几年|几个月|几天|期限|有效期|多少(?:天|日|年|个月|个工作日)")),
    ("date", re.compile(r"哪一?天|何时|什么时候|哪一?年|几月|日期|截止|几号(?:发|出|施行|开始)")),
    ("count", re.compile(r"几家|多少家|几个(?!点)|多少个(?!点)|几项|多少项|多少件|几件|几份|多少份|多少人|几位|多少条|几批|多少篇|几篇|多少次")),
    ("number", re.compile(r"多少|几")),
    ("yesno", re.compile(r"是否|能不能|能否|可不可以|可以吗|有没有|有无|会不会|算不算|是不是|吗[？?]?$|么[？?]?$")),
    ("list", re.compile(r"哪些|有什么|有啥|包括|都有|哪几")),
    # materials, procedures, conditions: answered by a list or a sequence of steps, quoted whole
    # ("要交什么证明": the materials, by another name)
    ("steps", re.compile(r"材料|流程|程序|手续|步骤|(?:怎么|如何|怎样)(?:办理|申请|申报|走)|条件|(?:交|提交|提供|附)(?:什么|哪些)证明")),
    ("name", re.compile(r"谁|哪位|哪个|哪家|哪所|什么名|叫什么|题目|名称")),
]

# Questions about the document itself, answered from its metadata: (field, pattern).
_DOCUMENT_REF = r"(?:这份|这个|这封|该|本|此|那份|那个)?(?:答复|文件|回复函?|函|通知|办法|文|回复)"
_DOCUMENT_WORD = r"(?:办法|条例|法|文件|规定|政策|细则|指南|措施|通知|意见|答复)"
_META_ASKS: list[tuple[str, re.Pattern[str]]] = [
    # in force since when, until when, still in force: from the document's profile
    ("validity", re.compile(r"(?:什么时候|何时|哪天|哪一天|哪一?年|几月几[日号]|从哪天|啥时候)(?:开始|起)?(?:施行|生效|实施)"
                            r"|施行日期|生效日期|(?:从|自)什么时候起(?:施行|生效)"
                            rf"|{_DOCUMENT_WORD}.{{0,6}}(?:还|是否|现在|目前|仍然?)(?:还)?(?:有效|管用|适用|在用)"
                            rf"|{_DOCUMENT_WORD}.{{0,6}}(?:有效期|失效|废止|过期)")),
    ("doc_number", re.compile(r"文号|发文字号|字号")),
    ("printed_date", re.compile(r"印发")),
    ("cc", re.compile(r"抄送")),
    ("contact", re.compile(r"联系人|联系电话|(?:打|找)(?:谁|哪个)|电话多少")),
    ("date", re.compile(r"落款|成文日期|签发日期|(?:答复|文件|函)(?:是)?(?:哪一?天|什么时候)(?:写|发|出)")),
    ("issuer", re.compile(rf"{_DOCUMENT_REF}.{{0,6}}(?:哪个|哪家|什么)(?:单位|部门|机关|机构)|谁发|哪个部门发|发文机关|发文单位")),
    ("addressee", re.compile(r"(?:委员|提案人|代表)(?:是)?(?:哪位|谁)|(?:哪位|谁)(?:提的|提出)|主送|答复(?:给)?谁")),
]

_FOLLOW_UP = re.compile(r"^(?:那|那么|那这个|这个|那个|该|它|其|还有|另外|此外)|呢[？?]?$|^(?:这|那)(?:份|个|些)")


@dataclass(frozen=True)
class Intent:
    asks: frozenset[str] = field(default_factory=frozenset)  # kinds from _ASKS
    metadata: str | None = None  # a DocumentMeta field the question asks for

    @property
    def wants_value(self) -> list[str]:
        """Kinds of fact that must appear in the answer, most specific first."""
        order = ["phone", "ratio", "money", "duration", "date", "count"]
        specific = [k for k in order if k in self.asks]
        if specific:
            return specific
        return ["number"] if "number" in self.asks else []


# "奖金最少发多少", "罚款最高罚多少": a sum named by what it pays, the figure asked a few characters on
# (money unless a ratio is asked: "贴息比例是多少" wants the percentage)
_MONEY_NOUN = re.compile(r"(?:奖金|奖励金|补贴|补助|资助|罚款|贴息金额|赔偿金?|钱)[^，。？?！!、]{0,6}?(?:多少|几[万千百])")


def analyse(question: str) -> Intent:
    text = question.strip()
    asks = frozenset(kind for kind, pattern in _ASKS if pattern.search(text))
    if "ratio" not in asks and _MONEY_NOUN.search(text):
        asks |= {"money"}
    metadata = next((name for name, pattern in _META_ASKS if pattern.search(text)), None)
    if metadata == "date" and not re.search(_DOCUMENT_REF + "|落款|成文", text):
        metadata = None
    return Intent(asks, metadata)


def has_value(sentence: str, kind: str) -> bool:
    return bool(VALUE_PATTERNS[kind].search(sentence))


def is_follow_up(question: str, content_terms: int, tuning: Tuning = Tuning()) -> bool:
    """A short or elliptical question ("那保险呢？", "这个文件是哪个部门发的？") that leans on the last one:
    `content_terms` is its number of tokens; at most `tuning.follow_up_max_terms` is short."""
    return bool(_FOLLOW_UP.search(question.strip())) or content_terms <= tuning.follow_up_max_terms


def last_user_question(history: list[dict] | None) -> str | None:
    """The previous question in a Gradio/OpenAI-style message list ({"role", "content"})."""
    for message in reversed(history or []):
        if message.get("role") == "user":
            content = message_text(message.get("content")).strip()
            if content:
                return content
    return None
