"""The service's curated answers (标准口径, kb/curated): listing with flags, adding (from a chat answer too),
editing, deleting, import and export, hit counts. A mixin of KnowledgeService, so the web layer still has one
door; writes need the admin password."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

from kb.core.errors import KbError
from kb.core.records import Answer
from kb.curated.exchange import check_quotes, read_entries, write_entries
from kb.curated.records import CuratedEntry, CuratedSource, DocumentFacts
from kb.curated.serve import MARK, CuratedAnswers
from kb.curated.sources import document_facts, entry_flags
from kb.curated.store import CuratedStore

_MARKERS = re.compile(r"\[\d+\]")


class CuratedDesk:
    """Mixed into KnowledgeService: needs `self.settings`, `self.kb_dir`, `self.answerer`, `self.check_admin`."""

    @property
    def curated_store(self) -> CuratedStore:
        store = getattr(self, "_curated_store", None)
        if store is None:
            store = self._curated_store = CuratedStore.of(self.kb_dir)
        return store

    def _today(self) -> str:
        return self.settings.answer.status_date or dt.date.today().isoformat()

    def _documents(self) -> dict[str, DocumentFacts]:
        curated: CuratedAnswers | None = getattr(self.answerer, "curated", None)
        if curated is not None:
            return curated.docs
        return document_facts(self.answerer.generation.catalogue.documents.values())

    def curated_entries(self) -> list[CuratedEntry]:
        """Every entry with its flags (待复核 reasons) against the current generation; flagged ones first."""
        docs, today = self._documents(), self._today()
        flagged = [replace(e, flags=entry_flags(e, docs, today)) for e in self.curated_store.entries()]
        return sorted(flagged, key=lambda e: (not e.flags, e.id))

    def curated_entry(self, entry_id: int) -> CuratedEntry | None:
        return next((e for e in self.curated_entries() if e.id == entry_id), None)

    def _checked(self, entry: CuratedEntry) -> CuratedEntry:
        if problems := check_quotes(entry, self._documents()):
            raise KbError("；".join(problems))
        return entry

    def save_curated(self, password: str, data: dict, entry_id: int = 0, client: str = "") -> int:
        """Add (entry_id 0) or replace an entry from its JSON shape ({question, variants, answer, sources:
        [{file, quote}], approved_by, approved_at?, review_date?}); its id. Quotes must be in the documents."""
        from kb.curated.exchange import entry_from_json

        self.check_admin(password, client)
        entry = self._checked(entry_from_json(data, self._today()))
        if entry_id:
            self.curated_store.update(replace(entry, id=entry_id))
            return entry_id
        return self.curated_store.add(entry)

    def delete_curated(self, password: str, entry_id: int, client: str = "") -> bool:
        self.check_admin(password, client)
        return self.curated_store.delete(entry_id)

    def import_curated(self, password: str, path: Path, client: str = "") -> list[int]:
        """A JSONL or .xlsx file of entries: all imported, or none (KbError naming each bad line)."""
        self.check_admin(password, client)
        return self.curated_store.add_many(read_entries(path, self._documents(), self._today()))

    def export_curated(self, path: Path) -> Path:
        write_entries(self.curated_store.entries(), path)
        return path

    def curated_draft(self, answer: Answer | dict) -> dict:
        """An entry pre-filled from a chat answer (the Answer, or its JSON): its question, its text without
        [n] markers, and the sentences its citations rest on as the sources (approver left to the admin)."""
        data = answer.to_json() if isinstance(answer, Answer) else answer
        body = data.get("body") or ""
        if body.startswith(MARK):  # an answer that was a curated one: the passages' part
            body = body.split("\n\n以下为知识库相关内容：\n")[-1] if "以下为知识库相关内容" in body else ""
        sources = []
        for c in data.get("citations") or []:
            text = c.get("text") or ""
            quote = "".join(text[s:e] for s, e in c.get("spans") or []).strip() or text.strip()
            sources.append(CuratedSource.make(c.get("source") or "", quote).to_json())
        return {"question": data.get("standalone_question") or data.get("question") or "", "variants": [],
                "answer": _MARKERS.sub("", body).strip(), "sources": sources, "approved_by": "",
                "approved_at": self._today(), "review_date": ""}

    def count_served(self, answer: Answer) -> None:
        """Hit tracking: the curated entry an answer gave and the documents it cited."""
        files = [c.source for c in answer.citations]
        if answer.curated is not None or files:
            try:
                self.curated_store.count_hit(answer.curated.id if answer.curated else None, files)
            except Exception:  # noqa: BLE001 - counting never fails an answer
                pass

    def document_hits(self) -> dict[str, int]:
        return self.curated_store.document_hits()


class GapDesk:
    """Mixed into KnowledgeService: the knowledge-gap log (kb/curated/gaps.py) and its report."""

    @property
    def gap_log(self):
        from kb.curated.gaps import GapLog

        log = getattr(self, "_gap_log", None)
        if log is None:
            log = self._gap_log = GapLog.of(self.kb_dir)
        return log

    def log_gap(self, answer: Answer) -> None:
        """An answer refused, or below the confidence floor, goes into the log: the question only."""
        from kb.curated.gaps import LOW_CONFIDENCE, REFUSED

        if answer.curated is not None or not answer.question:
            return
        low = answer.confidence is not None and answer.confidence < self.settings.answer.gap_min_confidence
        if answer.refused or low:
            try:
                self.gap_log.record(answer.question, REFUSED if answer.refused else LOW_CONFIDENCE, answer.confidence)
            except Exception:  # noqa: BLE001 - the log never fails an answer
                pass

    def log_vote_down(self, question: str) -> None:
        from kb.curated.gaps import VOTED_DOWN

        self.gap_log.record(question, VOTED_DOWN)

    def gap_report(self, password: str, client: str = ""):
        """The groups (biggest first), each with the closest passages' sources; what is older than
        `gap_retention_days` is deleted first."""
        from kb.core.citations import source_line
        from kb.curated.gaps import group_questions

        self.check_admin(password, client)
        self.gap_log.purge(self.settings.answer.gap_retention_days)
        embedder = self.generation.models.embedder
        groups = group_questions(self.gap_log.questions(), lambda texts: _stack(embedder, texts))
        for group in groups:
            group.passages = [f"{source_line(p)}：{p.text[:80]}" for p in self.search(group.representative, k=3)]
        return groups

    def gap_draft(self, group) -> dict:
        """A curated entry drafted from a gap group: its questions, and the closest passage to start from."""
        passages = self.search(group.representative, k=1)
        sources = [CuratedSource.make(p.source, p.text[p.sentence_spans[0][0]:p.sentence_spans[0][1]]
                                      if p.sentence_spans else p.text).to_json() for p in passages]
        return {"question": group.representative, "variants": [e for e in group.examples if e != group.representative][:10],
                "answer": "", "sources": sources, "approved_by": "", "approved_at": self._today(), "review_date": ""}


def _stack(embedder, texts: list[str]):
    import numpy as np

    return np.stack([np.asarray(embedder.encode_query(t)) for t in texts])
