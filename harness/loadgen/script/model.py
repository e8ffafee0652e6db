"""Conversation scripts as data: scenarios of steps, each step one frozen dataclass.

A step knows its 1-based number and file line (for errors and the report's funnel) and how to
describe itself in one short line. Parsing is in :mod:`.parse`, running in :mod:`.runner`.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.loadgen.script.template import Template
from harness.protocol.units import Distribution

#: Wait kinds: a text contained (case-insensitive, as the web messaging tester does), a regular
#: expression found (``re.search``), quick replies offered, the bot ending the conversation.
CONTAINING, MATCHING, QUICK_REPLIES, DISCONNECT = (
    "containing",
    "matching",
    "quickReplies",
    "disconnect",
)


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Say:
    """``say`` / ``sayWithAttributes``: a guest text, optionally with customAttributes."""

    number: int
    line: int
    text: Template
    attributes: Mapping[str, Template] | None = None

    def describe(self) -> str:
        kind = "sayWithAttributes" if self.attributes else "say"
        return f"{kind} {short(self.text.source)!r}"


@dataclass(frozen=True, slots=True)
class ChooseQuickReply:
    """Answer the latest offered quick replies: by label, by 1-based index, or at random."""

    number: int
    line: int
    label: str | None = None
    index: int | None = None

    def describe(self) -> str:
        choice = self.label if self.label is not None else self.index or "random"
        return f"chooseQuickReply {choice!r}"


@dataclass(frozen=True, slots=True)
class Typing:
    number: int
    line: int

    def describe(self) -> str:
        return "typing"


@dataclass(frozen=True, slots=True)
class Think:
    number: int
    line: int
    pause: Distribution

    def describe(self) -> str:
        return f"think {self.pause.spec}"


@dataclass(frozen=True, slots=True)
class WaitFor:
    """A ``waitFor…`` step; ``timeout_s`` None takes the script's (or --reply-timeout)."""

    number: int
    line: int
    kind: str
    text: Template | None = None
    regex: re.Pattern[str] | None = None
    timeout_s: float | None = None

    def describe(self) -> str:
        if self.kind == CONTAINING and self.text is not None:
            return f"waitForReplyContaining {short(self.text.source)!r}"
        if self.kind == MATCHING and self.regex is not None:
            return f"waitForReplyMatching {short(self.regex.pattern)!r}"
        return "waitForQuickReplies" if self.kind == QUICK_REPLIES else "waitForDisconnect"


Step = Say | ChooseQuickReply | Typing | Think | WaitFor
#: Steps that send a guest message (an implicit think time comes before all but the first).
SENDS = (Say, ChooseQuickReply)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    weight: float
    steps: tuple[Step, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class ScriptConfig:
    """The script's ``config:``. The web messaging tester's keys are defaults for the
    command line (which wins): ``deploymentId``, ``region`` (used only for a remote target,
    see the README), ``origin``. Ours: ``csv`` rows for ``{csv:COLUMN}``, ``think`` before
    each send but the first, ``timeout`` of the waits, ``reorderWindow``."""

    deployment_id: str | None = None
    region: str | None = None
    origin: str | None = None
    rows: tuple[Mapping[str, str], ...] = ()
    columns: tuple[str, ...] | None = None
    think: Distribution | None = None
    timeout_s: float | None = None
    reorder_window_s: float | None = None


@dataclass(frozen=True)
class Script:
    """A parsed script: pick a scenario per conversation by weight."""

    path: Path
    scenarios: tuple[Scenario, ...]
    config: ScriptConfig = ScriptConfig()
    _cumulative: list[float] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._cumulative[:] = list(itertools.accumulate(s.weight for s in self.scenarios))

    def pick(self, rng: random.Random) -> Scenario:
        """A scenario drawn with probability weight / total weight."""
        total = self._cumulative[-1]
        index = bisect.bisect_right(self._cumulative, rng.random() * total)
        return self.scenarios[min(index, len(self.scenarios) - 1)]

    def row_for(self, user: int) -> Mapping[str, str] | None:
        """This user's CSV row (users take the rows in turn)."""
        rows = self.config.rows
        return rows[user % len(rows)] if rows else None
