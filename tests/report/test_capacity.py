"""Capacity levels and the knee on synthetic events with hand-computed answers.

Runs are built from 10-s windows. Each window has one generator row per second (active
connections = the level, cpu 10 %, lag 1 ms unless saturated), ``turns`` botReply successes and
as many onMessage successes, spread evenly, with given latencies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from harness.record import schema as s
from harness.report.build import build_report
from harness.report.load import RunData
from harness.report.metrics.capacity import (
    CapacityConfig,
    find_knee,
    level_quantum,
    level_windows,
)
from harness.report.observe import check_gates
from harness.report.slo import parse_gate

from .conftest import ev, frame

W = 10.0


def _window(
    start: float, active: int, turns: int, bot_ms: list[float], *, saturated: bool = False
) -> list[dict[str, Any]]:
    rows = [
        ev(
            s.STEP_GENERATOR,
            start + i,
            lat_ms=80.0 if saturated else 1.0,
            cpu_pct=10.0,
            rss_bytes=100,
            active_connections=active,
        )
        for i in range(10)
    ]
    for i in range(turns):
        t = start + 0.5 + i * 9.0 / max(turns, 1)
        rows.append(ev(s.STEP_ON_MESSAGE, t, lat_ms=1.0 + i % 2))
        rows.append(ev(s.STEP_BOT_REPLY, t, lat_ms=bot_ms[i % len(bot_ms)]))
    return rows


def _run(levels: list[tuple[int, int, list[float], int]], sat: set[int] = frozenset()) -> Any:
    """levels: (active, turns per window, botReply ms cycle, windows); one trailing event
    ends the run on a window boundary so the last level's windows are whole."""
    rows, start = [], 0.0
    for k, (active, turns, bot, n) in enumerate(levels):
        for _ in range(n):
            rows += _window(start, active, turns, bot, saturated=k in sat)
            start += W
    rows.append(ev(s.STEP_GENERATOR, start, lat_ms=1.0, cpu_pct=10.0, active_connections=0))
    return build_report(RunData(Path("r"), frame(rows), {}))


def test_level_quantum_is_a_125_step() -> None:
    assert [level_quantum(p, 10) for p in (0, 7, 30, 80, 120, 1000, 4000)] == [
        1.0,
        1.0,
        5.0,
        10.0,
        20.0,
        100.0,
        500.0,
    ]


def test_three_step_levels_knee_where_latency_doubles() -> None:
    # 10, 20, 30 connections, 3 windows each; turns scale with load (1 turn/s per connection
    # ... per 10 s: 10, 20, 30 turns). botReply 100/200 ms alternating at levels 1 and 2
    # (p95 = 195 ms: h = (n-1)*0.95 over an even 100/200 mix), 400/500 ms at level 3.
    report = _run(
        [(10, 10, [100.0, 200.0], 3), (20, 20, [100.0, 200.0], 3), (30, 30, [400.0, 500.0], 3)]
    )
    cap = report.capacity
    expected = pd.DataFrame(
        {
            "concurrency": [10.0, 20.0, 30.0],
            "mean_active": [10.0, 20.0, 30.0],
            "windows": [3, 3, 3],
            "duration_s": [30.0, 30.0, 30.0],
            "turns_per_s": [1.0, 2.0, 3.0],
            "turns_per_s_per_conn": [0.1, 0.1, 0.1],
            "requests_per_s": [2.0, 4.0, 6.0],
            "botReply_p50_ms": [150.0, 150.0, 450.0],
            "botReply_p95_ms": [200.0, 200.0, 500.0],
            "botReply_p99_ms": [200.0, 200.0, 500.0],
            "onMessage_p50_ms": [1.5, 1.5, 1.5],
            "onMessage_p95_ms": [2.0, 2.0, 2.0],
            "onMessage_p99_ms": [2.0, 2.0, 2.0],
            "error_rate": [0.0, 0.0, 0.0],
            "rate_limited_rate": [0.0, 0.0, 0.0],
            "connection_success_rate": [np.nan, np.nan, np.nan],
            "saturated_windows": [0, 0, 0],
            "saturated": [False, False, False],
        }
    )
    pdt.assert_frame_equal(cap.levels, expected, check_exact=False, rtol=1e-12)
    assert cap.knee is not None
    assert cap.knee["concurrency"] == 30.0
    assert cap.knee["reasons"] == ["botReply p95 500.000 ms > 2 x 200.000 ms at 10"]
    assert cap.max_sustainable_concurrency == 20.0
    assert cap.verdict_text.startswith("knee at 30 connections")


