"""Report math on synthetic event frames with hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from harness.record import schema as s
from harness.report.metrics.closes import close_code_table
from harness.report.metrics.common import grouped_quantiles, sorted_quantiles
from harness.report.metrics.connections import connection_summary, failure_reasons
from harness.report.metrics.health import HealthThresholds, health_summary, health_windows
from harness.report.metrics.integrity import integrity_counts
from harness.report.metrics.latency import co_latency, latency_samples, step_latency
from harness.report.metrics.timeseries import load_series, step_series

from .conftest import T0, ev, frame


def test_step_latency_exact_type7_percentiles() -> None:
    # botReply samples 1..10 ms; type 7: h = 9q, Q = x[floor h] + frac * gap (gap = 1 ms).
    rows = [ev(s.STEP_BOT_REPLY, i, lat_ms=float(i)) for i in range(1, 11)]
    rows += [ev(s.STEP_BOT_REPLY, 11, ok=False, error="timeout")]
    rows += [ev(s.STEP_BOT_REPLY, 12, ok=False, error=s.ERR_RATE_LIMITED)]
    table = step_latency(frame(rows), steps=(s.STEP_BOT_REPLY,))
    expected = pd.DataFrame(
        {
            "count": [10],
            "failures": [1],
            "rate_limited": [1],
            "mean_ms": [5.5],
            "p50_ms": [5.5],
            "p90_ms": [9.1],
            "p95_ms": [9.55],
            "p99_ms": [9.91],
            "p999_ms": [9.991],
            "max_ms": [10.0],
        },
        index=pd.Index([s.STEP_BOT_REPLY], name="step"),
    )
    pdt.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12)


def test_latency_is_not_rounded_to_whole_ms() -> None:
    rows = [ev(s.STEP_ECHO, 0, lat_ms=0.123), ev(s.STEP_ECHO, 1, lat_ms=0.457)]
    table = step_latency(frame(rows), steps=(s.STEP_ECHO,))
    assert table.loc[s.STEP_ECHO, "p50_ms"] == pytest.approx(0.29)
    assert table.loc[s.STEP_ECHO, "max_ms"] == pytest.approx(0.457)


def test_empty_step_gives_nan_not_zero() -> None:
    table = step_latency(frame([ev(s.STEP_ECHO, 0, lat_ms=1.0)]), steps=(s.STEP_CONNECT,))
    assert table.loc[s.STEP_CONNECT, "count"] == 0
    assert np.isnan(table.loc[s.STEP_CONNECT, "p99_ms"])


def test_sorted_and_grouped_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(size=1001)
    groups = rng.integers(0, 7, size=values.size)
    qs = (0.0, 0.5, 0.95, 0.99, 1.0)
    ids, counts, got = grouped_quantiles(groups, values, qs)
    for i, g in enumerate(ids):
        want = np.percentile(values[groups == g], [q * 100 for q in qs], method="linear")
        np.testing.assert_allclose(got[i], want, rtol=1e-12)
        assert counts[i] == (groups == g).sum()
    np.testing.assert_allclose(
        sorted_quantiles(np.sort(values), qs), np.percentile(values, [0, 50, 95, 99, 100])
    )


def test_connection_success_and_failure_reasons() -> None:
    rows = [ev(s.STEP_CONNECT, i, lat_ms=1.0) for i in range(6)]
    rows += [ev(s.STEP_CONNECT, 7, ok=False, error="http_403", http_status=403)] * 2
    rows += [ev(s.STEP_CONNECT, 8, ok=False, error=s.ERR_TIMEOUT)]
    rows += [ev(s.STEP_CONNECT, 9, ok=False, error=s.ERR_RATE_LIMITED)]
    events = frame(rows)
    summary = connection_summary(events)
    assert (summary.attempted, summary.succeeded, summary.failed, summary.rate_limited) == (
        10,
        6,
        3,
        1,
    )
    assert summary.success_rate == pytest.approx(6 / 9)
    assert summary.failures_by_reason == {"http_403": 2, "timeout": 1}
    expected = pd.DataFrame(
        {"reason": ["http_403", "timeout"], "count": [2, 1], "share": [2 / 3, 1 / 3]}
    )
    pdt.assert_frame_equal(failure_reasons(events), expected)


def test_close_code_table_counts_shares_names() -> None:
    rows = [ev(s.STEP_CLOSE, i, close_code=1000, close_initiator="client") for i in range(3)]
    rows += [ev(s.STEP_CLOSE, 5, close_code=1006, close_initiator="none")]
    rows += [ev(s.STEP_CLOSE, 6, close_code=4001, close_initiator="server")]
    table = close_code_table(frame(rows))
    expected = pd.DataFrame(
        {
            "close_code": [1000, 1006, 4001],
            "name": ["Normal Closure", "Abnormal Closure", "Application"],
            "count": [3, 1, 1],
            "share": [0.6, 0.2, 0.2],
            "client": [3, 0, 0],
            "server": [0, 0, 1],
            "none": [0, 1, 0],
        }
    )
    pdt.assert_frame_equal(table.drop(columns=["meaning"]), expected)
    assert table.loc[1, "meaning"].startswith("no close frame")


def test_co_view_adds_schedule_lag() -> None:
    rows = [
        ev(s.STEP_ON_MESSAGE, 1.0, lat_ms=10.0, intended_ns=T0 + 1_000_000_000 - 5_000_000),
        ev(s.STEP_ON_MESSAGE, 2.0, lat_ms=20.0, intended_ns=T0 + 2_000_000_000),
    ]
    co = co_latency(frame(rows), steps=(s.STEP_ON_MESSAGE,))
    assert co.loc[s.STEP_ON_MESSAGE, "max_ms"] == pytest.approx(20.0)
    assert co.loc[s.STEP_ON_MESSAGE, "mean_ms"] == pytest.approx((15.0 + 20.0) / 2)
    assert co_latency(frame([ev(s.STEP_ECHO, 0, lat_ms=1.0)])).empty
    from harness.report.sections import co_table

    side = co_table(step_latency(frame(rows)), co)
    assert side.headers[:4] == ["step", "samples", "p50_ms actual", "p50_ms intended"]
    assert side.rows == [
        [
            s.STEP_ON_MESSAGE,
            "2",
            "15.000",
            "17.500",
            "19.500",
            "19.750",
            "19.900",
            "19.950",
            "20.000",
            "20.000",
        ]
    ]


def test_time_series_windows() -> None:
    rows = [ev(s.STEP_ECHO, 0.1, lat_ms=1.0), ev(s.STEP_ECHO, 0.5, lat_ms=3.0)]
    rows += [ev(s.STEP_ECHO, 2.2, ok=False, error="timeout")]
    rows += [ev(s.STEP_CONNECT, 0.0, lat_ms=1.0, conn_id=1), ev(s.STEP_CLOSE, 2.5, conn_id=1)]
    events = frame(rows)
    load = load_series(events, T0, 1.0)
    assert load["requests"].tolist() == [3, 0, 1]
    assert load["errors"].tolist() == [0, 0, 1]
    assert load["active_connections"].tolist() == [1.0, 1.0, 0.0]
    steps = step_series(latency_samples(events), T0, 1.0)
    echo = steps[steps["step"] == s.STEP_ECHO].reset_index(drop=True)
    assert echo["count"].tolist() == [2]
    assert echo["p50_ms"].tolist() == [2.0]
    assert echo["p95_ms"].tolist() == pytest.approx([2.9])
    from harness.report.metrics.timeseries import failed_rows, with_failures

    both = with_failures(steps, failed_rows(events), T0, 1.0)
    echo = both[both["step"] == s.STEP_ECHO].reset_index(drop=True)
    assert echo[["window_start_s", "count", "failures"]].to_numpy().tolist() == [
        [0.0, 2, 0],
        [2.0, 0, 1],
    ]
    assert np.isnan(echo.loc[1, "p50_ms"])


def test_coarse_load_series_equals_direct() -> None:
    from harness.report.metrics.timeseries import coarsen_load_series

    rng = np.random.default_rng(7)
    rows = [
        ev(
            str(rng.choice([s.STEP_ECHO, s.STEP_CONNECT, s.STEP_CLOSE])),
            float(t),
            lat_ms=1.0,
            ok=bool(rng.random() > 0.2),
            conn_id=int(i),
        )
        for i, t in enumerate(np.sort(rng.uniform(0, 95, 400)))
    ]
    events = frame(rows)
    direct = load_series(events, T0, 10.0)
    coarse = coarsen_load_series(load_series(events, T0, 1.0), 1.0, 10.0, events, T0)
    pdt.assert_frame_equal(coarse, direct, check_dtype=False)


def test_integrity_counts() -> None:
    rows = [ev(s.STEP_INTEGRITY, 1, ok=False, error="duplicate")] * 2
    rows += [ev(s.STEP_INTEGRITY, 2, ok=False, error="out_of_order")]
    rows += [ev(s.STEP_ON_MESSAGE, 3, ok=False, error="timeout")]
    table = integrity_counts(frame(rows)).set_index("category")["count"].to_dict()
    assert table == {
        "lost": 1,
        "duplicate": 2,
        "out_of_order": 1,
        "late_message": 0,
        "unsolicited": 0,
    }


def test_generator_saturation_flags_windows() -> None:
    def gen(t: float, cpu: float, lag_ms: float, worker: str = "w0") -> dict[str, object]:
        return ev(s.STEP_GENERATOR, t, lat_ms=lag_ms, cpu_pct=cpu, rss_bytes=100, worker=worker)

    rows = [gen(1, 20, 1), gen(2, 30, 2, "w1"), gen(11, 95, 1), gen(21, 10, 80), gen(31, 10, 1)]
    windows = health_windows(frame(rows), T0, 10.0, HealthThresholds(90.0, 50.0))
    assert windows["saturated"].tolist() == [False, True, True, False]
    assert windows["rss_bytes"].tolist() == [200.0, 100.0, 100.0, 100.0]
    summary = health_summary(windows)
    assert (summary.saturated_windows, summary.windows, summary.trustworthy) == (2, 4, False)
    assert summary.max_lag_ms == pytest.approx(80.0)


def test_sample_order_with_zero_and_negative_latencies() -> None:
    # the fast integer-view sort applies to non-negative samples only
    for values, p50 in (([3.0, 0.0, -0.0, 1.0, 2.0], 1.0), ([2.0, -1.0, 1.0], 1.0)):
        rows = [ev(s.STEP_ECHO, i, lat_ms=v) for i, v in enumerate(values)]
        samples = latency_samples(frame(rows))
        assert samples["latency_ms"].tolist() == sorted(values)
        assert step_latency(frame(rows)).loc[s.STEP_ECHO, "p50_ms"] == p50
