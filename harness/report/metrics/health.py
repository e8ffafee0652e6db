"""Generator health: was the load side itself the bottleneck?

The load side records a ``generator`` row about every second per worker: ``latency_us`` =
event-loop lag, ``cpu_pct`` (as recorded, normalised per core by the recorder),
``rss_bytes``, ``active_connections``. A window is *saturated* when any worker in it reached
``cpu_pct >= cpu_pct_max`` or an event-loop lag ``>= lag_ms_max``; latencies measured in a
saturated window include generator queueing and are not trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.gates import GENERATOR_CPU_PCT_MAX, GENERATOR_LAG_MS_MAX
from harness.record import schema as s
from harness.report.columns import WINDOW_S
from harness.report.metrics.common import step_mask
from harness.report.metrics.timeseries import window_index


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    cpu_pct_max: float = GENERATOR_CPU_PCT_MAX
    lag_ms_max: float = GENERATOR_LAG_MS_MAX


@dataclass(frozen=True, slots=True)
class HealthSummary:
    samples: int
    windows: int
    saturated_windows: int
    max_cpu_pct: float
    max_lag_ms: float
    peak_rss_bytes: float
    trustworthy: bool


HEALTH_COLUMNS = (WINDOW_S, "workers", "max_cpu_pct", "max_lag_ms", "rss_bytes", "saturated")


def health_windows(
    events: pd.DataFrame, t0_ns: int, window_s: float, thresholds: HealthThresholds
) -> pd.DataFrame:
    """One row per window with generator samples: workers, max_cpu_pct, max_lag_ms,
    rss_bytes (sum of each worker's max), saturated."""
    mask = step_mask(events, s.STEP_GENERATOR)
    if not mask.any():
        return pd.DataFrame({c: pd.Series(dtype=float) for c in HEALTH_COLUMNS})
    frame = pd.DataFrame(
        {
            "w": window_index(events, t0_ns, window_s)[mask],
            "worker": events[s.WORKER_ID][mask].to_numpy(),
            "cpu": events[s.CPU_PCT].to_numpy()[mask],
            "lag_ms": events[s.LATENCY_US].to_numpy()[mask] / 1000.0,
            "rss": events[s.RSS_BYTES].to_numpy()[mask],
        }
    )
    per_worker = frame.groupby(["w", "worker"], observed=True, dropna=False).agg(
        cpu=("cpu", "max"), lag_ms=("lag_ms", "max"), rss=("rss", "max")
    )
    grouped = per_worker.groupby(level="w")
    out = pd.DataFrame(
        {
            "workers": grouped.size(),
            "max_cpu_pct": grouped["cpu"].max(),
            "max_lag_ms": grouped["lag_ms"].max(),
            "rss_bytes": grouped["rss"].sum(min_count=1),
        }
    )
    out["saturated"] = (out["max_cpu_pct"] >= thresholds.cpu_pct_max) | (
        out["max_lag_ms"] >= thresholds.lag_ms_max
    )
    out.insert(0, WINDOW_S, out.index.to_numpy(np.int64) * window_s)
    return out.reset_index(drop=True).astype({"workers": np.int64})


def health_summary(windows: pd.DataFrame) -> HealthSummary:
    """Headline figures; ``trustworthy`` is False as soon as one window was saturated."""
    saturated = int(windows["saturated"].sum()) if len(windows) else 0

    def peak(col: str) -> float:
        return float(windows[col].max()) if len(windows) and windows[col].notna().any() else np.nan

    return HealthSummary(
        samples=int(windows["workers"].sum()) if len(windows) else 0,
        windows=len(windows),
        saturated_windows=saturated,
        max_cpu_pct=peak("max_cpu_pct"),
        max_lag_ms=peak("max_lag_ms"),
        peak_rss_bytes=peak("rss_bytes"),
        trustworthy=saturated == 0,
    )
