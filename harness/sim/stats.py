"""Counters of one simulator run, and the shutdown summary (protocol.md §8.1 item 1).

The last summary line is ``SUMMARY {json}`` so a load generator can check its own accounting
against the server's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

SUMMARY_PREFIX = "SUMMARY "


@dataclass(slots=True)
class SimStats:
    """What one process (or, after ``merge``, all processes) saw.

    - ``upgrades``: upgrade requests attempted; ``accepted``: answered 101;
      ``rejected_by_status``: refused upgrades by HTTP status.
    - ``sessions``: sessions created (new tokens and startNew conversations).
    - ``messages``: accepted ``onMessage`` actions (the ones echoed).
    - ``bot_replies``: bot text replies written; ``frames_in``: data frames received.
    - ``answers``: answers (to a guest text or quick-reply choice) whose first message was
      written, ``answer_first_us`` the sum of those first messages' server-side delays (echo
      → write); ``answers_completed`` / ``answer_last_us`` likewise for their last message;
      ``answer_messages``: the messages written in those answers. A load generator's botReply
      and botAnswer means can be checked against ``answer_first_us / answers`` and
      ``answer_last_us / answers_completed``.
    - ``messages_with_attributes``: accepted ``onMessage`` actions carrying customAttributes.
    - ``errors_by_code``: error answers sent, by Guest API code (429 included).
    - ``closes_by_code``: closed connections by close code (1006 = no close frame).
    """

    upgrades: int = 0
    accepted: int = 0
    rejected_by_status: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    messages: int = 0
    bot_replies: int = 0
    frames_in: int = 0
    answers: int = 0
    answers_completed: int = 0
    answer_messages: int = 0
    answer_first_us: int = 0
    answer_last_us: int = 0
    messages_with_attributes: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)
    closes_by_code: Counter[str] = field(default_factory=Counter)
    processes: int = 1
    #: accepted connections of each process (``--processes N``), in process order.
    accepted_per_process: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Counter):
                value = dict(sorted(value.items()))
            out[f.name] = list(value) if isinstance(value, list) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimStats:
        stats = cls()
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if isinstance(getattr(stats, f.name), Counter):
                value = Counter({str(k): int(v) for k, v in value.items()})
            setattr(stats, f.name, value)
        return stats

    @classmethod
    def merge(cls, parts: list[SimStats]) -> SimStats:
        """Aggregate per-process stats (``--processes N``)."""
        total = cls(processes=len(parts), accepted_per_process=[p.accepted for p in parts])
        for part in parts:
            for f in dataclasses.fields(cls):
                if f.name in ("processes", "accepted_per_process"):
                    continue
                current = getattr(total, f.name)
                if isinstance(current, Counter):
                    current.update(getattr(part, f.name))
                else:
                    setattr(total, f.name, current + getattr(part, f.name))
        return total

    def summary_lines(self) -> list[str]:
        """Human-readable lines, then the machine-readable ``SUMMARY {json}`` line last."""

        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items())) or "none"

        per_process = [
            f"process {index}: {accepted} accepted"
            for index, accepted in enumerate(self.accepted_per_process)
        ]
        return [
            f"processes: {self.processes}",
            *per_process,
            f"connections: {self.upgrades} upgrades, {self.accepted} accepted, "
            f"rejected by status: {fmt(self.rejected_by_status)}",
            f"sessions: {self.sessions}",
            f"messages: {self.messages} accepted onMessage, {self.bot_replies} bot replies, "
            f"{self.frames_in} frames in",
            f"answers: {self.answers} ({self.answer_messages} messages), mean first message "
            f"{_mean_ms(self.answer_first_us, self.answers)}, mean last message "
            f"{_mean_ms(self.answer_last_us, self.answers_completed)} after the echo",
            f"errors by code: {fmt(self.errors_by_code)}",
            f"closes by code: {fmt(self.closes_by_code)}",
            SUMMARY_PREFIX + orjson.dumps(self.to_dict()).decode(),
        ]


def _mean_ms(total_us: int, count: int) -> str:
    return f"{total_us / count / 1000:.3f} ms" if count else "n/a"


def parse_summary(output: str) -> SimStats | None:
    """Find the ``SUMMARY {json}`` line in a simulator's stdout (for tests and load tools)."""
    for line in reversed(output.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                data = orjson.loads(line[len(SUMMARY_PREFIX) :])
            except orjson.JSONDecodeError:
                return None
            return SimStats.from_dict(data) if isinstance(data, dict) else None
    return None
