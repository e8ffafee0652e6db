"""Capacity: load levels by concurrency, per-level throughput and latency, and the knee.

Levels. The run is cut into the time-series windows (10 s by default). A window's concurrency
is its ``active_connections`` (timeseries.load_series: generator rows summed over workers, or
connections opened minus closed). The tolerance is half a step ``q``, the smallest of 1, 2, 5,
10, 20, 50 … that is >= peak / ``max_levels`` (so at most about ``max_levels`` levels).
Consecutive windows within the tolerance of their plateau's running mean form a plateau; a
plateau shorter than ``min_windows`` is a transition and is ignored; plateaus whose means are
within the tolerance are pooled into one level, labelled with the median active connections
of its windows. Idle windows (< 0.5 connections) and the last window, when the run ends inside
it (partial counts), belong to no level. A step shape gives one level per step (a transition
window near the next step joins it); a ramp gives one level per about q connections.

Knee (levels in ascending concurrency; the baseline is the lowest level measured with a
healthy generator): the first level where (a) botReply p95 > ``latency_factor`` x the
baseline's, or (b) the error rate > ``max_error_rate``, or (c) turns/s per connection <
``min_scaling`` x the baseline's (throughput stops scaling). A level with a saturated
generator window cannot define the knee (its latency includes generator queueing): it is
skipped and flagged. max sustainable concurrency = the highest healthy level below the knee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.columns import WINDOW_S
from harness.report.metrics.common import grouped_quantiles
from harness.report.metrics.latency import samples_of

LEVEL_QUANTILES = (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
LEVEL_STEPS = (s.STEP_BOT_REPLY, s.STEP_ON_MESSAGE)
LEVEL_COLUMNS = (
    "concurrency",
    "mean_active",
    "windows",
    "duration_s",
    "turns_per_s",
    "turns_per_s_per_conn",
    "requests_per_s",
    *(f"{st}_{q}" for st in LEVEL_STEPS for q, _ in LEVEL_QUANTILES),
    "error_rate",
    "rate_limited_rate",
    "connection_success_rate",
    "saturated_windows",
    "saturated",
)


@dataclass(frozen=True, slots=True)
class CapacityConfig:
    window_s: float = 10.0
    max_levels: int = 10
    min_windows: int = 2
    knee_latency_factor: float = 2.0
    max_error_rate: float = 0.01
    min_scaling: float = 0.7


@dataclass(frozen=True)
class Capacity:
    levels: pd.DataFrame
    knee: dict[str, Any] | None
    max_sustainable_concurrency: float | None
    max_tested_concurrency: float | None
    verdict_text: str
    quantum: float
    #: The SLO gate's value: max sustainable, else (no knee) the highest healthy level tested.
    gate_value: float


def level_quantum(peak: float, max_levels: int) -> float:
    """Smallest 1-2-5 step (>= 1) with at most ``max_levels`` levels up to ``peak``."""
    target = max(peak / max(max_levels, 1), 1.0)
    exp = 10 ** math.floor(math.log10(target))
    return float(next(m * exp for m in (1, 2, 5, 10) if m * exp >= target - 1e-9))


def _quantum(load: pd.DataFrame, config: CapacityConfig) -> float:
    active = load["active_connections"].to_numpy(dtype=np.float64)
    return level_quantum(float(np.nanmax(active)) if active.size else 0.0, config.max_levels)


def _plateaus(active: np.ndarray, usable: np.ndarray, tol: float) -> np.ndarray:
    """Plateau id per window (-1: unusable): a window joins the current plateau while it is
    within ``tol`` of the plateau's running mean. One pass over windows, not rows."""
    ids = np.full(active.size, -1, np.int64)
    pid, total, count = -1, 0.0, 0
    for i in range(active.size):
        if not usable[i]:
            count = 0
            continue
        if count == 0 or abs(active[i] - total / count) > tol:
            pid, total, count = pid + 1, 0.0, 0
        ids[i] = pid
        total, count = total + float(active[i]), count + 1
    return ids


def _pool(active: np.ndarray, ids: np.ndarray, min_windows: int, tol: float) -> np.ndarray:
    """Level code per window (-1: none), codes in ascending concurrency: plateaus shorter
    than ``min_windows`` are dropped; plateaus whose means are within ``tol`` are pooled."""
    frame = pd.DataFrame({"id": ids, "a": active})[ids >= 0]
    plateaus = frame.groupby("id")["a"].agg(["mean", "size"])
    plateaus = plateaus[plateaus["size"] >= min_windows].sort_values("mean")
    code_of: dict[int, int] = {}
    code, anchor = -1, -math.inf
    for pid, mean in zip(plateaus.index, plateaus["mean"], strict=True):
        if mean - anchor > tol:
            code, anchor = code + 1, float(mean)
        code_of[int(pid)] = code
    return np.asarray([code_of.get(int(i), -1) for i in ids], dtype=np.int64)


