"""The install is the lock's: every package at its locked version, and the lock agrees with pyproject.toml.

A new release on the registry must change nothing until `make lock` is run on purpose; these tests fail
when the environment drifted from requirements.lock, or when pyproject.toml asks for something the lock
does not hold (a dependency added or a bound moved without re-locking).
"""
from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, Version]:
    """name -> version of every `name==version` line of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", text, flags=re.M)
    return {canonicalize_name(name): Version(version) for name, version in pins}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_every_lock_line_is_pinned_with_hashes():
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    entries = re.findall(r"^[A-Za-z0-9][^\n]*", text, flags=re.M)
    assert len(entries) == len(locked()) > 50
    for entry in entries:
        assert "==" in entry and entry.rstrip().endswith("\\"), f"not pinned with hashes: {entry}"


def test_pyproject_and_lock_agree():
    pins = locked()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock has {req.name}=={pins[name]}, pyproject.toml asks {req.specifier}: run `make lock`")


def test_installed_versions_are_the_locks():
    wrong = []
    for name, version in locked().items():
        try:
            installed = Version(md.version(name))
        except md.PackageNotFoundError:
            wrong.append(f"{name}: not installed (lock: {version})")
            continue
        if installed != version:
            wrong.append(f"{name}: {installed} installed, {version} locked")
    assert not wrong, "the environment is not the lock's (`make setup` syncs it):\n" + "\n".join(wrong)


def test_torch_is_the_cpu_build():
    assert str(locked()["torch"]).endswith("+cpu")  # a looser pin pulls a CUDA build of several GB
