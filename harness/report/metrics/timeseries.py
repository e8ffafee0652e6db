"""Time series in fixed windows (1 s and 10 s): throughput, errors, active connections,
p50/p95/p99 per step. Windows come from integer bucketing of ``ts_ns``; no per-row loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.columns import WINDOW_S
from harness.report.metrics.common import (
    failure_mask,
    grouped_quantiles,
    rate_limited_mask,
    step_codes,
    step_mask,
)
from harness.report.metrics.latency import samples_of

SERIES_QUANTILES = (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
#: Steps that are requests (throughput counts them; generator/close/integrity rows are not,
#: nor botAnswer: it measures the same turn as botReply).
REQUEST_STEPS = (*(st for st in s.LATENCY_STEPS if st != s.STEP_BOT_ANSWER), s.STEP_TYPING)


def window_index(events: pd.DataFrame, t0_ns: int, window_s: float) -> np.ndarray:
    """Window number of every row: ⌊(ts - t0) / window⌋ as int64."""
    width = round(window_s * 1e9)
    return np.asarray((events[s.TS_NS].to_numpy() - t0_ns) // width, dtype=np.int64)


def step_series(samples: pd.DataFrame, t0_ns: int, window_s: float) -> pd.DataFrame:
    """Long format, one row per (window, step) with samples: window_start_s, step, count,
    p50_ms, p95_ms, p99_ms. ``samples`` is a latency.latency_samples frame."""
    frames = [
        pd.DataFrame(
            {WINDOW_S: [], "step": [], "count": [], **{n: [] for n, _ in SERIES_QUANTILES}}
        )
    ]
    for step in samples["step"].cat.categories:
        part = samples_of(samples, step)
        ids, counts, qs = grouped_quantiles(
            window_index(part, t0_ns, window_s),
            part["latency_ms"].to_numpy(),
            tuple(q for _, q in SERIES_QUANTILES),
            presorted=True,
        )
        frame = pd.DataFrame({WINDOW_S: ids * window_s, "step": step, "count": counts})
        for j, (name, _) in enumerate(SERIES_QUANTILES):
            frame[name] = qs[:, j]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True).astype({"step": str, "count": np.int64})
    return out.sort_values([WINDOW_S, "step"], ignore_index=True)


def failed_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The failed latency-step rows (rate-limited excluded): columns ts_ns, step."""
    codes, names = step_codes(events)
    wanted = [i for i, name in enumerate(names) if name in s.LATENCY_STEPS]
    fail = failure_mask(events) & np.isin(codes, wanted)
    return pd.DataFrame(
        {
            s.TS_NS: events[s.TS_NS].to_numpy()[fail],
            "step": np.asarray([*names, ""], dtype=object)[codes[fail]],
        }
    )