def level_windows(load: pd.DataFrame, span_s: float, config: CapacityConfig) -> pd.DataFrame:
    """One row per window: window_start_s, active_connections, level (code, -1 = none),
    concurrency (the median active connections of the window's level; NaN = none)."""
    active = load["active_connections"].to_numpy(dtype=np.float64)
    tol = _quantum(load, config) / 2
    starts = load[WINDOW_S].to_numpy(dtype=np.float64)
    # the last window is partial when the run ends inside it; idle windows are no level
    usable = (starts + config.window_s <= span_s + 1e-9) & (active >= 0.5)
    code = _pool(active, _plateaus(active, usable, tol), config.min_windows, tol)
    medians = pd.Series(active[code >= 0]).groupby(code[code >= 0]).median()
    label = np.full(active.size, np.nan)
    label[code >= 0] = medians.reindex(code[code >= 0]).to_numpy()
    return pd.DataFrame(
        {WINDOW_S: starts, "active_connections": active, "level": code, "concurrency": label}
    )


def _level_quantiles(
    samples: pd.DataFrame, level_of_window: np.ndarray, t0_ns: int, window_s: float, n: int
) -> dict[str, np.ndarray]:
    """Exact p50/p95/p99 of botReply and onMessage per level from the raw samples."""
    width = round(window_s * 1e9)
    out: dict[str, np.ndarray] = {}
    for step in LEVEL_STEPS:
        part = samples_of(samples, step) if step in samples["step"].cat.categories else None
        cols = np.full((n, len(LEVEL_QUANTILES)), np.nan)
        if part is not None and len(part):
            win = (part[s.TS_NS].to_numpy() - t0_ns) // width
            lvl = level_of_window[np.clip(win, 0, level_of_window.size - 1)]
            lvl[(win < 0) | (win >= level_of_window.size)] = -1
            ok = lvl >= 0
            ids, _, qs = grouped_quantiles(
                lvl[ok],
                part["latency_ms"].to_numpy()[ok],
                tuple(q for _, q in LEVEL_QUANTILES),
                presorted=True,
            )
            cols[ids] = qs
        for j, (name, _) in enumerate(LEVEL_QUANTILES):
            out[f"{step}_{name}"] = cols[:, j]
    return out


def _step_counts(steps: pd.DataFrame, step: str, windows: pd.DataFrame) -> pd.DataFrame:
    """Successes (count) and failures of one step per window, aligned with ``windows``."""
    part = steps.loc[steps["step"] == step, [WINDOW_S, "count", "failures"]]
    aligned = windows[[WINDOW_S]].merge(part, on=WINDOW_S, how="left")
    return aligned[["count", "failures"]].fillna(0)


