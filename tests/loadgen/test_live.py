"""The live aggregator (harness.loadgen.live): known answers by hand, and the same numbers as
the report's own math on the same events, whatever the batch boundaries."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness.loadgen.live import LiveStats, step_quantiles
from harness.record import schema as s
from harness.record.recorder import Recorder, StepRow
from harness.record.shards import complete_table
from harness.report.metrics.closes import close_code_table
from harness.report.metrics.connections import connection_summary
from harness.report.metrics.latency import step_latency

T0 = 1_700_000_000_000_000_000


def row(  # noqa: PLR0917  (a row is positional, like the recorder's tuples)
    step: str,
    ts_s: float,
    latency_ms: float | None,
    ok: bool = True,
    error: str | None = None,
    code: int | None = None,
    initiator: str | None = None,
) -> StepRow:
    lat = latency_ms * 1000.0 if latency_ms is not None else None
    ts = T0 + round(ts_s * 1e9)
    tail = (None, None, None)  # answer_messages, scenario, script_step
    return (
        1,
        "tok",
        1,
        step,
        ts,
        lat,
        None,
        ok,
        error,
        None,
        code,
        initiator,
        None,
        None,
        0,
        0,
        *tail,
    )


def batch(rows: list[StepRow], health: list[tuple[float, float, float, int]] = ()) -> pa.Table:
    rec = Recorder()
    for r in rows:
        rec.add(r)
    for ts_s, lag_ms, cpu, active in health:
        rec.add_generator(T0 + round(ts_s * 1e9), lag_ms * 1000.0, cpu, 1, active)
    table = rec.take_batch()
    assert table is not None
    return table


HAND = [
    row("connect", 0.0, 10.0),
    row("connect", 0.1, 30.0),
    row("connect", 0.2, 5.0, ok=False, error="http_503"),
    row("connect", 0.3, 1.0, ok=False, error="rate_limited"),
    row("connect", 0.4, None, ok=False, error=None),
    row("onMessage", 1.0, 1.0),
    row("onMessage", 1.5, 2.0),
    row("onMessage", 2.0, 3.0),
    row("onMessage", 2.5, 4.0),
    row("onMessage", 3.0, 9.0, ok=False, error="timeout"),
    row("onMessage", 3.5, 2.0, ok=False, error="rate_limited"),
    row("botAnswer", 4.0, 100.0),  # a schema step: in schema order
    row("aaScripted", 4.0, 7.0),  # a step the schema does not know: picked up, after them
    row("presence", 4.0, None),  # never timed: not a latency step
    row("typing", 4.0, None),
    row("close", 5.0, 0.5, code=1000, initiator="client"),
    row("close", 5.0, None, code=1011, initiator="server"),
    row("close", 5.0, None, ok=False, code=None, initiator=None),
]


def test_known_answers() -> None:
    live = LiveStats()
    live.ingest(batch(HAND[:7]))
    live.ingest(batch(HAND[7:], health=[(1.0, 3.0, 20.0, 2), (2.0, 60.0, 95.0, 4)]))
    snap = live.snapshot()
    assert [st.step for st in snap.steps] == ["connect", "onMessage", "botAnswer", "aaScripted"]
    on_msg = snap.step("onMessage")
    assert on_msg is not None
    assert (on_msg.count, on_msg.failures, on_msg.rate_limited) == (4, 1, 1)
    # type 7 over 1, 2, 3, 4: h = 3q
    assert on_msg.quantiles_ms["p50"] == 2.5
    assert on_msg.quantiles_ms["p95"] == pytest.approx(3.85, abs=1e-12)
    assert on_msg.quantiles_ms["p99"] == pytest.approx(3.97, abs=1e-12)
    assert (on_msg.mean_ms, on_msg.max_ms) == (2.5, 4.0)
    c = snap.connections
    assert (c.attempted, c.succeeded, c.failed, c.rate_limited) == (5, 2, 2, 1)
    assert c.failures_by_reason == {"http_503": 1, "unknown": 1}
    assert c.success_rate == 0.5
    assert [(x.code, x.count, x.by_initiator) for x in snap.closes] == [
        (1000, 1, {"client": 1}),
        (1006, 1, {"none": 1}),
        (1011, 1, {"server": 1}),
    ]
    assert snap.closes[1].name == "Abnormal Closure"
    assert snap.rate_limited == {"connect": 1, "onMessage": 1}
    assert snap.integrity["lost"] == 1  # the onMessage timeout, as in the report
    g = snap.generator
    assert (g.samples, g.max_cpu_pct, g.max_lag_ms, g.active_connections) == (2, 95.0, 60.0, 3.0)
    assert snap.rows == len(HAND)


def test_windows_count_rows_when_they_were_observed() -> None:
    live = LiveStats(windowed=True)
    live.ingest(batch(HAND, health=[(1.0, 3.0, 20.0, 2), (2.0, 60.0, 95.0, 4)]))
    # [1 s, 2.5 s): onMessage completing at 1.001, 1.502, 2.003 (not 2.504), both health rows
    w = live.window(T0 + 10**9, T0 + 25 * 10**8)
    on_msg = w.step("onMessage")
    assert on_msg is not None and on_msg.count == 3 and on_msg.quantiles_ms["p50"] == 2.0
    assert w.connections.attempted == 0 and w.generator.samples == 2
    early = live.window(T0, T0 + 15 * 10**8)  # connects, onMessage done at 1.001, one health row
    assert early.connections.attempted == 5 and early.generator.max_cpu_pct == 20.0
    assert early.step("onMessage").count == 1  # type: ignore[union-attr]
    assert live.window(T0, T0 + 10**18).connections == live.snapshot().connections
    with pytest.raises(ValueError):
        LiveStats().window(0, 1)


def test_coverage_needs_every_source() -> None:
    live = LiveStats()
    assert live.covered_ns(["a"]) is None
    live.mark_flushed("a", 10)
    live.mark_flushed("a", 5)  # never goes back
    assert live.covered_ns(["a"]) == 10
    assert live.covered_ns(["a", "b"]) is None
    live.mark_flushed("b", 7)
    assert live.covered_ns(["a", "b"]) == 7
    assert live.covered_ns([]) is None


def _random_rows(rng: random.Random, n: int) -> list[StepRow]:
    steps = ["connect", "configureSession", "onMessage", "botReply", "echo", "close", "typing"]
    out = []
    for i in range(n):
        step = rng.choice(steps)
        lat = None if step == "typing" or rng.random() < 0.05 else rng.lognormvariate(3, 1)
        ok = rng.random() > 0.1
        error = None if ok else rng.choice(["timeout", "http_503", "rate_limited", None])
        code = rng.choice([1000, 1006, 1011, None]) if step == "close" else None
        who = rng.choice(["client", "server", None]) if step == "close" else None
        out.append(row(step, i * 0.01, lat, ok, error, code, who))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_same_numbers_as_the_report(seed: int) -> None:
    rng = random.Random(seed)
    rows = _random_rows(rng, 3000)
    live = LiveStats(windowed=True)
    cuts = sorted(rng.sample(range(1, len(rows)), 7))
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        live.ingest(batch(rows[lo:hi]))
    events = complete_table(batch(rows), "run", "local").to_pandas()
    snap = live.snapshot()
    table = step_latency(events)
    for st in snap.steps:
        want = table.loc[st.step]
        assert (st.count, st.failures, st.rate_limited) == (
            want["count"],
            want["failures"],
            want["rate_limited"],
        )
        values = np.sort(
            events.loc[
                (events[s.STEP] == st.step) & events[s.OK] & events[s.LATENCY_US].notna(),
                s.LATENCY_US,
            ].to_numpy()
            / 1000.0
        )
        assert st.quantiles_ms == step_quantiles(values)  # exactly
        for label in ("p50", "p95", "p99"):
            assert st.quantiles_ms[label] == pytest.approx(want[f"{label}_ms"], rel=1e-12)
        assert st.max_ms == want["max_ms"]
        assert st.mean_ms == pytest.approx(want["mean_ms"], rel=1e-12)
    conns = connection_summary(events)
    got = snap.connections
    assert (got.attempted, got.succeeded, got.failed, got.rate_limited) == (
        conns.attempted,
        conns.succeeded,
        conns.failed,
        conns.rate_limited,
    )
    assert got.failures_by_reason == conns.failures_by_reason
    assert math.isclose(got.success_rate, conns.success_rate)
    closes = close_code_table(events)
    assert [(c.code, c.count) for c in snap.closes] == list(
        zip(closes["close_code"].tolist(), closes["count"].tolist(), strict=True)
    )


def test_reset_and_memory() -> None:
    live = LiveStats()
    live.ingest(batch(HAND))
    assert live.memory_bytes > 0 and live.snapshot().rows == len(HAND)
    live.reset()
    assert live.snapshot().rows == 0 and live.snapshot().steps == ()
    assert math.isnan(live.snapshot().connections.success_rate)
    assert pd.isna(live.snapshot().generator.max_cpu_pct)
