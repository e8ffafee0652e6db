"""YAML files users write (conversation scripts, simulator bot rules), read with line numbers.

Two things matter for files people write by hand:

- **Errors name the place.** Every mapping and list remembers the line of each entry, so a
  checker can say ``conversations.yml:12: unknown key 'sya'`` instead of a traceback.
- **Text stays text.** YAML 1.1 (PyYAML's default) reads ``say: Yes`` as ``True`` and
  ``say: No`` as ``False``; the scripts of the open-source Genesys web messaging tester, written
  for a YAML 1.2 parser, say exactly that. Here only ``true``/``false`` are booleans, as in
  YAML 1.2; ``yes``/``no``/``on``/``off`` stay strings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (see the module docstring)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class LineDict(dict[str, Any]):
    """A mapping that knows the 1-based line of itself and of each key."""

    line: int
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A list that knows the 1-based line of itself and of each item."""

    line: int
    item_lines: list[int]


def line_of(container: Any, key: Any = None) -> int:
    """The line of ``container`` (or of its entry ``key``), 0 when unknown."""
    if key is not None:
        if isinstance(container, LineDict):
            return container.key_lines.get(key, container.line)
        if isinstance(container, LineList) and isinstance(key, int):
            return container.item_lines[key] if 0 <= key < len(container) else container.line
    return int(getattr(container, "line", 0))


class YamlError(UsageError):
    """A problem in a user's YAML file; the message is ``FILE:LINE: what is wrong``."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def _build(node: yaml.Node, loader: Loader, path: Path | str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.key_lines = line, {}
        loader.flatten_mapping(node)  # merge keys (<<) as the safe loader does
        for key_node, value_node in node.value:
            key = _build(key_node, loader, path)
            if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
                raise YamlError(path, key_node.start_mark.line + 1, f"bad key {key!r}")
            key = str(key)
            if key in out:
                raise YamlError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            out[key] = _build(value_node, loader, path)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        items = LineList(_build(item, loader, path) for item in node.value)
        items.line, items.item_lines = line, [item.start_mark.line + 1 for item in node.value]
        return items
    return loader.construct_object(node, deep=True)


def load(path: Path | str, what: str) -> Any:
    """Parse one YAML document into plain values, LineDicts and LineLists.

    Raises:
        UsageError: the file cannot be read, is not YAML, or is empty (``what`` names it:
            "conversation script", "bot rules").
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlError(path, 0, f"the {what} is empty")
        return _build(node, loader, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "not valid YAML"
        raise YamlError(path, line, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(path, 0, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def check_keys(
    path: Path | str, mapping: Any, allowed: set[str] | frozenset[str], where: str
) -> None:
    """Raise a one-line error naming the first key of ``mapping`` not in ``allowed``."""
    if not isinstance(mapping, dict):
        raise YamlError(path, line_of(mapping), f"{where} must be a mapping")
    for key in mapping:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise YamlError(
                path, line_of(mapping, key), f"unknown key {key!r} in {where} ({known})"
            )
