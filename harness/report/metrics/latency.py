"""Latency per step from raw samples (ms as float, never rounded), and the CO view.

count = successful samples with a latency; failures = failed rows (rate-limited excluded,
counted apart). The coordinated-omission view (open-model runs) measures from the intended
start: latency + (actual start - intended start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.columns import SCHEDULE_LAG_US
from harness.report.metrics.common import (
    QUANTILES,
    failure_mask,
    quantiles,
    rate_limited_mask,
    sorted_quantiles,
    step_mask,
)

STAT_COLUMNS = (
    "count",
    "failures",
    "rate_limited",
    "mean_ms",
    *(f"{label}_ms" for label, _ in QUANTILES),
    "max_ms",
)


def _summary(
    values_ms: np.ndarray, failures: int, limited: int, *, presorted: bool = False
) -> dict[str, float]:
    qs = (sorted_quantiles if presorted else quantiles)(values_ms, tuple(q for _, q in QUANTILES))
    row: dict[str, float] = {
        "count": float(values_ms.size),
        "failures": float(failures),
        "rate_limited": float(limited),
        "mean_ms": float(values_ms.mean()) if values_ms.size else np.nan,
    }
    row.update({f"{label}_ms": float(v) for (label, _), v in zip(QUANTILES, qs, strict=True)})
    row["max_ms"] = float(values_ms.max()) if values_ms.size else np.nan
    return row


def step_samples_ms(events: pd.DataFrame, step: str) -> np.ndarray:
    """Successful latency samples of one step in ms (float64)."""
    mask = step_mask(events, step) & events[s.OK].to_numpy(dtype=bool)
    lat = events[s.LATENCY_US].to_numpy()[mask]
    return np.asarray(lat[~np.isnan(lat)] / 1000.0, dtype=np.float64)


def latency_samples(events: pd.DataFrame, steps: tuple[str, ...] = s.LATENCY_STEPS) -> pd.DataFrame:
    """Successful samples: columns step (categorical, in ``steps`` order), ts_ns, latency_ms;
    ascending latency within each step, so later quantile passes need no float sort."""
    ok = events[s.OK].to_numpy(dtype=bool)
    lat_all, ts_all = events[s.LATENCY_US].to_numpy(), events[s.TS_NS].to_numpy()
    parts = []
    for step in steps:
        mask = step_mask(events, step) & ok & ~np.isnan(lat_all)
        lat = lat_all[mask]
        # Non-negative float64s order like their int64 bit patterns; that sort is faster.
        order = np.argsort(lat.view(np.int64) if lat.size and lat.min() >= 0 else lat)
        parts.append((step, ts_all[mask][order], lat[order] / 1000.0))
    return pd.DataFrame(
        {
            "step": pd.Categorical.from_codes(
                np.repeat(np.arange(len(steps)), [p[1].size for p in parts]),
                categories=pd.Index(list(steps)),
            ),
            s.TS_NS: np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64),
            "latency_ms": np.concatenate([p[2] for p in parts]) if parts else np.empty(0),
        }
    )


def samples_of(samples: pd.DataFrame, step: str) -> pd.DataFrame:
    """The contiguous slice of one step in a latency_samples frame."""
    codes = samples["step"].cat.codes.to_numpy()
    code = list(samples["step"].cat.categories).index(step)
    lo, hi = np.searchsorted(codes, [code, code + 1])
    return samples.iloc[lo:hi]


def step_latency(
    events: pd.DataFrame,
    steps: tuple[str, ...] = s.LATENCY_STEPS,
    samples: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Index: step; columns STAT_COLUMNS (counts as int64, latencies in ms as float64)."""
    samples = latency_samples(events, steps) if samples is None else samples
    rows = []
    fail, limited = failure_mask(events), rate_limited_mask(events)
    for step in steps:
        mask = step_mask(events, step)
        values = samples_of(samples, step)["latency_ms"].to_numpy()
        failed, rl = int((mask & fail).sum()), int((mask & limited).sum())
        rows.append(_summary(values, failed, rl, presorted=True))
    table = pd.DataFrame(rows, index=pd.Index(list(steps), name="step"), columns=list(STAT_COLUMNS))
    return table.astype({"count": np.int64, "failures": np.int64, "rate_limited": np.int64})


def co_latency(events: pd.DataFrame, steps: tuple[str, ...] = s.LATENCY_STEPS) -> pd.DataFrame:
    """The same table measured from the intended start; only rows with ``intended_ns`` set.

    Empty (no rows) when the run was closed-model.
    """
    lag = events[SCHEDULE_LAG_US].to_numpy()
    has = ~np.isnan(lag)
    if not has.any():
        return pd.DataFrame(columns=list(STAT_COLUMNS), index=pd.Index([], name="step"))
    ok = events[s.OK].to_numpy(dtype=bool)
    lat = events[s.LATENCY_US].to_numpy()
    rows, names = [], []
    for step in steps:
        mask = step_mask(events, step) & has & ok & ~np.isnan(lat)
        if not mask.any():
            continue
        names.append(step)
        rows.append(_summary((lat[mask] + np.maximum(lag[mask], 0.0)) / 1000.0, 0, 0))
    table = pd.DataFrame(rows, index=pd.Index(names, name="step"), columns=list(STAT_COLUMNS))
    return table.drop(columns=["failures", "rate_limited"]).astype({"count": np.int64})


def latency_cdf(samples: pd.DataFrame, step: str, points: int = 400) -> pd.DataFrame:
    """Empirical CDF of a step, reduced to ``points`` quantiles: columns latency_ms, fraction."""
    values = samples_of(samples, step)["latency_ms"].to_numpy()
    if values.size == 0:
        return pd.DataFrame({"latency_ms": [], "fraction": []})
    fractions = np.linspace(0.0, 1.0, min(points, values.size))
    return pd.DataFrame(
        {"latency_ms": sorted_quantiles(values, tuple(fractions)), "fraction": fractions}
    )