def test_no_knee_when_everything_scales() -> None:
    report = _run([(10, 10, [100.0], 2), (20, 20, [110.0], 2), (40, 40, [150.0], 2)])
    cap = report.capacity
    assert cap.levels["concurrency"].tolist() == [10.0, 20.0, 40.0]
    assert cap.knee is None
    assert cap.max_sustainable_concurrency is None
    assert cap.max_tested_concurrency == 40.0
    assert cap.verdict_text.startswith("no knee up to 40 connections")


def test_throughput_that_stops_scaling_is_a_knee() -> None:
    # per connection: 0.1 turns/s at 10, 0.06 at 20 (< 70 % of 0.1)
    report = _run([(10, 10, [100.0], 2), (20, 12, [100.0], 2)])
    assert report.capacity.knee is not None
    assert report.capacity.knee["reasons"][0].startswith("turns/s per connection 0.0600 < 70%")
    assert report.capacity.max_sustainable_concurrency == 10.0


def test_single_level_is_insufficient() -> None:
    report = _run([(10, 10, [100.0], 5)])
    cap = report.capacity
    assert len(cap.levels) == 1
    assert (cap.knee, cap.max_sustainable_concurrency) == (None, None)
    assert cap.verdict_text.startswith("insufficient: one load level")


def test_transition_shorter_than_two_windows_is_not_a_level() -> None:
    report = _run([(10, 10, [100.0], 3), (20, 20, [100.0], 1), (30, 30, [100.0], 3)])
    assert report.capacity.levels["concurrency"].tolist() == [10.0, 30.0]
    report = _run([(10, 10, [100.0], 1), (30, 30, [100.0], 1)])
    assert report.capacity.verdict_text.startswith("insufficient: no load level")


def test_saturated_level_cannot_define_the_knee() -> None:
    # level 30 is slow but measured with a saturated generator: it is skipped, no knee
    report = _run([(10, 10, [100.0], 2), (20, 20, [100.0], 2), (30, 30, [900.0], 2)], sat={2})
    cap = report.capacity
    assert cap.levels["saturated"].tolist() == [False, False, True]
    assert cap.levels["saturated_windows"].tolist() == [0, 0, 2]
    assert cap.knee is None
    assert "no knee up to 20 connections" in cap.verdict_text
    assert "30 were measured with a saturated generator" in cap.verdict_text


def test_error_rate_knee_and_knee_at_the_lowest_level() -> None:
    levels = pd.DataFrame(
        {
            "concurrency": [10.0, 20.0],
            "turns_per_s_per_conn": [0.1, 0.1],
            "botReply_p95_ms": [100.0, 100.0],
            "error_rate": [0.02, 0.0],
            "saturated": [False, False],
        }
    )
    cap = find_knee(levels, CapacityConfig())
    assert cap.knee == {"concurrency": 10.0, "reasons": ["error rate 2.000% > 1%"]}
    assert cap.max_sustainable_concurrency is None
    assert cap.gate_value == 0.0
    assert "no level below it was sustainable" in cap.verdict_text


def test_capacity_gate() -> None:
    knee = _run([(10, 10, [100.0], 2), (20, 20, [100.0], 2), (30, 30, [500.0], 2)])
    no_knee = _run([(10, 10, [100.0], 2), (20, 20, [100.0], 2)])
    single = _run([(10, 10, [100.0], 3)])
    gate = parse_gate("capacity.max_sustainable_concurrency >= 20")
    assert (gate.kind, gate.min_samples) == ("count", 2)
    results = [check_gates(r, [gate])[0] for r in (knee, no_knee, single)]
    assert [r.verdict for r in results] == ["pass", "pass", "inconclusive"]
    assert [r.samples for r in results] == [3, 2, 1]
    assert results[0].observed == 20.0
    assert math.isnan(results[2].observed)
    strict = parse_gate("capacity.max_sustainable_concurrency >= 25")
    assert check_gates(knee, [strict])[0].verdict == "fail"


