"""The capacity search (harness.loadgen.capacity) without Locust: levels, gate lookup on live
windows (the report's values on the same events), and the stop decisions on a fake clock."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from harness.bench.synthetic import SyntheticSpec
from harness.bench.synthetic import write_run as synth
from harness.errors import UsageError
from harness.gates import parse_gate
from harness.loadgen.capacity import (
    STOP_GATE,
    STOP_GENERATOR,
    STOP_INTERRUPTED,
    STOP_PEAK,
    CapacitySearch,
    SearchConfig,
    level_users,
    observe,
    search_config,
)
from harness.loadgen.config import ShapeConfig
from harness.loadgen.live import LiveStats
from harness.record.recorder import BATCH_SCHEMA, Recorder
from harness.record.shards import read_events
from harness.report.build import build_report
from harness.report.load import load_run
from harness.report.observe import observe as report_observe

SEC = 10**9
T0 = 1_700_000_000 * SEC


def test_levels_step_up_to_the_peak() -> None:
    assert level_users(ShapeConfig(users=15, step_users=5)) == [5, 10, 15]
    assert level_users(ShapeConfig(users=12, step_users=5)) == [5, 10, 12]
    assert level_users(ShapeConfig(users=100, peak_users=3, step_users=5)) == [3]


def test_search_config_from_options(tmp_path: Path) -> None:
    gates_file = tmp_path / "slo.toml"
    gates_file.write_text('gates = ["connections.success_rate >= 99%"]\n')
    c = search_config(
        {
            "slo": ["botReply.p95 < 800ms", ""],
            "slo_file": str(gates_file),
            "cpu_threshold": "80",
            "lag_threshold": "0.1s",
        }
    )
    assert [g.text for g in c.gates] == ["botReply.p95 < 800ms", "connections.success_rate >= 99%"]
    assert (c.cpu_pct_max, c.lag_ms_max) == (80.0, 100.0)
    assert search_config({"slo": "errors.rate < 1%"}).gates[0].metric == "errors.rate"
    for bad in ({"slo": ["botReply.p95 800"]}, {"cpu_threshold": "x"}, {"lag_threshold": "x"}):
        with pytest.raises(UsageError):
            search_config(bad)


METRICS = [
    "botReply.p95",
    "onMessage.p50",
    "connect.p99",
    "configureSession.mean",
    "botReply.max",
    "onMessage.count",
    "onMessage.failures",
    "connect.failure_rate",
    "connections.success_rate",
    "connections.attempted",
    "connections.failed",
    "connections.failures.timeout",
    "close_codes.1000",
    "close_codes.1011.share",
    "errors.rate",
    "errors.count",
    "integrity.lost",
    "generator.max_cpu_pct",
    "generator.max_lag_ms",
]


def test_gate_values_are_the_reports_on_the_same_events(tmp_path: Path) -> None:
    run_dir = synth(tmp_path / "run", SyntheticSpec(events=20_000, shards=2, duration_s=60))
    live = LiveStats()
    table = read_events(run_dir)
    live.ingest(table.select(BATCH_SCHEMA.names).cast(BATCH_SCHEMA))
    report = build_report(load_run(run_dir))
    snap = live.snapshot()
    for metric in METRICS:
        got, n = observe(snap, metric, SearchConfig())
        want, want_n = report_observe(report, metric)
        if not metric.startswith("generator."):  # there: samples, not the report's windows
            assert n == want_n, metric
        tol = 1e-6 if metric.startswith("generator.") else 1e-12  # the loader keeps float32
        assert math.isclose(got, want, rel_tol=tol) or (math.isnan(got) and math.isnan(want)), (
            metric,
            got,
            want,
        )


# --- the search on a fake clock ---------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def feed(
    live: LiveStats,
    t_ns: int,
    *,
    connects: int = 0,
    failed: int = 0,
    cpu: float = 10.0,
) -> None:
    """Rows at ``t_ns``: connects, failed connects, one health sample."""
    rec = Recorder()
    for i in range(connects + failed):
        ok = i < connects
        error = None if ok else "http_503"
        rec.add(
            (1, "t", i, "connect", t_ns, 1000.0, None, ok, error, *(None,) * 5, 0, 0, *(None,) * 3)
        )
    rec.add_generator(t_ns, 1000.0, cpu, 1, connects)
    table = rec.take_batch()
    assert isinstance(table, pa.Table)
    live.ingest(table)


def later(clock: Clock, live: LiveStats, seconds: float, *, flush: bool = True) -> None:
    """Time passes; the process flushes (every row so far handed over) unless told not to."""
    clock.now += round(seconds * SEC)
    if flush:
        live.mark_flushed("local", clock.now)


def make(
    gates: tuple[str, ...] = ("connections.failed == 0 min=1",), users: int = 15
) -> tuple[CapacitySearch, LiveStats, Clock, list[dict[str, Any]]]:
    live, clock, done = LiveStats(windowed=True), Clock(), []
    search = CapacitySearch(
        ShapeConfig(users=users, step_users=5, step_s=3.0),
        SearchConfig(tuple(parse_gate(g) for g in gates)),
        live,
        sources=lambda: ["local"],
        clock_ns=clock,
        wait_s=5.0,
        on_done=done.append,
    )
    return search, live, clock, done


def test_steps_up_until_a_gate_fails() -> None:
    search, live, clock, done = make()
    assert search.tick() == (5, 100.0)
    feed(live, clock.now + SEC, connects=5)
    later(clock, live, 3.0, flush=False)  # level over, but not flushed past its end yet: hold
    live.mark_flushed("local", clock.now - 1)
    assert search.tick() == (5, 100.0)
    live.mark_flushed("local", clock.now)
    assert search.tick() == (10, 100.0)  # level 1 passed
    feed(live, clock.now + SEC, connects=4, failed=1)
    later(clock, live, 3.0)
    assert search.tick() is None and search.tick() is None
    (summary,) = done
    assert summary["stopped_by"] == STOP_GATE and summary["highest_passing_users"] == 5
    first = summary["first_failing"]
    assert first["users"] == 10 and not first["saturated"]
    (gate,) = first["failed_gates"]
    assert gate["observed"] == 1.0 and gate["samples"] == 5
    assert "server side broke" in summary["verdict"] and "10 users" in summary["verdict"]
    assert [lv["verdict"] for lv in summary["levels"]] == ["pass", "fail"]


def test_generator_saturation_stops_and_is_told_apart() -> None:
    search, live, clock, done = make()
    search.tick()
    feed(live, clock.now + SEC, connects=5)
    later(clock, live, 3.0)
    assert search.tick() == (10, 100.0)
    feed(live, clock.now + 2 * SEC, connects=4, failed=1, cpu=97.0)  # fails a gate too
    later(clock, live, 3.0)
    assert search.tick() is None
    summary = done[0]
    assert summary["stopped_by"] == STOP_GENERATOR and summary["first_failing"]["saturated"]
    assert summary["highest_passing_users"] == 5
    assert "generator saturated" in summary["verdict"] and "97.0%" in summary["verdict"]


def test_a_stall_while_a_level_spawns_is_not_saturation() -> None:
    search, live, clock, _ = make(gates=())
    search.tick()
    feed(live, clock.now + SEC, connects=5, cpu=97.0)  # within the first 1.5 s of the level
    feed(live, clock.now + 2 * SEC, cpu=10.0)
    later(clock, live, 3.0)
    assert search.tick() == (10, 100.0)
    level = search.levels[0]
    assert level["verdict"] == "pass" and level["generator"]["max_cpu_pct"] == 10.0
    assert level["generator_during_spawn"]["max_cpu_pct"] == 97.0


def test_reaching_the_peak_and_inconclusive_levels() -> None:
    search, live, clock, done = make(gates=("connect.p99 < 1s",), users=10)  # p99: >= 100
    search.tick()
    feed(live, clock.now + SEC, connects=5)
    later(clock, live, 3.0)
    assert search.tick() == (10, 100.0)
    later(clock, live, 3.0)
    assert search.tick() is None
    summary = done[0]
    assert summary["stopped_by"] == STOP_PEAK
    assert [lv["verdict"] for lv in summary["levels"]] == ["inconclusive", "inconclusive"]
    assert summary["highest_passing_users"] is None and summary["first_failing"] is None
    assert "no level met every gate" in summary["verdict"]


def test_a_window_never_flushed_is_judged_after_the_wait_and_marked() -> None:
    search, live, clock, done = make(gates=())
    search.tick()
    later(clock, live, 3.0, flush=False)
    assert search.tick() == (5, 100.0)  # no flush mark at all: wait
    later(clock, live, 5.0, flush=False)
    assert search.tick() == (10, 100.0)
    assert search.levels[0]["complete"] is False and search.levels[0]["verdict"] == "pass"
    search.interrupt()
    search.interrupt()
    assert [d["stopped_by"] for d in done] == [STOP_INTERRUPTED]
    assert "only generator saturation could stop it" in done[0]["verdict"]
