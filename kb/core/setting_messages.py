"""The words of a SettingsError (kb/core/settings.py): each bad setting by its flat name, the value given,
where it came from and what it may be, from the field's type and bounds."""
from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


def allowed(name: str, info: FieldInfo) -> str:
    """What a setting may be, in words, from its type and bounds."""
    kind = info.annotation
    if typing.get_origin(kind) is Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(kind))
    bounds = {attr: getattr(m, attr) for m in info.metadata for attr in ("ge", "gt", "le", "lt")
              if isinstance(m, getattr(annotated_types, attr.capitalize()))}
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text", Path: "a path"}
    base = words.get(kind, "a list of paths" if name == "corpus" else "a path or empty")
    if "ge" in bounds and "le" in bounds:
        return f"{base} from {bounds['ge']} to {bounds['le']}"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return " ".join([base, *(f"{signs[a]} {v}" for a, v in bounds.items())])


def describe(exc: ValidationError, groups: Mapping[str, type[BaseModel]], field_groups: Mapping[str, str],
             secret: frozenset[str], origins: Mapping[str, str] | None = None) -> str:
    """One part per bad setting: its flat name, the value given, where it came from, what it may be."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        name = next((part for part in loc if part in field_groups and part not in groups), None)
        if name is None and len(loc) > 1 and loc[1] in field_groups:
            name = loc[1]  # e.g. ("store", "store")
        where = f" (from {origins[name]})" if origins and name in origins else ""
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown setting {loc[-1]}{where}{did_you_mean(loc[-1], field_groups)}")
        elif name is None:
            lines.append(f"settings: {error['msg'].removeprefix('Value error, ')}")
        elif error["type"] == "value_error":  # a check of our own (Milvus names): its reason
            reason = str(error.get("ctx", {}).get("error", error["msg"]))
            given = "…" if name in secret else repr(error["input"])  # a key is not written into a log
            lines.append(f"setting {name} = {given}{where}: {reason}")
        else:
            lines.append(f"setting {name} = {error['input']!r}{where}: expected {allowed(name, groups[field_groups[name]].model_fields[name])}")
    return "; ".join(dict.fromkeys(lines))


def did_you_mean(key: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