def _level_sums(load: pd.DataFrame, steps: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """Per level code: mean active, windows and summed counts of its windows."""
    bot = _step_counts(steps, s.STEP_BOT_REPLY, windows)
    conn = _step_counts(steps, s.STEP_CONNECT, windows)
    saturated = load["saturated"] if "saturated" in load else pd.Series(False, index=load.index)
    per_window = pd.DataFrame(
        {
            "code": windows["level"].to_numpy(),
            "active": windows["active_connections"].to_numpy(),
            "turns": bot["count"].to_numpy(),
            "requests": load["requests"].to_numpy(),
            "errors": load["errors"].to_numpy(),
            "rate_limited": load["rate_limited"].to_numpy(),
            "conn_ok": conn["count"].to_numpy(),
            "conn_failed": conn["failures"].to_numpy(),
            "saturated": saturated.to_numpy(dtype=bool),
        }
    )
    return (
        per_window[per_window["code"] >= 0]
        .groupby("code")
        .agg(
            mean_active=("active", "mean"),
            windows=("active", "size"),
            turns=("turns", "sum"),
            requests=("requests", "sum"),
            errors=("errors", "sum"),
            rate_limited=("rate_limited", "sum"),
            conn_ok=("conn_ok", "sum"),
            conn_failed=("conn_failed", "sum"),
            saturated_windows=("saturated", "sum"),
        )
    )


def capacity_levels(
    load: pd.DataFrame,
    steps: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    t0_ns: int,
    span_s: float,
    config: CapacityConfig = CapacityConfig(),
) -> pd.DataFrame:
    """One row per load level (ascending concurrency), columns LEVEL_COLUMNS.

    ``load``: load_series at ``config.window_s`` with ``saturated``; ``steps``: step_series
    with failures at the same window; ``samples``: latency_samples (sorted per step).
    """
    windows = level_windows(load, span_s, config)
    code = windows["level"].to_numpy()
    levels = windows.loc[code >= 0].groupby("level")["concurrency"].first().to_numpy()
    g = _level_sums(load, steps, windows).reindex(np.arange(levels.size))
    duration = g["windows"].to_numpy(dtype=np.float64) * config.window_s
    turns_s = g["turns"].to_numpy(dtype=np.float64) / duration
    attempts = (g["conn_ok"] + g["conn_failed"]).to_numpy(dtype=np.float64)
    requests = g["requests"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame(
            {
                "concurrency": levels,
                "mean_active": g["mean_active"].to_numpy(dtype=np.float64),
                "windows": g["windows"].to_numpy(dtype=np.int64),
                "duration_s": duration,
                "turns_per_s": turns_s,
                "turns_per_s_per_conn": turns_s / g["mean_active"].to_numpy(dtype=np.float64),
                "requests_per_s": requests / duration,
                **_level_quantiles(samples, code, t0_ns, config.window_s, levels.size),
                "error_rate": np.where(requests > 0, g["errors"].to_numpy() / requests, np.nan),
                "rate_limited_rate": np.where(
                    requests > 0, g["rate_limited"].to_numpy() / requests, np.nan
                ),
                "connection_success_rate": np.where(
                    attempts > 0, g["conn_ok"].to_numpy() / attempts, np.nan
                ),
                "saturated_windows": g["saturated_windows"].to_numpy(dtype=np.int64),
            }
        )
    frame["saturated"] = frame["saturated_windows"] > 0
    return frame[list(LEVEL_COLUMNS)]


def _knee_reasons(row: pd.Series, base: pd.Series, config: CapacityConfig) -> list[str]:
    """Which knee conditions a level meets relative to the baseline (NaN never triggers)."""
    reasons = []
    p95, base_p95 = row["botReply_p95_ms"], base["botReply_p95_ms"]
    if p95 > config.knee_latency_factor * base_p95:
        reasons.append(
            f"botReply p95 {p95:.3f} ms > {config.knee_latency_factor:g} x {base_p95:.3f} ms "
            f"at {base['concurrency']:g}"
        )
    if row["error_rate"] > config.max_error_rate:
        reasons.append(
            f"error rate {row['error_rate'] * 100:.3f}% > {config.max_error_rate * 100:g}%"
        )
    per, base_per = row["turns_per_s_per_conn"], base["turns_per_s_per_conn"]
    limited = float(row.get("rate_limited_rate", 0.0))
    limited_note = (
        f", with {limited * 100:.1f}% of its requests rate-limited by the server"
        if limited > 0
        else ""
    )
    if per < config.min_scaling * base_per:
        reasons.append(
            f"turns/s per connection {per:.4f} < {config.min_scaling * 100:g}% of "
            f"{base_per:.4f} at {base['concurrency']:g} (throughput stopped scaling)" + limited_note
        )
    return reasons


def find_knee(
    levels: pd.DataFrame, config: CapacityConfig = CapacityConfig(), quantum: float = math.nan
) -> Capacity:
    """Apply the knee rule (module docstring) to a capacity_levels frame."""
    n, q = len(levels), quantum
    if n < 2:
        text = "insufficient: one load level" if n == 1 else "insufficient: no load level"
        return Capacity(levels, None, None, None, text + " (need >= 2)", q, math.nan)
    healthy = levels[~levels["saturated"].to_numpy(dtype=bool)]
    skipped = levels.loc[levels["saturated"].to_numpy(dtype=bool), "concurrency"].tolist()
    note = (
        f" Level(s) {', '.join(f'{c:g}' for c in skipped)} were measured with a saturated "
        "generator and cannot define the knee."
        if skipped
        else ""
    )
    if healthy.empty:
        text = "insufficient: every level was measured with a saturated generator."
        return Capacity(levels, None, None, None, text, q, math.nan)
    base = healthy.iloc[0]
    for i in range(len(healthy)):
        row = healthy.iloc[i]
        reasons = _knee_reasons(row, base, config)
        if not reasons:
            continue
        below = healthy.iloc[:i]
        best = float(below["concurrency"].iloc[-1]) if len(below) else None
        knee = {"concurrency": float(row["concurrency"]), "reasons": reasons}
        text = (
            f"knee at {row['concurrency']:g} connections ({'; '.join(reasons)}); "
            + (
                f"max sustainable concurrency {best:g}."
                if best is not None
                else "no level below it was sustainable."
            )
            + note
        )
        tested = float(healthy["concurrency"].max())
        return Capacity(levels, knee, best, tested, text, q, 0.0 if best is None else best)
    top = float(healthy["concurrency"].max())
    text = f"no knee up to {top:g} connections (highest healthy level tested).{note}"
    return Capacity(levels, None, None, top, text, q, top)


def analyse_capacity(
    load: pd.DataFrame,
    steps: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    t0_ns: int,
    span_s: float,
    config: CapacityConfig = CapacityConfig(),
) -> Capacity:
    """Levels and knee of a run (arguments as in capacity_levels)."""
    levels = capacity_levels(load, steps, samples, t0_ns=t0_ns, span_s=span_s, config=config)
    return find_knee(levels, config, _quantum(load, config))
