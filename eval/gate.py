"""Floors and ceilings for metrics (eval/floors.toml): the CI gate."""
from __future__ import annotations

import tomllib
from pathlib import Path


def metric(metrics: dict, dotted: str) -> float:
    value = metrics
    for part in dotted.split("."):
        value = value[part]
    return float(value)


def applies(metrics: dict, dotted: str) -> bool:
    """Whether the test set has questions for the metric: refusal recall needs unanswerable ones, the rest
    answerable ones. A metric over no question is 不适用, neither passed nor failed."""
    population = "unanswerable" if dotted.startswith("refusals.refusal_recall") else "answerable"
    return metrics.get(population, 1) > 0


def check(metrics: dict, limits_file: Path) -> list[str]:
    """One line per metric outside its limit; empty when all pass."""
    limits = tomllib.loads(limits_file.read_text(encoding="utf-8"))
    failures = []
    for name, floor in limits.get("floors", {}).items():
        if applies(metrics, name) and metric(metrics, name) < floor:
            failures.append(f"{name} = {metric(metrics, name):.3f}, below its floor {floor}")
    for name, ceiling in limits.get("ceilings", {}).items():
        if applies(metrics, name) and metric(metrics, name) > ceiling:
            failures.append(f"{name} = {metric(metrics, name):.3f}, above its ceiling {ceiling}")
    return failures
