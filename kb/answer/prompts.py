"""Prompt texts from the prompts folder (prompts/README.md), read once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kb.core.errors import KbError

_FILES = ("system", "answer", "answer_json", "condense", "refusal")
# The refusal's {bureau} and {hotline} when the settings (bureau_name, hotline) leave them empty.
NEUTRAL_BUREAU = "当地知识产权管理部门"
NEUTRAL_HOTLINE = "12345政务服务热线"


@dataclass(frozen=True)
class Prompts:
    system: str
    answer: str
    answer_json: str  # the answer prompt when the server returns structured (JSON-schema) answers
    condense: str
    refusal: str

    @classmethod
    def load(cls, folder: Path, bureau: str = "", hotline: str = "") -> Prompts:
        """The prompt files; the refusal's {bureau} and {hotline} filled in (neutral when empty)."""
        texts = {}
        for name in _FILES:
            path = folder / f"{name}.txt"
            try:
                texts[name] = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise KbError(f"prompt file {path} unreadable ({exc.strerror}): set prompts_dir to the prompts folder")
        texts["refusal"] = (texts["refusal"].replace("{bureau}", bureau.strip() or NEUTRAL_BUREAU)
                            .replace("{hotline}", hotline.strip() or NEUTRAL_HOTLINE))
        return cls(**texts)
