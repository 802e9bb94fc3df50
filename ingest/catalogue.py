"""A folder's `catalogue.toml`: what a bureau knows about its documents that the documents do not
state themselves (a measures text without its title page, a list without its 文号), keyed by file name:

    ["nansha-2017-sci-tech-innovation-support-measures.txt"]
    title = "广州南沙新区（自贸片区）促进科技创新产业发展扶持办法"
    doc_number = "穗南开管办〔2017〕1号"

Metadata fields (title, doc_number, issuer, date, doc_type) and profile fields (level, region as a
place name, effective_from, effective_until) given here win over what was read from the file. A
change to an entry re-ingests that file (it is part of the file's hash).
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import replace
from pathlib import Path

from kb.core.errors import LoadError
from kb.core.places import Places
from kb.core.profile import LEVELS, DocumentProfile
from kb.core.records import DocumentMeta

CATALOGUE = "catalogue.toml"
META_FIELDS = ("title", "doc_number", "issuer", "date", "doc_type")
PROFILE_FIELDS = ("level", "region", "effective_from", "effective_until")


def catalogue_entry(path: Path) -> dict:
    """The entry for `path` in its folder's catalogue.toml ({} when there is none)."""
    catalogue = path.parent / CATALOGUE
    if not catalogue.is_file():
        return {}
    try:
        entries = tomllib.loads(catalogue.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(f"{catalogue}: {exc}") from None
    entry = entries.get(path.name, {})
    unknown = set(entry) - set(META_FIELDS) - set(PROFILE_FIELDS)
    if not isinstance(entry, dict) or unknown:
        raise LoadError(f"{catalogue}: entry {path.name!r} has unknown field(s) {', '.join(sorted(unknown))}")
    return entry


def entry_hash(file_hash: str, entry: dict) -> str:
    """The file's hash, with its catalogue entry mixed in when there is one."""
    if not entry:
        return file_hash
    return hashlib.sha256((file_hash + json.dumps(entry, sort_keys=True, ensure_ascii=False)).encode()).hexdigest()


def apply_entry(entry: dict, meta: DocumentMeta, profile: DocumentProfile,
                places: Places) -> tuple[DocumentMeta, DocumentProfile]:
    meta = replace(meta, **{k: str(entry[k]) for k in META_FIELDS if k in entry})
    if "title" in entry:
        meta.title_from_filename = False
    changes = {k: str(entry[k]) for k in ("effective_from", "effective_until") if k in entry}
    if "level" in entry:
        if entry["level"] not in LEVELS:
            raise LoadError(f"{CATALOGUE}: level {entry['level']!r} is not one of {'、'.join(LEVELS)}")
        changes["level"] = entry["level"]
    if "region" in entry:
        region = ("全国",) if entry["region"] == "全国" else places.normalise(str(entry["region"]))
        if not region:
            raise LoadError(f"{CATALOGUE}: region {entry['region']!r} is not a place")
        changes["region"] = region
    return meta, replace(profile, **changes)
