"""Helpers for the documentation tests: GitHub heading anchors, docs citations, and the string
literals of the harness that can reach a user (everything but docstrings; comments are not in
the syntax tree at all)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: ``docs/<file>.md`` with an optional ``#anchor``, as user-facing text cites it.
CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]*))?")
#: A Markdown link target: ``[text](target)``.
LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters, digits,
    ``_``, ``-`` and spaces kept), spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text (outside code fences; repeats get -1, -2 …)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        slug = github_slug(match.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def doc_anchors() -> dict[str, set[str]]:
    """``{file name: anchors}`` for every page in docs/."""
    return {p.name: anchors(p.read_text(encoding="utf-8")) for p in sorted(DOCS.glob("*.md"))}


def bad_citations(text: str, known: dict[str, set[str]]) -> list[str]:
    """What is wrong with the docs citations in ``text``: a missing page or anchor."""
    problems = []
    whole = len(CITATION.findall(text))
    if text.count("docs/") != whole:  # e.g. a help text wrapped inside a citation
        problems.append(f"{text.count('docs/') - whole} docs/ reference(s) that are cut off")
    for match in CITATION.finditer(text):
        page, anchor = match.group(1), match.group(2)
        if page not in known:
            problems.append(f"{match.group(0)}: no docs/{page}")
        elif anchor is not None and anchor not in known[page]:
            problems.append(f"{match.group(0)}: no heading with anchor #{anchor} in docs/{page}")
    return problems


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of string constants that are docstrings or other bare string statements."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def user_strings(package: Path) -> Iterator[tuple[str, str]]:
    """``(file:line, text)`` of every string literal in the package outside docstrings,
    f-string pieces included: messages, help texts, report text, hints."""
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
            ):
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node.value
