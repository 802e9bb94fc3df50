"""Curated entries in and out: JSONL (one entry a line) and an Excel sheet (openpyxl), the format bureaus
keep such lists in. Export then import gives the same entries back, exactly. An import is checked against
the knowledge base: a quote not found in the named document is refused with its line (row) number."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

from kb.core.errors import KbError
from kb.curated.records import CuratedEntry, CuratedSource, DocumentFacts, squeeze

SHEET = "标准口径"
COLUMNS = ("问题", "其他问法", "标准答复", "依据文件", "依据原文", "审定人", "审定日期", "复核日期")


def entry_from_json(raw: dict, today: str) -> CuratedEntry:
    """One import line → an entry (KbError saying what is wrong)."""
    if not isinstance(raw, dict):
        raise KbError("not a JSON object")
    sources = raw.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        raise KbError('"sources" must be a list of {"file", "quote"}')
    variants = raw.get("variants") or []
    if isinstance(variants, str):
        variants = [variants]
    entry = CuratedEntry(
        question=str(raw.get("question") or "").strip(), answer=str(raw.get("answer") or "").strip(),
        variants=tuple(str(v).strip() for v in variants if str(v).strip()),
        sources=tuple(CuratedSource.make(str(s.get("file") or ""), str(s.get("quote") or "")) for s in sources),
        approved_by=str(raw.get("approved_by") or "").strip(),
        approved_at=str(raw.get("approved_at") or today).strip()[:10], review_date=str(raw.get("review_date") or "").strip()[:10])
    missing = [k for k in ("question", "answer", "approved_by") if not getattr(entry, k)]
    if not entry.sources:
        missing.append("sources")
    if missing:
        raise KbError(f"missing {', '.join(missing)}")
    for date in filter(None, (entry.approved_at, entry.review_date)):
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            raise KbError(f"not a date (yyyy-mm-dd): {date}") from None
    return entry


def check_quotes(entry: CuratedEntry, docs: Mapping[str, DocumentFacts]) -> list[str]:
    """What is wrong with the entry's sources in this knowledge base (empty: all found)."""
    problems = []
    for source in entry.sources:
        doc = docs.get(source.file)
        if doc is None:
            problems.append(f"no document named {source.file} in the knowledge base")
        elif not source.quote or squeeze(source.quote) not in doc.text:
            problems.append(f"quote not found in {source.file}: {source.quote[:40]}")
    return problems


def _checked(rows: list[tuple[int, dict | Exception]], docs: Mapping[str, DocumentFacts], today: str,
             what: str) -> list[CuratedEntry]:
    entries, errors = [], []
    for number, raw in rows:
        try:
            if isinstance(raw, Exception):
                raise KbError(str(raw))
            entry = entry_from_json(raw, today)
            problems = check_quotes(entry, docs)
            if problems:
                raise KbError("; ".join(problems))
            entries.append(entry)
        except KbError as exc:
            errors.append(f"{what} {number}: {exc}")
    if errors:
        raise KbError("import refused, nothing imported:\n" + "\n".join(errors))
    return entries


def read_jsonl(path: Path, docs: Mapping[str, DocumentFacts], today: str) -> list[CuratedEntry]:
    rows: list[tuple[int, dict | Exception]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except ValueError as exc:
                rows.append((number, exc))
    return _checked(rows, docs, today, "line")


def write_jsonl(entries: list[CuratedEntry], path: Path) -> None:
    Path(path).write_text("".join(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")


def write_xlsx(entries: list[CuratedEntry], path: Path) -> None:
    """One row per entry; variants and sources one per line within their cell (the quotes hold no line breaks)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(COLUMNS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for e in entries:
        sheet.append([e.question, "\n".join(e.variants), e.answer, "\n".join(s.file for s in e.sources),
                      "\n".join(s.quote for s in e.sources), e.approved_by, e.approved_at, e.review_date])
    for column, width in zip("ABCDEFGH", (30, 30, 60, 30, 60, 10, 12, 12)):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    book.save(path)


def _lines(value) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def read_xlsx(path: Path, docs: Mapping[str, DocumentFacts], today: str) -> list[CuratedEntry]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.active
        rows = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    if not rows or tuple(str(c or "").strip() for c in rows[0][: len(COLUMNS)]) != COLUMNS:
        raise KbError(f"{path}: the first row must be the columns {'、'.join(COLUMNS)}")
    parsed: list[tuple[int, dict | Exception]] = []
    for number, row in enumerate(rows[1:], 2):
        row = list(row) + [None] * (len(COLUMNS) - len(row))
        if not any(str(c or "").strip() for c in row):
            continue
        files, quotes = _lines(row[3]), _lines(row[4])
        if len(files) != len(quotes):
            parsed.append((number, KbError("依据文件 and 依据原文 must have as many lines")))
            continue
        date = lambda v: v.date().isoformat() if isinstance(v, dt.datetime) else str(v or "").strip()  # noqa: E731
        parsed.append((number, {"question": str(row[0] or ""), "variants": _lines(row[1]), "answer": str(row[2] or ""),
                                "sources": [{"file": f, "quote": q} for f, q in zip(files, quotes)],
                                "approved_by": str(row[5] or ""), "approved_at": date(row[6]),
                                "review_date": date(row[7])}))
    return _checked(parsed, docs, today, "row")


def read_entries(path: Path, docs: Mapping[str, DocumentFacts], today: str) -> list[CuratedEntry]:
    """By the file's suffix: .xlsx, else JSONL."""
    path = Path(path)
    return read_xlsx(path, docs, today) if path.suffix.lower() == ".xlsx" else read_jsonl(path, docs, today)


def write_entries(entries: list[CuratedEntry], path: Path) -> None:
    path = Path(path)
    (write_xlsx if path.suffix.lower() == ".xlsx" else write_jsonl)(entries, path)
