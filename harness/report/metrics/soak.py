"""Soak drift: least-squares slope per hour of windowed p95 latency, error rate and
generator RSS, with a verdict and the evidence behind it.

A metric is *drifting* when the fitted change over the run exceeds ``tolerance`` of its
mean level (``abs_floor`` for rates that start near zero) AND the slope is at least
``min_t`` standard errors away from zero; fewer than ``min_windows`` windows, or windows
spanning less than ``min_span_s`` (10 min), → insufficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.report.columns import WINDOW_S

SOAK_COLUMNS = (
    "metric",
    "unit",
    "windows",
    "slope_per_hour",
    "fit_start",
    "fit_end",
    "relative_change",
    "t_stat",
    "verdict",
    "evidence",
)


@dataclass(frozen=True, slots=True)
class DriftRule:
    tolerance: float = 0.10
    abs_floor: float = 0.0
    min_t: float = 3.0
    min_windows: int = 5
    min_span_s: float = 600.0  # a slope per hour from a few seconds says nothing


def soak_window_s(duration_s: float, available: tuple[float, ...] = ()) -> float:
    """The largest already computed window that still gives >= 20 windows; else a window
    giving ~20 windows (>= 1 s)."""
    fitting = [w for w in available if duration_s / w >= 20]
    if fitting:
        return max(fitting)
    return max(1.0, float(np.ceil(duration_s / 20)))


def drift(
    t_s: np.ndarray, values: np.ndarray, metric: str, unit: str, rule: DriftRule
) -> dict[str, object]:
    """Fit value = a + b·t (t in hours); return one SOAK_COLUMNS row."""
    keep = ~np.isnan(values)
    t_h, y = t_s[keep] / 3600.0, values[keep]
    row: dict[str, object] = {"metric": metric, "unit": unit, "windows": int(y.size)}
    span_s = float(np.ptp(t_s[keep])) if y.size else 0.0
    if y.size < rule.min_windows or span_s < rule.min_span_s:
        row.update(slope_per_hour=np.nan, fit_start=np.nan, fit_end=np.nan, relative_change=np.nan)
        row.update(t_stat=np.nan, verdict="insufficient")
        row["evidence"] = (
            f"{y.size} windows over {span_s:.0f} s; need >= {rule.min_windows} windows "
            f"spanning >= {rule.min_span_s:.0f} s"
        )
        return row
    slope, intercept = np.polyfit(t_h, y, 1)
    resid = y - (intercept + slope * t_h)
    sxx = float(((t_h - t_h.mean()) ** 2).sum())
    se = float(np.sqrt((resid**2).sum() / max(y.size - 2, 1) / sxx)) if sxx else np.inf
    t_stat = float(slope / se) if se > 0 else (np.inf if slope else 0.0)
    start, end = intercept + slope * t_h.min(), intercept + slope * t_h.max()
    level = max(abs(float(y.mean())), 1e-12)
    change = float(end - start)
    relative = change / level
    drifting = (
        abs(change) > max(rule.tolerance * level, rule.abs_floor) and abs(t_stat) >= rule.min_t
    )
    row.update(
        slope_per_hour=float(slope),
        fit_start=float(start),
        fit_end=float(end),
        relative_change=relative,
        t_stat=t_stat,
        verdict="drifting" if drifting else "stable",
    )
    row["evidence"] = (
        f"fit {start:.4g} → {end:.4g} {unit} over {np.ptp(t_h):.2f} h "
        f"({slope:+.4g} {unit}/h, {relative:+.1%} of mean {y.mean():.4g}, t={t_stat:.1f}, "
        f"{y.size} windows)"
    )
    return row


def soak_analysis(
    step_series: pd.DataFrame,
    load_series: pd.DataFrame,
    health: pd.DataFrame,
    rules: dict[str, DriftRule] | None = None,
) -> pd.DataFrame:
    """Drift rows for p95 of every step with data, the error rate and generator RSS.

    Inputs are the windowed frames of timeseries.py / health.py at the soak window size.
    """
    rules = rules or {}
    rows = []
    for step, grp in step_series.groupby("step", sort=True):
        rows.append(
            drift(
                grp[WINDOW_S].to_numpy(float),
                grp["p95_ms"].to_numpy(float),
                f"{step}.p95",
                "ms",
                rules.get("latency", DriftRule()),
            )
        )
    attempts = (load_series["requests"]).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(attempts > 0, load_series["errors"].to_numpy(float) / attempts, np.nan)
    rows.append(
        drift(
            load_series[WINDOW_S].to_numpy(float),
            rate,
            "errors.rate",
            "fraction",
            rules.get("errors", DriftRule(abs_floor=0.005)),
        )
    )
    if len(health) and health["rss_bytes"].notna().any():
        rows.append(
            drift(
                health[WINDOW_S].to_numpy(float),
                health["rss_bytes"].to_numpy(float) / 2**20,
                "generator.rss",
                "MiB",
                rules.get("rss", DriftRule()),
            )
        )
    return pd.DataFrame(rows, columns=list(SOAK_COLUMNS))