@pytest.mark.parametrize("with_plots", [True])
def test_report_json_and_markdown_have_capacity(tmp_path: Path, with_plots: bool) -> None:
    from harness.report.write import write_outputs

    report = _run([(10, 10, [100.0], 2), (20, 20, [100.0], 2), (30, 30, [500.0], 2)])
    write_outputs(report, [], tmp_path, plots=with_plots)
    import json

    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert doc["schema_version"] == 1
    cap = doc["capacity"]
    assert cap["max_sustainable_concurrency"] == 20.0
    assert cap["knee"]["concurrency"] == 30.0
    assert [lv["concurrency"] for lv in cap["levels"]] == [10.0, 20.0, 30.0]
    assert cap["levels"][0]["connection_success_rate"] is None
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Capacity" in md and "knee at 30 connections" in md
    assert (tmp_path / "plots" / "capacity.png").stat().st_size > 1000


def _load(active: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"window_start_s": np.arange(len(active)) * W, "active_connections": active}
    )


def test_noisy_steps_become_one_level_each() -> None:
    # q = 20 (peak 200 / 10 levels), tolerance 10: 195 joins the 200 plateau; the last
    # window (start 90 s, run ends at 90 s) is partial and belongs to no level
    active = [50.0, 49.0, 51.0, 100.0, 98.0, 102.0, 195.0, 200.0, 200.0, 200.0]
    got = level_windows(_load(active), 90.0, CapacityConfig())
    expected = _load(active).assign(
        level=[0, 0, 0, 1, 1, 1, 2, 2, 2, -1],
        concurrency=[50.0] * 3 + [100.0] * 3 + [200.0] * 3 + [np.nan],
    )
    pdt.assert_frame_equal(got, expected)


def test_ramp_gives_one_level_per_step_of_concurrency() -> None:
    # 0, 10, ..., 190 active, one window each; q = 20, tolerance 10: windows pair up
    # (10, 20), (30, 40), ...; 0 is idle and the single window 190 is a transition
    got = level_windows(_load([10.0 * i for i in range(20)]), 200.0, CapacityConfig())
    assert got["level"].tolist() == [-1] + [i // 2 for i in range(18)] + [-1]
    assert got["concurrency"].dropna().unique().tolist() == [15.0 + 20 * i for i in range(9)]


def test_bad_capacity_window_is_a_one_line_error(tmp_path: Path, capsys: Any) -> None:
    from harness.cli import main

    assert main(["report", str(tmp_path), "--capacity-window", "0"]) == 3
    err = capsys.readouterr().err.strip()
    assert err == "harness report: error: --capacity-window must be > 0 seconds, got 0"


def test_levels_without_bot_replies_have_no_latency_knee_and_still_plot() -> None:
    from harness.report.plots import capacity as capacity_plot

    report = _run([(10, 0, [1.0], 2), (20, 0, [1.0], 2)])
    cap = report.capacity
    assert cap.levels["concurrency"].tolist() == [10.0, 20.0]
    assert cap.levels["botReply_p95_ms"].isna().all()
    assert cap.knee is None  # NaN never triggers a condition
    assert capacity_plot(report).startswith(b"\x89PNG")


def test_stalled_throughput_names_the_rate_limited_share() -> None:
    levels = pd.DataFrame(
        {
            "concurrency": [10.0, 20.0],
            "turns_per_s_per_conn": [0.1, 0.05],
            "botReply_p95_ms": [100.0, 100.0],
            "error_rate": [0.0, 0.0],
            "rate_limited_rate": [0.0, 0.25],
            "saturated": [False, False],
        }
    )
    cap = find_knee(levels, CapacityConfig())
    assert cap.knee is not None
    assert cap.knee["reasons"] == [
        "turns/s per connection 0.0500 < 70% of 0.1000 at 10 (throughput stopped scaling), "
        "with 25.0% of its requests rate-limited by the server"
    ]
    assert cap.max_sustainable_concurrency == 10.0
