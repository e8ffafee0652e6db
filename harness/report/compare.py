"""Compare two runs: per-step percentile deltas with bootstrap confidence intervals,
success-rate and close-code share deltas, and a verdict per metric.

Bootstrap of a quantile without resampling every sample: in a bootstrap resample of size m
drawn from the empirical distribution, the k-th order statistic is F̂⁻¹(U) with
U ~ Beta(k, m - k + 1); so a replicate costs one Beta draw and all raw samples are used
(the resampled statistic is the nearest-rank quantile, k = ⌈q·m⌉). Means use the normal
approximation, rates the Wald interval for a difference of proportions.

Verdict: *regression* when the interval excludes zero on the bad side AND the point delta
exceeds the tolerance (statistically and practically significant); *improvement* likewise on
the good side; otherwise *no change*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import quantiles
from harness.report.metrics.connections import ConnectionSummary
from harness.report.metrics.latency import samples_of

COMPARE_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
ROW_COLUMNS = (
    "metric",
    "base",
    "candidate",
    "delta",
    "ci_low",
    "ci_high",
    "tolerance",
    "verdict",
)
#: Close codes that are not failures: their share is shown, never judged.
NEUTRAL_CODES = frozenset({1000, 1001})


@dataclass(frozen=True, slots=True)
class CompareConfig:
    confidence: float = 0.95
    tolerance_rel: float = 0.05  # latency: fraction of the base value
    tolerance_ms: float = 1.0  # latency: absolute floor
    tolerance_rate: float = 0.005  # success rate / close-code share: absolute
    resamples: int = 2000
    seed: int = 0


def verdict(delta: float, lo: float, hi: float, tolerance: float, higher_is_worse: bool) -> str:
    """regression / improvement / no change (see module docstring)."""
    if any(math.isnan(x) for x in (delta, lo, hi)):
        return "insufficient data"
    worse = (lo > 0 and delta > tolerance) if higher_is_worse else (hi < 0 and -delta > tolerance)
    better = (hi < 0 and -delta > tolerance) if higher_is_worse else (lo > 0 and delta > tolerance)
    return "regression" if worse else "improvement" if better else "no change"


def bootstrap_quantile(
    sorted_x: np.ndarray, q: float, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``resamples`` bootstrap replicates of the q-quantile of an ascending sample."""
    m = sorted_x.size
    k = min(max(1, math.ceil(q * m)), m)
    u = rng.beta(k, m - k + 1, resamples)
    idx = np.clip(np.ceil(u * m).astype(np.int64) - 1, 0, m - 1)
    return np.asarray(sorted_x[idx], dtype=np.float64)


def _latency_rows(
    step: str, b: np.ndarray, c: np.ndarray, cfg: CompareConfig, rng: np.random.Generator
) -> list[dict[str, object]]:
    alpha = 1 - cfg.confidence
    rows: list[dict[str, object]] = []
    if b.size == 0 or c.size == 0:
        return rows
    z = NormalDist().inv_cdf(1 - alpha / 2)
    bm, cm = float(b.mean()), float(c.mean())
    se = (
        math.sqrt(b.var(ddof=1) / b.size + c.var(ddof=1) / c.size)
        if min(b.size, c.size) > 1
        else math.nan
    )
    stats = [("mean", bm, cm, cm - bm - z * se, cm - bm + z * se)]
    point_b = quantiles(b, tuple(q for _, q in COMPARE_QUANTILES))
    point_c = quantiles(c, tuple(q for _, q in COMPARE_QUANTILES))
    for (label, q), pb, pc in zip(COMPARE_QUANTILES, point_b, point_c, strict=True):
        deltas = bootstrap_quantile(c, q, cfg.resamples, rng) - bootstrap_quantile(
            b, q, cfg.resamples, rng
        )
        lo, hi = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
        stats.append((label, float(pb), float(pc), float(lo), float(hi)))
    for label, vb, vc, lo, hi in stats:
        tol = max(cfg.tolerance_rel * abs(vb), cfg.tolerance_ms)
        rows.append(
            dict(
                zip(
                    ROW_COLUMNS,
                    (
                        f"{step}.{label}_ms",
                        vb,
                        vc,
                        vc - vb,
                        lo,
                        hi,
                        tol,
                        verdict(vc - vb, lo, hi, tol, True),
                    ),
                    strict=True,
                )
            )
        )
    return rows


def compare_latency(base: pd.DataFrame, cand: pd.DataFrame, cfg: CompareConfig) -> pd.DataFrame:
    """Rows per step and statistic (mean, p50, p95, p99) from two latency_samples frames."""
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for step in s.LATENCY_STEPS:
        b = samples_of(base, step)["latency_ms"].to_numpy()
        c = samples_of(cand, step)["latency_ms"].to_numpy()
        rows += _latency_rows(step, b, c, cfg, rng)
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


