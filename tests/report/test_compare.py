"""``harness compare``: a known injected shift is a regression, the same distribution is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.record import schema as s
from harness.report.compare import CompareConfig, bootstrap_quantile, compare_latency, verdict

from .conftest import ev, write_run


def samples(seed: int, scale: float = 1.0, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = np.sort(rng.lognormal(np.log(100), 0.5, n) * scale)
    return pd.DataFrame(
        {
            "step": pd.Categorical([s.STEP_BOT_REPLY] * n, categories=list(s.LATENCY_STEPS)),
            s.TS_NS: np.zeros(n, dtype=np.int64),
            "latency_ms": values,
        }
    )


def test_injected_shift_is_a_regression() -> None:
    rows = compare_latency(samples(1), samples(2, scale=1.2), CompareConfig()).set_index("metric")
    for stat in ("mean", "p50", "p95", "p99"):
        assert rows.loc[f"botReply.{stat}_ms", "verdict"] == "regression"
    p50 = rows.loc["botReply.p50_ms"]
    assert p50["ci_low"] < p50["delta"] < p50["ci_high"]
    assert p50["delta"] == pytest.approx(20.0, rel=0.25)  # median 100 ms shifted by 20%
    better = compare_latency(samples(1), samples(2, scale=0.8), CompareConfig())
    assert set(better["verdict"]) == {"improvement"}


def test_same_distribution_is_no_change() -> None:
    rows = compare_latency(samples(3), samples(4), CompareConfig())
    assert set(rows["verdict"]) == {"no change"}
    assert (rows["ci_low"] <= rows["ci_high"]).all()


def test_bootstrap_quantile_spread_matches_theory() -> None:
    # Median of n uniforms: sd ~ 1 / (2 sqrt(n)) = 0.005 for n = 10000.
    x = np.sort(np.random.default_rng(5).random(10_000))
    reps = bootstrap_quantile(x, 0.5, 4000, np.random.default_rng(6))
    assert reps.std() == pytest.approx(0.005, rel=0.15)
    assert reps.mean() == pytest.approx(np.median(x), abs=0.001)


def test_verdict_rules() -> None:
    assert verdict(10.0, 2.0, 18.0, 5.0, higher_is_worse=True) == "regression"
    assert verdict(3.0, 1.0, 5.0, 5.0, higher_is_worse=True) == "no change"  # within tolerance
    assert verdict(10.0, -1.0, 21.0, 5.0, higher_is_worse=True) == "no change"  # CI spans 0
    assert verdict(-0.02, -0.03, -0.01, 0.005, higher_is_worse=False) == "regression"


def _run(tmp: Path, name: str, scale: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = [ev(s.STEP_CONNECT, 0, lat_ms=1.0, conn_id=i, user_id=i) for i in range(200)]
    rows += [
        ev(s.STEP_BOT_REPLY, i / 100, lat_ms=float(v))
        for i, v in enumerate(rng.lognormal(np.log(100), 0.3, 2000) * scale)
    ]
    rows += [ev(s.STEP_CLOSE, 30, conn_id=i, user_id=i, close_code=1000) for i in range(200)]
    return write_run(tmp / name, [rows])


def test_compare_cli_exit_codes_and_outputs(tmp_path: Path) -> None:
    base, same, slow = (
        _run(tmp_path, "base", 1.0, 1),
        _run(tmp_path, "same", 1.0, 2),
        _run(tmp_path, "slow", 1.3, 3),
    )
    assert main(["compare", str(base), str(same)]) == 0
    assert main(["compare", str(base), str(slow)]) == 1
    doc = json.loads((slow / "compare.json").read_text())
    assert doc["verdict"] == "regression"
    p95 = next(m for m in doc["metrics"] if m["metric"] == "botReply.p95_ms")
    assert p95["verdict"] == "regression"
    assert "| botReply.p95_ms |" in (slow / "compare.md").read_text()
    assert main(["compare", str(base), str(tmp_path / "missing")]) == 3
