"""The docs name only what exists: every repository path named in the Markdown docs, or in a comment
or docstring of a Python module (or a comment of the Makefile, pyproject.toml, .ci/), is a file or folder of the repository; every relative Markdown link
reaches its file (and its heading, for `file.md#anchor`); README.md stays short.

A path is a word that starts with one of the repository's top-level folders (`kb/`, `docs/`, …) or is
one of its top-level files (`Makefile`, `app.py`, …). `*` is a glob and `<…>` / `{…}` a placeholder
(`eval/testsets/<name>.jsonl`): such a path must match at least one file. Paths a running app or
build makes (`.kb/…`, `eval-runs/…`) start with no repository folder and are not read.
"""
from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from pathlib import Path

from tests_support import REPO

README_MAX_LINES = 250
TOP_DIRS = (".ci", "bench", "data", "docs", "eval", "ingest", "kb", "prompts", "tests", "web")
TOP_FILES = ("app.py", "Makefile", "pyproject.toml", "requirements.lock", "README.md", "SECURITY.md")
PATH = re.compile(
    r"(?<![A-Za-z0-9_./<>{}\\-])"
    r"((?:" + "|".join(re.escape(d) for d in TOP_DIRS) + r")/[A-Za-z0-9_./*<>{}-]*"
    r"|(?:" + "|".join(re.escape(f) for f in TOP_FILES) + r")(?![A-Za-z0-9_-]))"
)
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
# Named although absent, each for a reason; an entry that nothing names any more fails the test below.
MISSING_ALLOWED: dict[str, str] = {}


def markdown_files() -> list[Path]:
    files = [*REPO.glob("*.md"), *(REPO / "docs").glob("*.md")]
    for top in TOP_DIRS:
        if top != "docs":
            files += (REPO / top).rglob("*.md")
    return sorted(set(files))


def python_files() -> list[Path]:
    files = [REPO / "app.py"]
    for top in TOP_DIRS:
        files += (REPO / top).rglob("*.py")
    return sorted(files)


def hash_comments(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the `#` comments of a Makefile, shell script or TOML file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(n, m.group(1)) for n, line in enumerate(lines, 1) if (m := re.search(r"(?:^|\s)#(.*)", line))]


def comment_text(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a module: the prose, not the code's own strings."""
    out = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
           if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.append((body[0].lineno, body[0].value.value))
    return out


def paths_in(text: str) -> list[str]:
    out = []
    for m in PATH.finditer(text):
        path = m.group(1)
        for opening, closing in ("<>", "{}"):  # a path inside a placeholder: `<KB of data/corpus>`
            if opening not in path:
                path = path.split(closing)[0]
        out.append(path.rstrip(".,:;"))
    return out


def exists(path: str) -> bool:
    pattern = re.sub(r"<[^>]*>|\{[^}]*\}", "*", path)
    if "*" in pattern:
        return any(REPO.glob(pattern.rstrip("/")))
    return (REPO / pattern).exists()


@functools.cache
def named_paths() -> list[tuple[str, str]]:
    """(where, path) for every repository path the docs and comments name."""
    found = []
    for md in markdown_files():
        for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            found += [(f"{md.relative_to(REPO)}:{n}", p) for p in paths_in(line)]
    for py in python_files():
        for start, text in comment_text(py.read_text(encoding="utf-8")):
            for k, line in enumerate(text.splitlines()):
                found += [(f"{py.relative_to(REPO)}:{start + k}", p) for p in paths_in(line)]
    for other in (REPO / "Makefile", REPO / "pyproject.toml", *(REPO / ".ci").glob("*")):
        for n, text in hash_comments(other):
            found += [(f"{other.relative_to(REPO)}:{n}", p) for p in paths_in(text)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces → -."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@functools.cache
def anchors(md: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            base = slug(m.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def test_named_paths_exist():
    missing = [f"{where}: {path}" for where, path in named_paths()
               if not exists(path) and path not in MISSING_ALLOWED]
    assert not missing, "paths named in docs or comments that do not exist:\n" + "\n".join(missing)


def test_allowed_missing_paths_are_still_named():
    named = {path for _, path in named_paths()}
    stale = set(MISSING_ALLOWED) - named
    assert not stale, f"remove from MISSING_ALLOWED, nothing names them: {sorted(stale)}"


def test_markdown_links_resolve():
    broken = []
    for md in markdown_files():
        for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue  # http:, https:, mailto:
                file, _, anchor = target.partition("#")
                dest = (md.parent / file).resolve() if file else md
                rel = dest.relative_to(REPO) if dest.is_relative_to(REPO) else dest
                if not dest.exists():
                    if str(rel) not in MISSING_ALLOWED:
                        broken.append(f"{md.relative_to(REPO)}:{n}: {target} (no such file)")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    broken.append(f"{md.relative_to(REPO)}:{n}: {target} (no such heading in {rel})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_check_sees_what_it_should():
    # The patterns themselves: a path in prose, in a comment, a glob, a placeholder, a URL that is no path.
    assert paths_in("see `kb/core/settings.py`, then docs/api.md.") == ["kb/core/settings.py", "docs/api.md"]
    assert paths_in("https://example.org/docs/x.md and ../kb/x.py and my-kb/x") == []
    assert paths_in("--kb <KB of data/corpus>, eval/{x}.jsonl") == ["data/corpus", "eval/{x}.jsonl"]
    assert paths_in("the Makefile's lock target; Makefiles") == ["Makefile"]
    assert exists("tests/test_*.py") and exists("eval/testsets/<name>.jsonl") and exists("kb/core/")
    assert not exists("kb/answering.py") and not exists("eval/testsets/<name>.csv")
    assert hash_comments(REPO / "Makefile")[0][1].strip().startswith("Two commands")
    assert comment_text('"""kb/a.py"""\nx = "kb/b.py"  # kb/c.py\n') == [(2, "# kb/c.py"), (1, "kb/a.py")]
    assert slug("Many workers (`--workers N`)") == "many-workers---workers-n"
    assert slug("Upgrading dependencies") == "upgrading-dependencies"


def test_every_doc_is_linked_from_the_readme():
    linked = {target.partition("#")[0] for target in LINK.findall((REPO / "README.md").read_text(encoding="utf-8"))}
    orphans = [f"docs/{md.name}" for md in (REPO / "docs").glob("*.md") if f"docs/{md.name}" not in linked]
    assert not orphans, f"not linked from README.md, so nobody finds them: {orphans}"


def test_readme_is_short():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"