@dataclass(frozen=True)
class ScenarioSamples:
    """One side of a scripted run: per scenario (completed, judged conversations) and the
    ascending latency samples (ms) of each wait step."""

    completion: dict[str, tuple[int, int]]
    steps: dict[tuple[str, int], np.ndarray]


def scenario_samples(events: pd.DataFrame) -> ScenarioSamples:
    """What ``compare_scenarios`` needs, from raw events (empty for an unscripted run)."""
    if s.SCENARIO not in events or events[s.SCENARIO].isna().all():
        return ScenarioSamples({}, {})
    names = events[s.SCENARIO].astype(object)
    ends = events[(events[s.STEP] == s.STEP_SCENARIO) & (events[s.ERROR] != s.ERR_STOPPED)]
    completion = {
        str(name): (int(group[s.OK].sum()), len(group))
        for name, group in ends.groupby(names[ends.index], observed=True)
    }
    waits = events[(events[s.STEP] == s.STEP_SCRIPT_REPLY) & events[s.OK]]
    steps = {
        (str(name), int(float(str(number)))): np.sort(
            group[s.LATENCY_US].dropna().to_numpy() / 1000.0
        )
        for (name, number), group in waits.groupby(
            [names[waits.index], waits[s.SCRIPT_STEP]], observed=True
        )
    }
    return ScenarioSamples(completion, steps)


def compare_scenarios(
    base: ScenarioSamples, cand: ScenarioSamples, cfg: CompareConfig
) -> pd.DataFrame:
    """Per scenario in both runs: completion rate, and each wait step's mean/p50/p95/p99."""
    rng = np.random.default_rng(cfg.seed + 1)
    rows: list[dict[str, object]] = []
    for name in sorted(set(base.completion) & set(cand.completion)):
        rows.append(
            _proportion_row(
                f"scenarios.{name}.completion_rate",
                base.completion[name],
                cand.completion[name],
                cfg,
                higher_is_worse=False,
            )
        )
    for key in sorted(set(base.steps) & set(cand.steps)):
        name, number = key
        rows += _latency_rows(f"{name} #{number} reply", base.steps[key], cand.steps[key], cfg, rng)
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def _proportion_row(
    metric: str,
    base: tuple[int, int],
    cand: tuple[int, int],
    cfg: CompareConfig,
    higher_is_worse: bool | None,
) -> dict[str, object]:
    """One row for a proportion: ``base`` and ``cand`` are (hits, trials)."""
    (kb, nb), (kc, nc) = base, cand
    pb = kb / nb if nb else math.nan
    pc = kc / nc if nc else math.nan
    z = NormalDist().inv_cdf(1 - (1 - cfg.confidence) / 2)
    se = math.sqrt(pb * (1 - pb) / nb + pc * (1 - pc) / nc) if nb and nc else math.nan
    # Floor the standard error at one event in the larger run so 0-vs-0 is never "certain".
    se = max(se, 1 / max(nb, nc, 1)) if not math.isnan(se) else se
    delta = pc - pb
    lo, hi = delta - z * se, delta + z * se
    v = (
        "info"
        if higher_is_worse is None
        else verdict(delta, lo, hi, cfg.tolerance_rate, higher_is_worse)
    )
    return dict(
        zip(ROW_COLUMNS, (metric, pb, pc, delta, lo, hi, cfg.tolerance_rate, v), strict=True)
    )


def compare_rates(
    base: ConnectionSummary,
    cand: ConnectionSummary,
    base_closes: pd.DataFrame,
    cand_closes: pd.DataFrame,
    cfg: CompareConfig,
) -> pd.DataFrame:
    """Success rate and the share of every close code seen in either run."""
    rows = [
        _proportion_row(
            "connections.success_rate",
            (base.succeeded, base.attempted - base.rate_limited),
            (cand.succeeded, cand.attempted - cand.rate_limited),
            cfg,
            higher_is_worse=False,
        )
    ]
    nb, nc = int(base_closes["count"].sum()), int(cand_closes["count"].sum())
    cb = dict(
        zip(base_closes["close_code"].astype(int), base_closes["count"].astype(int), strict=True)
    )
    cc = dict(
        zip(cand_closes["close_code"].astype(int), cand_closes["count"].astype(int), strict=True)
    )
    for code in sorted(set(cb) | set(cc)):
        rows.append(
            _proportion_row(
                f"close_codes.{code}.share",
                (cb.get(code, 0), nb),
                (cc.get(code, 0), nc),
                cfg,
                None if code in NEUTRAL_CODES else True,
            )
        )
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def overall(rows: pd.DataFrame) -> str:
    """'regression' if any metric regressed, else 'improvement' if any improved, else
    'no change'."""
    verdicts = set(rows["verdict"])
    return (
        "regression"
        if "regression" in verdicts
        else "improvement"
        if "improvement" in verdicts
        else "no change"
    )
