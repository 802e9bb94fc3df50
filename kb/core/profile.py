"""The profile of one knowledge-base document: its level, region, dates and status.

Plain data only: no I/O, no parsing (that is in ingest.profile), no place library.
A value that is not known stays None (dates) or empty (region): nothing is guessed.

Dates are ISO strings ``yyyy-mm-dd``:

- ``promulgated``: 公布 (for an official letter without a 公布 line: its 成文日期, the date it is signed);
- ``adopted``: the first 通过 (the original adoption, not the adoption of a later amendment);
- ``amended``: the latest 修订 or 修正;
- ``effective_from``: 施行 as the header states it; else as the text states it ("本条例自2016年1月1日起施行"),
  except that an amended version whose text still says "本法自1985年4月1日起施行" (the first version's
  date) is not in force before its own latest 修订/修正: that date then;
- ``effective_until``: the last day the document is in force (inclusive), when the document
  says so ("有效期5年", "有效期至…", "自…起施行…至…止").

``status`` is computed as of a date by ``ingest.profile.resolve_statuses``; a freshly made profile
carries ``STATUS_UNKNOWN``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

# ---- levels (效力层级), highest first
LEVEL_LAW = "法律"
LEVEL_ADMIN_REGULATION = "行政法规"
LEVEL_JUDICIAL_INTERPRETATION = "司法解释"
LEVEL_LOCAL_REGULATION = "地方性法规"
LEVEL_RULE = "规章"
LEVEL_NORMATIVE = "规范性文件"
LEVEL_REPLY = "答复"
LEVEL_GUIDE = "办事指南"
LEVEL_OTHER = "其他"
LEVELS: tuple[str, ...] = (
    LEVEL_LAW,
    LEVEL_ADMIN_REGULATION,
    LEVEL_JUDICIAL_INTERPRETATION,
    LEVEL_LOCAL_REGULATION,
    LEVEL_RULE,
    LEVEL_NORMATIVE,
    LEVEL_REPLY,
    LEVEL_GUIDE,
    LEVEL_OTHER,
)

# ---- statuses as of a date
STATUS_IN_FORCE = "现行有效"
STATUS_EXPIRED = "已过期"  # effective_until < as_of
STATUS_SUPERSEDED = "已被取代"  # a later version of the same title is in the knowledge base
STATUS_ABOLISHED = "已废止"  # another document in the knowledge base abolishes it
# effective_from > as_of: not in the list, added so that such a document is not called 现行有效
STATUS_NOT_YET = "尚未施行"
STATUS_UNKNOWN = "未知"  # no 施行 date known: never guessed
STATUSES: tuple[str, ...] = (
    STATUS_IN_FORCE,
    STATUS_EXPIRED,
    STATUS_SUPERSEDED,
    STATUS_ABOLISHED,
    STATUS_NOT_YET,
    STATUS_UNKNOWN,
)

NATIONAL = "全国"  # region ("全国",): applies everywhere
DATE_FIELDS: tuple[str, ...] = ("promulgated", "adopted", "amended", "effective_from", "effective_until")


@dataclass(frozen=True)
class DocumentProfile:
    """What a document is and where and when it applies."""

    level: str = LEVEL_OTHER
    region: tuple[str, ...] = ()  # ("全国",), ("浙江省", "宁波市"), ("广东省", "广州市", "南沙区"); () = unknown
    promulgated: str | None = None
    adopted: str | None = None
    amended: str | None = None
    effective_from: str | None = None
    effective_until: str | None = None
    status: str = STATUS_UNKNOWN
    abolishes: tuple[str, ...] = ()  # titles this document declares abolished ("《…》同时废止")

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown level {self.level!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        # lists from JSON become tuples, so that the profile stays hashable and immutable
        object.__setattr__(self, "region", tuple(self.region))
        object.__setattr__(self, "abolishes", tuple(self.abolishes))

    @property
    def version_date(self) -> str | None:
        """The date that orders versions of one title: the latest date the document states
        (promulgated, adopted, amended or effective_from); None when it states none."""
        dates = [d for d in (self.promulgated, self.adopted, self.amended, self.effective_from) if d]
        return max(dates) if dates else None

    def to_json(self) -> dict:
        data = asdict(self)
        data["region"] = list(self.region)
        data["abolishes"] = list(self.abolishes)
        return data

    @classmethod
    def from_json(cls, data: dict) -> DocumentProfile:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
