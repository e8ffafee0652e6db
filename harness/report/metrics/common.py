"""Shared helpers of the report math: masks, the quantile definition, grouped quantiles.

Quantile definition (documented in report.md and the README): Hyndman-Fan type 7, the
linear interpolation between closest ranks that ``numpy.percentile(method="linear")`` and
Excel's PERCENTILE.INC use: for n sorted samples x[0..n-1] and q in [0, 1],
h = (n - 1)·q, Q(q) = x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.record import schema as s

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

QUANTILE_METHOD: Final = "linear"
QUANTILE_DEFINITION: Final = (
    "Hyndman-Fan type 7 (numpy 'linear', Excel PERCENTILE.INC): h = (n-1)q, "
    "Q = x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]) over all raw samples"
)
#: (label, q) of the percentiles every step summary reports.
QUANTILES: Final = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))


def step_mask(events: pd.DataFrame, step: str) -> BoolArray:
    """Rows of one step (works for categorical and plain string columns)."""
    return np.asarray(events[s.STEP] == step, dtype=bool)


def step_codes(events: pd.DataFrame) -> tuple[IntArray, list[str]]:
    """Integer code per row (-1 = null) and the step names the codes index."""
    col = events[s.STEP]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes, dtype=np.int64), [str(c) for c in col.cat.categories]
    codes, uniques = pd.factorize(col)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def rate_limited_mask(events: pd.DataFrame) -> BoolArray:
    """Requests refused by a rate limit: not failures (protocol.md §4.3), counted apart."""
    return np.asarray(events[s.ERROR] == s.ERR_RATE_LIMITED, dtype=bool)


def failure_mask(events: pd.DataFrame) -> BoolArray:
    """Failed rows: ``ok`` false and not rate-limited."""
    return ~np.asarray(events[s.OK], dtype=bool) & ~rate_limited_mask(events)


def quantiles(values: FloatArray, qs: tuple[float, ...]) -> FloatArray:
    """Type-7 quantiles of raw samples; NaN for an empty sample."""
    if values.size == 0:
        return np.full(len(qs), np.nan)
    return np.asarray(np.percentile(values, [q * 100 for q in qs], method=QUANTILE_METHOD))


def sorted_quantiles(sorted_values: FloatArray, qs: tuple[float, ...]) -> FloatArray:
    """Type-7 quantiles of an ascending sample by direct indexing (no partition pass)."""
    n = sorted_values.size
    if n == 0:
        return np.full(len(qs), np.nan)
    h = (n - 1) * np.asarray(qs, dtype=np.float64)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    return np.asarray(a + (h - lo) * (b - a), dtype=np.float64)


def _stable_int_argsort(groups: IntArray) -> IntArray:
    """Stable argsort; small non-negative ranges use uint16 so numpy picks radix sort."""
    if groups.size and groups.min() >= 0 and groups.max() < 2**16:
        return np.argsort(groups.astype(np.uint16), kind="stable")
    return np.argsort(groups, kind="stable")


def grouped_quantiles(
    groups: IntArray, values: FloatArray, qs: tuple[float, ...], *, presorted: bool = False
) -> tuple[IntArray, IntArray, FloatArray]:
    """Type-7 quantiles of ``values`` per integer group, vectorised (no per-group loop).

    ``presorted``: values are already ascending (skips the float sort).
    Returns (group ids ascending, sample counts, array [n_groups, len(qs)]).
    """
    if values.size == 0:
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, len(qs))))
    if presorted:
        order = _stable_int_argsort(groups)
    else:
        by_value = np.argsort(values, kind="stable")
        order = by_value[_stable_int_argsort(groups[by_value])]
    sorted_vals, gs = values[order], groups[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(gs)) + 1))
    counts = np.diff(np.concatenate((starts, [gs.size])))
    ids = gs[starts]
    out = np.empty((ids.size, len(qs)))
    for j, q in enumerate(qs):
        h = (counts - 1) * q
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, counts - 1)
        frac = h - lo
        a, b = sorted_vals[starts + lo], sorted_vals[starts + hi]
        out[:, j] = a + frac * (b - a)
    return ids.astype(np.int64), counts.astype(np.int64), out


def run_bounds_ns(events: pd.DataFrame) -> tuple[int, int]:
    """First and last event timestamp (epoch ns)."""
    ts = events[s.TS_NS].to_numpy()
    return int(ts.min()), int(ts.max())


def thin_rows(frame: pd.DataFrame, points: int) -> pd.DataFrame:
    """At most ``points`` evenly spaced rows, first and last kept (a curve looks the same)."""
    if len(frame) <= points:
        return frame
    return frame.iloc[np.unique(np.linspace(0, len(frame) - 1, points).astype(np.int64))]
