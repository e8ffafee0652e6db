"""Reading run directories: corrupt shards, empty or missing runs, category unification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import UsageError
from harness.record import schema as s
from harness.report.load import load_run

from .conftest import T0, ev, write_run


def test_shards_are_concatenated_with_unified_categories(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "r",
        [
            [ev(s.STEP_CONNECT, 0, lat_ms=1.0), ev(s.STEP_ECHO, 1, lat_ms=2.0, worker="a")],
            [ev(s.STEP_ECHO, 2, lat_ms=3.0, worker="b", ok=False, error="timeout")],
        ],
        info={"run_id": "r1", "users": 3},
    )
    data = load_run(run)
    events = data.events
    assert len(events) == 3
    assert events[s.STEP].tolist() == ["connect", "echo", "echo"]
    assert events[s.WORKER_ID].tolist() == ["w0", "a", "b"]
    assert events[s.ERROR].isna().tolist() == [True, True, False]
    assert events[s.LATENCY_US].tolist() == [1000.0, 2000.0, 3000.0]
    assert data.info == {"run_id": "r1", "users": 3}
    assert data.warnings == ()


def test_intended_becomes_schedule_lag(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "r",
        [[ev(s.STEP_ECHO, 1, lat_ms=1.0, intended_ns=T0 + 999_000_000), ev(s.STEP_ECHO, 2)]],
    )
    lag = load_run(run).events["schedule_lag_us"].to_numpy()
    assert lag[0] == pytest.approx(1000.0)
    assert np.isnan(lag[1])


def test_corrupt_shard_is_named_and_skipped(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "r",
        [[ev(s.STEP_ECHO, 1, lat_ms=1.0)] * 5, [ev(s.STEP_ECHO, 2, lat_ms=2.0)] * 7],
    )
    shard = run / "events" / "shard-1.parquet"
    shard.write_bytes(shard.read_bytes()[:-40])  # truncated: footer gone
    (run / "events" / "shard-2.parquet").write_bytes(b"not parquet at all")
    data = load_run(run)
    assert len(data.events) == 5
    assert (data.shards_read, data.shards_skipped) == (1, 2)
    named = [w for w in data.warnings if "skipped corrupt shard" in w]
    assert any("shard-1.parquet" in w for w in named)
    assert any("shard-2.parquet" in w for w in named)
    assert any("run.json missing" in w for w in data.warnings)


def test_missing_empty_and_unreadable_runs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="run directory not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no event shards"):
        load_run(tmp_path / "empty")
    bad = tmp_path / "bad" / "events"
    bad.mkdir(parents=True)
    (bad / "x.parquet").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="no readable event shard"):
        load_run(tmp_path / "bad")
    run = write_run(tmp_path / "zero", [[]])
    with pytest.raises(UsageError, match="has no events"):
        load_run(run)
