"""The dependency rule (docs/architecture.md), read from the imports of every module:

    kb.core  <-  kb.store, kb.models  <-  kb.search, kb.curated  <-  kb.answer  <-  web  <-  app.py
                 ingest (reads files; writes the store through kb.store and kb.models)
    eval uses the public library (kb.core, kb.search, kb.answer) and nothing of web or ingest.

A module may import its own layer and the layers listed as allowed for it; nothing imports
upwards, and no two top-level packages import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests_support import REPO

# layer -> the layers (besides itself) its modules may import
ALLOWED: dict[str, set[str]] = {
    "kb.core": set(),
    "kb.store": {"kb.core"},
    "kb.models": {"kb.core"},
    "kb.search": {"kb.core", "kb.store", "kb.models"},
    "kb.curated": {"kb.core", "kb.store", "kb.models"},  # curated answers (标准口径): store, matcher, checks
    "kb.answer": {"kb.core", "kb.store", "kb.models", "kb.search", "kb.curated"},
    "kb.cli": {"kb.core", "kb.store", "kb.models", "kb.search", "kb.answer", "kb.curated"},  # python -m kb
    "ingest": {"kb.core", "kb.store", "kb.models"},
    "eval": {"kb.core", "kb.search", "kb.answer", "kb.curated"},
    "web": {"kb.core", "kb.store", "kb.models", "kb.search", "kb.curated", "kb.answer", "ingest", "eval"},
    "app": {"kb.core", "kb.store", "web"},
}
PACKAGES = ("kb", "ingest", "eval", "web", "app")


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "kb":
        if len(parts) == 1 or parts[1] in ("__main__", "resources"):
            return "kb.cli"
        return f"kb.{parts[1]}"
    return parts[0] if parts[0] in PACKAGES else None


def source_modules() -> dict[str, Path]:
    found = {"app": REPO / "app.py"}
    for package in ("kb", "ingest", "eval", "web"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(p for p in parts if p != "__init__")] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Every absolute import in the module, at any depth (local imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


MODULES = source_modules()


def violations() -> list[str]:
    out = []
    for module, path in sorted(MODULES.items()):
        own = layer_of(module)
        for imported in sorted(imports_of(path)):
            target = layer_of(imported)
            if target is None or target == own:
                continue
            if imported not in MODULES and imported.rsplit(".", 1)[0] not in MODULES:
                continue  # a name inside a module, e.g. `from kb import something` that is not a module
            if target not in ALLOWED[own]:
                out.append(f"{module} ({own}) imports {imported} ({target})")
    return out


def test_every_import_goes_down_the_layers():
    assert violations() == []


def test_top_level_packages_have_no_cycle():
    edges = {p: set() for p in PACKAGES}
    for module, path in MODULES.items():
        for imported in imports_of(path):
            top = imported.split(".")[0]
            if top in PACKAGES and top != module.split(".")[0]:
                edges[module.split(".")[0]].add(top)
    for start in PACKAGES:  # depth-first search from each package back to itself
        stack, seen = list(edges[start]), set()
        while stack:
            node = stack.pop()
            assert node != start, f"cycle through {start}: {edges}"
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: a core module that imports the answer layer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from kb.answer.answerer import Answerer\n", encoding="utf-8")
    MODULES["kb.core.bad"] = bad
    try:
        assert violations() == ["kb.core.bad (kb.core) imports kb.answer.answerer (kb.answer)",
                                "kb.core.bad (kb.core) imports kb.answer.answerer.Answerer (kb.answer)"]
    finally:
        del MODULES["kb.core.bad"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "app"))
def test_no_source_module_is_over_400_lines(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"{module} has {lines} lines"


# --- one door: the web layer reaches answers and search only through its service (web/service/)
BEHIND_THE_DOOR = ("kb.answer", "kb.search")


def is_service(module: str) -> bool:
    return module == "web.service" or module.startswith("web.service.")


def past_the_door() -> list[str]:
    """Imports of kb.answer or kb.search (at any depth, local imports too) by a web module outside the service."""
    return [f"{module} imports {imported}" for module, path in sorted(MODULES.items())
            if layer_of(module) == "web" and not is_service(module)
            for imported in sorted(imports_of(path))
            if any(imported == layer or imported.startswith(f"{layer}.") for layer in BEHIND_THE_DOOR)]


def test_the_web_layer_has_one_door():
    assert any(is_service(m) for m in MODULES) and len([m for m in MODULES if layer_of(m) == "web"]) > 5
    assert past_the_door() == []


def reaching_past() -> list[str]:
    """`service.answerer.answer(…)` or `service.generation.…` in a web module outside the service: past what
    the service adds (its notices)."""
    return [f"{module} uses .{node.attr}" for module, path in sorted(MODULES.items())
            if layer_of(module) == "web" and not is_service(module)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and node.attr in ("answerer", "generation", "generations")]


def test_the_web_layer_does_not_reach_past_the_service_to_its_answerer(tmp_path):
    assert reaching_past() == []
    bad = tmp_path / "bad.py"
    bad.write_text("def ask(service, q):\n    return service.answerer.answer(q)\n", encoding="utf-8")
    MODULES["web.bad"] = bad
    try:
        assert reaching_past() == ["web.bad uses .answerer"]
    finally:
        del MODULES["web.bad"]


@pytest.mark.parametrize("source, found", [
    ("from kb.search.filters import Filters\n", "kb.search.filters"),
    ("def f():\n    import kb.answer.answerer\n", "kb.answer.answerer"),
    ("from kb import search\n", None),  # caught through the name it imports
])
def test_the_door_check_catches_a_way_around_it(tmp_path, source, found):
    bad = tmp_path / "bad.py"
    bad.write_text(source, encoding="utf-8")
    MODULES["web.bad"] = bad
    try:
        assert past_the_door()[:1] == [f"web.bad imports {found or 'kb.search'}"]
    finally:
        del MODULES["web.bad"]
    MODULES["web.service.ok"] = bad  # inside the service it is allowed
    try:
        assert past_the_door() == []
    finally:
        del MODULES["web.service.ok"]
