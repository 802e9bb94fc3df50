"""Metadata filters of a search: document type, issuer, date range, file."""
from __future__ import annotations

from dataclasses import dataclass

from kb.core.records import Document


@dataclass(frozen=True)
class Filters:
    """Metadata filters; empty fields do not filter. Dates are ISO yyyy-mm-dd (a prefix such as 2019 works)."""

    doc_types: tuple[str, ...] = ()  # 答复, 办法, 措施, …
    issuers: tuple[str, ...] = ()  # 发文机关, matched as a substring
    date_from: str | None = None
    date_to: str | None = None
    files: tuple[str, ...] = ()  # file names or document ids

    def admits(self, doc: Document) -> bool:
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
