"""Text templates of conversation scripts: ``{user}``, ``{run}``, ``{scenario}``,
``{choice:a|b|c}`` (a random pick), ``{csv:COLUMN}`` (this user's row of ``config.csv``);
``{{`` and ``}}`` are literal braces. Checked when the script loads, so a typo never reaches a
guest as literal braces.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.errors import UsageError

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
NAMES = ("user", "run", "scenario")


@dataclass(frozen=True, slots=True)
class Context:
    """What a template may use for one conversation."""

    user: int
    run: str
    scenario: str
    row: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """A text split into literal parts and fields (``kind``, argument)."""

    source: str
    parts: tuple[str | tuple[str, str | tuple[str, ...]], ...]

    @classmethod
    def parse(cls, source: str, columns: Sequence[str] | None) -> Template:
        """Split ``source``; ``columns`` are the CSV header (None: no ``config.csv``).

        Raises:
            UsageError: an unknown field, an empty choice, or a CSV column that is missing.
        """
        parts: list[str | tuple[str, str | tuple[str, ...]]] = []
        pos = 0
        for match in _FIELD.finditer(source):
            parts.append(source[pos : match.start()])
            pos = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append(token[0])
                continue
            if match.group(1) is None:
                raise UsageError(f"unbalanced {token!r} in {source!r} (write {token * 2})")
            parts.append(_field(match.group(1).strip(), columns))
        parts.append(source[pos:])
        return cls(source, tuple(p for p in parts if p != ""))

    @property
    def is_static(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, ctx: Context, rng: random.Random) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            kind, arg = part
            if kind == "choice":
                assert isinstance(arg, tuple)
                out.append(rng.choice(arg))
            elif kind == "csv":
                assert isinstance(arg, str)
                out.append((ctx.row or {}).get(arg, ""))
            else:
                out.append(str(getattr(ctx, kind)))
        return "".join(out)


def _field(text: str, columns: Sequence[str] | None) -> tuple[str, str | tuple[str, ...]]:
    kind, sep, arg = text.partition(":")
    kind = kind.strip()
    if kind in NAMES and not sep:
        return kind, ""
    if kind == "choice" and sep:
        options = tuple(o.strip() for o in arg.split("|"))
        if not all(options):
            raise UsageError(f"{{{text}}}: every choice needs a text (a|b|c)")
        return kind, options
    if kind == "csv" and sep:
        column = arg.strip()
        if columns is None:
            raise UsageError(f"{{{text}}} needs config.csv (a CSV file with a header row)")
        if column not in columns:
            raise UsageError(
                f"{{{text}}}: no column {column!r} in config.csv ({', '.join(columns)})"
            )
        return kind, column
    known = ", ".join(f"{{{n}}}" for n in NAMES)
    raise UsageError(f"unknown field {{{text}}}: use {known}, {{choice:a|b}} or {{csv:COLUMN}}")
