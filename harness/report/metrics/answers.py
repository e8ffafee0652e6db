"""The bot's answers: how many messages each had, and messages that came too late.

A ``botAnswer`` row is one answer (send → last message, ``answer_messages`` messages); a
``late_message`` integrity row is a bot message after its answer had closed (the bot was
quiet for ``--answer-quiet`` and then spoke again): not a failure, but a sign the quiet
period is shorter than the bot's pauses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import step_mask


@dataclass(frozen=True)
class AnswerSummary:
    answers: int = 0
    messages: int = 0
    mean_messages: float = float("nan")
    max_messages: int = 0
    #: answers by their number of messages: {1: n, 3: m, …}
    distribution: dict[int, int] = field(default_factory=dict)
    late_messages: int = 0


def answer_summary(events: pd.DataFrame) -> AnswerSummary:
    """Counted from the botAnswer rows and the late_message integrity rows."""
    mask = step_mask(events, s.STEP_BOT_ANSWER) & np.asarray(events[s.OK], dtype=bool)
    counts = events[s.ANSWER_MESSAGES].to_numpy()[mask]
    counts = counts[~np.isnan(counts)].astype(np.int64)
    late = step_mask(events, s.STEP_INTEGRITY) & np.asarray(
        events[s.ERROR] == s.INTEGRITY_LATE_MESSAGE, dtype=bool
    )
    if counts.size == 0:
        return AnswerSummary(late_messages=int(late.sum()))
    values, freq = np.unique(counts, return_counts=True)
    return AnswerSummary(
        answers=int(counts.size),
        messages=int(counts.sum()),
        mean_messages=float(counts.mean()),
        max_messages=int(counts.max()),
        distribution={int(v): int(n) for v, n in zip(values, freq, strict=True)},
        late_messages=int(late.sum()),
    )
