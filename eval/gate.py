"""Floors and ceilings for metrics (eval/floors.toml): the CI gate."""
from __future__ import annotations

import tomllib
from pathlib import Path


def metric(metrics: dict, dotted: str) -> float:
    value = metrics
    for part in dotted.split("."):
        value = value[part]
    return float(value)


def check(metrics: dict, limits_file: Path) -> list[str]:
    """One line per metric outside its limit; empty when all pass."""
    limits = tomllib.loads(limits_file.read_text(encoding="utf-8"))
    failures = []
    for name, floor in limits.get("floors", {}).items():
        if metric(metrics, name) < floor:
            failures.append(f"{name} = {metric(metrics, name):.3f}, below its floor {floor}")
    for name, ceiling in limits.get("ceilings", {}).items():
        if metric(metrics, name) > ceiling:
            failures.append(f"{name} = {metric(metrics, name):.3f}, above its ceiling {ceiling}")
    return failures
