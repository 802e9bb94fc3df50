"""Metadata filters of a search: document type, issuer, date range, file; level, status, and the
asker's place (documents that apply there: its own, those of the areas above it, national ones)."""
from __future__ import annotations

from dataclasses import dataclass

from kb.core.places import covers
from kb.core.records import Document


@dataclass(frozen=True)
class Filters:
    """Metadata filters; empty fields do not filter. Dates are ISO yyyy-mm-dd (a prefix such as 2019 works)."""

    doc_types: tuple[str, ...] = ()  # 答复, 办法, 措施, …
    issuers: tuple[str, ...] = ()  # 发文机关, matched as a substring
    date_from: str | None = None
    date_to: str | None = None
    files: tuple[str, ...] = ()  # file names or document ids
    levels: tuple[str, ...] = ()  # 法律, 行政法规, 地方性法规, 规范性文件, 答复, 办事指南, …
    statuses: tuple[str, ...] = ()  # 现行有效, 已过期, 已被取代, 已废止, 尚未施行, 未知
    region: tuple[str, ...] = ()  # the asker's place, e.g. ("浙江省", "宁波市"): documents that apply there
    # (and those whose place is unknown: they may)
    within: bool = False  # also the documents of places inside `region` (a question about 浙江: 宁波's too)

    def admits(self, doc: Document) -> bool:
        profile = doc.profile
        if self.levels and profile.level not in self.levels:
            return False
        if self.statuses and profile.status not in self.statuses:
            return False
        if self.region and profile.region and not covers(profile.region, self.region) and not (
                self.within and profile.region[: len(self.region)] == self.region):
            return False  # a document whose place is unknown may apply: it stays
        meta = doc.meta
        if self.doc_types and meta.doc_type not in self.doc_types:
            return False
        if self.issuers and not any(i in (meta.issuer or "") for i in self.issuers):
            return False
        if (self.date_from or self.date_to) and not meta.date:
            return False
        if self.date_from and meta.date < self.date_from:
            return False
        if self.date_to and meta.date[: len(self.date_to)] > self.date_to:
            return False
        if self.files and doc.file_name not in self.files and doc.doc_id not in self.files:
            return False
        return True

    @property
    def empty(self) -> bool:
        return self == Filters()
