"""Recorder, shards and run.json: rows in, the same rows out of Parquet, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from harness.errors import UsageError
from harness.record import schema as s
from harness.record.recorder import BATCH_SCHEMA, Recorder
from harness.record.runinfo import RunInfo, default_run_dir, redact_argv, redact_options
from harness.record.shards import (
    complete_table,
    from_ipc,
    read_events,
    shard_name,
    to_ipc,
    write_shard,
)


def _row(step: str = s.STEP_ON_MESSAGE, **over: object) -> tuple[object, ...]:
    base: dict[str, object] = {
        "user_id": 7,
        "token": "tok",
        "conn_id": 1,
        "step": step,
        "ts_ns": 1_700_000_000_000_000_000,
        "latency_us": 1234.5,
        "intended_ns": None,
        "ok": True,
        "error": None,
        "http_status": None,
        "close_code": None,
        "close_initiator": None,
        "close_reason": None,
        "detail": None,
        "bytes_out": 80,
        "bytes_in": 200,
        "answer_messages": None,
        "scenario": None,
        "script_step": None,
    }
    base.update(over)
    return tuple(base.values())


def test_rows_round_trip_through_a_shard(tmp_path: Path) -> None:
    rec = Recorder()
    rec.add(_row())  # type: ignore[arg-type]
    close = _row(s.STEP_CLOSE, latency_us=None, ok=False, close_code=1011, close_reason="x" * 900)
    rec.add(close)  # type: ignore[arg-type]
    rec.add_generator(1_700_000_000_500_000_000, 350.0, 12.5, 50_000_000, 2)
    assert len(rec) == 3
    batch = rec.take_batch()
    assert batch is not None and batch.schema == BATCH_SCHEMA
    assert len(rec) == 0 and rec.take_batch() is None
    path = write_shard(
        complete_table(batch, "run1", "local"), tmp_path / "events", "local-1.parquet"
    )
    assert path.exists() and not list((tmp_path / "events").glob(".*"))
    table = read_events(tmp_path)
    assert table.schema == s.EVENT_SCHEMA
    rows = table.to_pylist()
    assert [r[s.STEP] for r in rows] == [s.STEP_ON_MESSAGE, s.STEP_CLOSE, s.STEP_GENERATOR]
    assert {r[s.RUN_ID] for r in rows} == {"run1"} and {r[s.WORKER_ID] for r in rows} == {"local"}
    assert rows[0][s.LATENCY_US] == 1234.5 and rows[0][s.BYTES_IN] == 200
    assert rows[1][s.CLOSE_CODE] == 1011 and rows[1][s.LATENCY_US] is None
    assert len(rows[1][s.CLOSE_REASON]) == s.MAX_TEXT_CHARS
    assert rows[2][s.CPU_PCT] == 12.5 and rows[2][s.ACTIVE_CONNECTIONS] == 2
    assert rows[0][s.CPU_PCT] is None


def test_ipc_round_trip_and_rejects_garbage() -> None:
    rec = Recorder()
    for i in range(10):
        rec.add(_row(conn_id=i))  # type: ignore[arg-type]
    batch = rec.take_batch()
    assert batch is not None
    back = from_ipc(to_ipc(batch))
    assert back.equals(batch)
    with pytest.raises(UsageError):
        from_ipc(b"not arrow")


def test_complete_table_rejects_foreign_schema() -> None:
    with pytest.raises(UsageError):
        complete_table(pa.table({"x": [1]}), "r", "w")


def test_shard_names_are_safe_and_sortable() -> None:
    assert shard_name("worker 1/../x", 3) == "worker_1_.._x-000003.parquet"
    assert shard_name("local", 2) < shard_name("local", 10)


def test_read_events_of_an_empty_run_dir(tmp_path: Path) -> None:
    assert read_events(tmp_path).num_rows == 0


def test_run_json_is_rewritten_atomically(tmp_path: Path) -> None:
    info = RunInfo(tmp_path / "r1", "ws://127.0.0.1:1", {"num_users": 3, "auth_code": "SECRET"})
    info.write()
    first = json.loads((tmp_path / "r1" / s.RUN_JSON).read_text())
    assert first["run_id"] == "r1" and first["ended"] is None and first["users"] == 3
    assert "SECRET" not in json.dumps(first)
    info.ended = "2026-01-01T00:00:00.000Z"
    info.simulator_summary = {"upgrades": 4}
    info.write()
    second = json.loads((tmp_path / "r1" / s.RUN_JSON).read_text())
    assert second["ended"] and second["simulator_summary"] == {"upgrades": 4}
    assert {"python", "locust", "pyarrow"} <= set(second["versions"])


def test_secrets_are_redacted() -> None:
    argv = ["locust", "--auth-code", "abc", "--jwt=xyz", "-u", "3", "--exit-code-on-error", "1"]
    out = redact_argv(argv)
    assert "abc" not in out and "--jwt=xyz" not in out and out[-1] == "1"
    opts = redact_options({"auth_code": "abc", "num_users": 3, "tags": ["a"], "p": Path("x")})
    assert opts == {"auth_code": "<redacted>", "num_users": 3, "tags": ["a"], "p": "x"}


def test_default_run_dir_is_unique_under_reports() -> None:
    a, b = default_run_dir(), default_run_dir()
    assert a.parent == Path("reports") and a != b