def with_failures(
    series: pd.DataFrame, failed: pd.DataFrame, t0_ns: int, window_s: float
) -> pd.DataFrame:
    """Add ``failures`` per (window, step) from a failed_rows frame to a step_series frame;
    windows where a step only failed get a row with count 0 and no percentiles."""
    width = round(window_s * 1e9)
    windows = ((failed[s.TS_NS].to_numpy() - t0_ns) // width) * window_s
    keyed = pd.DataFrame({WINDOW_S: windows, "step": failed["step"].to_numpy()})
    counts = keyed.groupby([WINDOW_S, "step"]).size().rename("failures").reset_index()
    out = series.merge(counts, on=[WINDOW_S, "step"], how="outer")
    out["count"] = out["count"].fillna(0).astype(np.int64)
    out["failures"] = out["failures"].fillna(0).astype(np.int64)
    return out.sort_values([WINDOW_S, "step"], ignore_index=True)


def _active_from_generator(events: pd.DataFrame, win: np.ndarray, n: int) -> np.ndarray | None:
    """Sum over workers of each worker's mean reported active connections per window."""
    mask = step_mask(events, s.STEP_GENERATOR)
    active = events[s.ACTIVE_CONNECTIONS].to_numpy()[mask]
    if not mask.any() or np.isnan(active).all():
        return None
    frame = pd.DataFrame(
        {"w": win[mask], "worker": events[s.WORKER_ID][mask].to_numpy(), "a": active}
    )
    per_worker = frame.groupby(["w", "worker"], observed=True, dropna=False)["a"].mean()
    total = per_worker.groupby(level="w").sum()
    series = total.reindex(np.arange(n), fill_value=np.nan)
    return np.asarray(series.ffill().fillna(0.0).to_numpy(), dtype=np.float64)


def _active_from_events(events: pd.DataFrame, win: np.ndarray, n: int) -> np.ndarray:
    """Fallback: connections opened minus connections closed up to each window's end."""
    opened = step_mask(events, s.STEP_CONNECT) & events[s.OK].to_numpy(dtype=bool)
    closed = step_mask(events, s.STEP_CLOSE)
    delta = np.bincount(win[opened], minlength=n)[:n] - np.bincount(win[closed], minlength=n)[:n]
    return np.cumsum(delta).astype(np.float64)


def load_series(events: pd.DataFrame, t0_ns: int, window_s: float) -> pd.DataFrame:
    """One row per window from t0 to the last event: window_start_s, requests, throughput_rps,
    errors, rate_limited, connects, closes, active_connections.

    One bincount over (window, step) gives every per-step count at once.
    """
    win = window_index(events, t0_ns, window_s)
    n = int(win.max()) + 1
    codes, names = step_codes(events)
    k = len(names) + 1  # last slot: null step
    per_step = np.bincount(win * k + np.where(codes < 0, k - 1, codes), minlength=n * k)
    per_step = per_step.reshape(n, k)

    def column(*steps: str) -> np.ndarray:
        idx = [names.index(st) for st in steps if st in names]
        return per_step[:, idx].sum(axis=1) if idx else np.zeros(n, np.int64)

    counted = set(REQUEST_STEPS) | {s.STEP_ERROR}
    counted_codes = [i for i, name in enumerate(names) if name in counted]
    fail = failure_mask(events) & np.isin(codes, counted_codes)
    requests = column(*REQUEST_STEPS)
    active = _active_from_generator(events, win, n)
    return pd.DataFrame(
        {
            WINDOW_S: np.arange(n) * window_s,
            "requests": requests,
            "throughput_rps": requests / window_s,
            "errors": np.bincount(win[fail], minlength=n)[:n],
            "rate_limited": np.bincount(win[rate_limited_mask(events)], minlength=n)[:n],
            "connects": column(s.STEP_CONNECT),
            "closes": column(s.STEP_CLOSE),
            "active_connections": active
            if active is not None
            else _active_from_events(events, win, n),
        }
    )


def coarsen_load_series(
    fine: pd.DataFrame, fine_s: float, window_s: float, events: pd.DataFrame, t0_ns: int
) -> pd.DataFrame:
    """load_series at ``window_s`` (a whole multiple of ``fine_s``) from a finer one: counts
    are summed exactly; active connections are recomputed from the events."""
    factor = round(window_s / fine_s)
    group = np.arange(len(fine)) // factor
    counts = ["requests", "errors", "rate_limited", "connects", "closes"]
    summed = fine[counts].groupby(group).sum()
    n = len(summed)
    win = window_index(events, t0_ns, window_s)
    active = _active_from_generator(events, win, n)
    return pd.DataFrame(
        {
            WINDOW_S: np.arange(n) * window_s,
            "requests": summed["requests"].to_numpy(),
            "throughput_rps": summed["requests"].to_numpy() / window_s,
            "errors": summed["errors"].to_numpy(),
            "rate_limited": summed["rate_limited"].to_numpy(),
            "connects": summed["connects"].to_numpy(),
            "closes": summed["closes"].to_numpy(),
            "active_connections": active
            if active is not None
            else _active_from_events(events, win, n),
        }
    )
