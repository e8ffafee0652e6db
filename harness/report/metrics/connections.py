"""Connection success: every connect attempt lands in exactly one bucket (design.md).

Buckets: succeeded, one failure reason (the recorded error category: http_403, http_429,
http_503, timeout, refused, tls, dns, protocol …), or rate_limited (paced, not a failure).
success_rate = succeeded / (attempted - rate_limited).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import rate_limited_mask, step_mask

UNKNOWN_REASON = "unknown"


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    attempted: int
    succeeded: int
    failed: int
    rate_limited: int
    success_rate: float  # NaN when nothing was attempted
    failures_by_reason: dict[str, int] = field(default_factory=dict)


def failure_reasons(events: pd.DataFrame, step: str = s.STEP_CONNECT) -> pd.DataFrame:
    """Failed attempts of ``step`` by reason: columns reason, count, share (of failures)."""
    rows = events.loc[step_mask(events, step), [s.OK, s.ERROR]]
    failed = rows.loc[~rows[s.OK].to_numpy(dtype=bool) & ~rate_limited_mask(rows), s.ERROR]
    reasons = failed.astype(object).fillna(UNKNOWN_REASON).astype(str)
    counts = reasons.value_counts(sort=False)
    table = pd.DataFrame({"reason": counts.index.astype(str), "count": counts.to_numpy("int64")})
    table = table.sort_values(["count", "reason"], ascending=[False, True], ignore_index=True)
    total = int(table["count"].sum())
    table["share"] = table["count"] / total if total else np.nan
    return table


def connection_summary(events: pd.DataFrame) -> ConnectionSummary:
    """Attempted / succeeded / failed / rate-limited connects and the failure reasons."""
    rows = events.loc[step_mask(events, s.STEP_CONNECT), [s.OK, s.ERROR]]
    ok = rows[s.OK].to_numpy(dtype=bool)
    limited = rate_limited_mask(rows) & ~ok
    attempted, succeeded, rl = len(rows), int(ok.sum()), int(limited.sum())
    reasons = failure_reasons(rows.assign(**{s.STEP: s.STEP_CONNECT}))
    by_reason = dict(zip(reasons["reason"], (int(c) for c in reasons["count"]), strict=True))
    denominator = attempted - rl
    return ConnectionSummary(
        attempted=attempted,
        succeeded=succeeded,
        failed=attempted - succeeded - rl,
        rate_limited=rl,
        success_rate=succeeded / denominator if denominator else float("nan"),
        failures_by_reason=by_reason,
    )


def error_categories(events: pd.DataFrame) -> pd.DataFrame:
    """All failed rows by step and category (rate-limited rows shown apart): step, error, count."""
    ok = events[s.OK].to_numpy(dtype=bool)
    sub = events.loc[~ok, [s.STEP, s.ERROR]]
    frame = pd.DataFrame(
        {
            "step": sub[s.STEP].astype(object).astype(str).to_numpy(),
            "error": sub[s.ERROR].astype(object).fillna(UNKNOWN_REASON).astype(str).to_numpy(),
        }
    )
    table = frame.groupby(["step", "error"], sort=True).size().rename("count").reset_index()
    return table.sort_values(["count", "step"], ascending=[False, True], ignore_index=True)
