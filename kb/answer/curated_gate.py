"""Whether a curated entry can answer a question at all, whatever their e5 similarity: the question asks
for a kind of fact the entry holds (a date is not an amount), and names no IP object or place the entry
does not ("假冒注册商标" is not "假冒专利"; 南沙 is not 宁波). Pure but for the tokenizer's place tagger."""
from __future__ import annotations

import re
from collections.abc import Callable

from kb.answer.intent import VALUE_PATTERNS, analyse
from kb.curated.records import CuratedEntry

# kinds of fact a question may want that an entry must hold (in its own questions or its answer)
_SPECIFIC = frozenset({"phone", "ratio", "money", "duration", "date", "count", "steps"})
# the objects of IP law: a question about one is not answered by an entry about another
_OBJECTS = {"专利": re.compile(r"专利|发明|实用新型|外观设计"), "商标": re.compile(r"商标"),
            "著作权": re.compile(r"著作权|版权|作品|软件"), "地理标志": re.compile(r"地理标志"),
            "商业秘密": re.compile(r"商业秘密"), "集成电路": re.compile(r"集成电路|布图设计"),
            "植物新品种": re.compile(r"植物新品种")}


# what a question may ask for beyond intent.py's kinds, and that an entry must speak of: which papers to hand
# in, where to go ("贴息需要什么申请表？" is not "贴息标准是多少？", though e5 puts them at 0.98)
_MORE_ASKS = {"materials": re.compile(r"材料|申请表|表格|提交什么|提交哪些|需要什么"),
              "where": re.compile(r"哪里|哪儿|去哪|什么地方|哪个部门|什么部门|窗口|地址")}


def _more(text: str) -> set[str]:
    return {name for name, pattern in _MORE_ASKS.items() if pattern.search(text)}


def _objects(text: str) -> set[str]:
    return {name for name, pattern in _OBJECTS.items() if pattern.search(text)}


def _held(entry: CuratedEntry) -> set[str]:
    kinds = {k for q in entry.questions for k in analyse(q).asks}
    kinds |= {k for k, pattern in VALUE_PATTERNS.items() if pattern.search(entry.answer)}
    if "list" in kinds:  # materials and steps are answered by a list
        kinds.add("steps")
    return kinds


def curated_gate(places: Callable[[str], list[str]]) -> Callable[[str, CuratedEntry], bool]:
    """compatible(question, entry) for kb/curated/matcher.py; `places(text)`: the place names in a text."""
    def compatible(question: str, entry: CuratedEntry) -> bool:
        text = "".join(entry.questions) + entry.answer
        wanted = analyse(question).asks & _SPECIFIC
        return (not wanted - _held(entry) and not _more(question) - _more(text)
                and not _objects(question) - _objects(text)
                and not set(places(question)) - set(places(text)))

    return compatible
