"""Test sets: JSONL, one question per line (format in eval/testsets/README.md)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kb.core.errors import BadTestSetError


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    evidence: list[str] = field(default_factory=list)
    keypoints: list[str] = field(default_factory=list)
    kind: str = ""
    region: str = ""  # the asker's place, when the question leaves it to the conversation ("我们这边…")
    history: list[dict] = field(default_factory=list)  # earlier messages, for a follow-up


def read_text(path: Path) -> str:
    """A test set's text: UTF-8 (with or without BOM), else the Chinese encoding charset-normalizer finds
    (GBK, GB18030, Big5: files saved by Excel or Notepad), else refused with a reason in Chinese."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # a short file is ambiguous (cp874 fits as well as gb18030): the first Chinese candidate is taken
    for match in from_bytes(data):
        if match.encoding.lower().replace("-", "_") in ("gbk", "gb2312", "gb18030", "big5", "big5hkscs", "hz"):
            return str(match)
    raise BadTestSetError(f"{path}: 测试集不是 UTF-8 文本，也不是可识别的中文编码（GBK、GB18030、Big5），"
                          f"请另存为 UTF-8 编码的 JSONL 后再上传")


def load_testset(path: Path) -> list[Question]:
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            q = Question(id=str(raw["id"]), question=str(raw["question"]), answerable=bool(raw["answerable"]),
                         evidence=list(raw.get("evidence", [])), keypoints=list(raw.get("keypoints", [])),
                         kind=str(raw.get("kind", "")), region=str(raw.get("region") or ""),
                         history=list(raw.get("history") or []))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadTestSetError(f"{path}, line {number}: not a test-set question ({type(exc).__name__}: {exc})") from None
        if q.id in seen:
            raise BadTestSetError(f"{path}, line {number}: duplicate id {q.id!r}")
        if q.answerable and not q.evidence:
            raise BadTestSetError(f"{path}, line {number}: answerable question {q.id!r} has no evidence")
        seen.add(q.id)
        questions.append(q)
    if not questions:
        raise BadTestSetError(f"{path}: the test set is empty")
    return questions
