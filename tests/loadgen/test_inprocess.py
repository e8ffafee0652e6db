"""GuestUsers in an in-process Locust Environment against the real simulator (loopback).

Each scenario runs in a child interpreter (see inproc_driver.py) for a few seconds; the
assertions read Locust's stats and the raw events the run left on disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.record import schema as s
from harness.record.shards import read_events

from .conftest import run_driver


def _events(result: dict[str, Any]) -> pd.DataFrame:
    frame: pd.DataFrame = read_events(Path(result["run_dir"])).to_pandas()
    return frame


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    info = json.loads((Path(result["run_dir"]) / s.RUN_JSON).read_text())
    summary: dict[str, Any] = info["simulator_summary"]
    assert info["ended"] is not None
    return summary


def _check_accounting(ev: pd.DataFrame, summary: dict[str, Any]) -> None:
    """Every attempt is one connect row; every established connection has one close row."""
    connects = ev[ev[s.STEP] == s.STEP_CONNECT]
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    assert len(connects) == summary["upgrades"]
    assert connects[~connects[s.OK]][s.ERROR].notna().all()
    established = connects[connects[s.OK]][[s.USER_ID, s.SESSION_TOKEN, s.CONN_ID]]
    closed = closes[[s.USER_ID, s.SESSION_TOKEN, s.CONN_ID]]
    assert not closed.duplicated().any()
    key = [s.USER_ID, s.SESSION_TOKEN, s.CONN_ID]
    assert sorted(map(tuple, established.to_numpy())) == sorted(map(tuple, closed.to_numpy()))
    assert len(established) == summary["accepted"] and not established[key].duplicated().any()


def test_every_step_has_stats_and_rows(tmp_path: Path) -> None:
    result = run_driver(
        {
            "run_dir": str(tmp_path / "run"),
            "think_time": "0.2s",
            "messages_per_session": 3,
            "heartbeat_interval": "0.5s",
            "sim_args": "--limit echo-rate=off --limit req-rate=off",
        },
        users=4,
        seconds=4,
    )
    stats = result["stats"]
    for step in ("connect", "configureSession", "onMessage", "botReply", "echo", "close"):
        assert stats[step]["requests"] > 0, step
        assert stats[step]["failures"] == 0, (step, result["errors"])
    assert "typing" not in stats  # fire-and-forget: rows, but no 0 ms requests
    ev = _events(result)
    assert (ev[ev[s.STEP] == s.STEP_TYPING][s.LATENCY_US].isna()).all()
    assert (ev[s.STEP] == s.STEP_GENERATOR).any()
    assert ev[s.RUN_ID].eq("run").all() and ev[s.WORKER_ID].eq("local").all()
    _check_accounting(ev, _summary(result))


def test_fault_injection_rows(tmp_path: Path) -> None:
    sim = (
        "--fault-close every:2 --fault-close-code 1011 --fault-drop every:3 "
        "--fault-reject every:4 --fault-reject-status 403 --no-limits"
    )
    result = run_driver(
        {
            "run_dir": str(tmp_path / "run"),
            "think_time": "0.1s",
            "messages_per_session": 2,
            "heartbeat_interval": "0",
            "sim_args": sim,
        },
        users=4,
        seconds=4,
    )
    ev = _events(result)
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    c1011 = closes[closes[s.CLOSE_CODE] == 1011]
    c1006 = closes[closes[s.CLOSE_CODE] == 1006]
    assert len(c1011) > 0 and (c1011[s.CLOSE_INITIATOR] == s.INITIATOR_SERVER).all()
    assert len(c1006) > 0 and (c1006[s.CLOSE_INITIATOR] == s.INITIATOR_NONE).all()
    assert not c1011[s.OK].any() and not c1006[s.OK].any()
    rejected = ev[(ev[s.STEP] == s.STEP_CONNECT) & ~ev[s.OK]]
    assert len(rejected) > 0
    assert (rejected[s.HTTP_STATUS] == 403).all() and (rejected[s.ERROR] == "http_403").all()
    summary = _summary(result)
    assert summary["rejected_by_status"].get("403") == len(rejected)
    _check_accounting(ev, summary)
    close_errors = [e["error"] for e in result["errors"] if e["name"] == "close"]
    assert any("1011" in e and "internal error" in e.lower() for e in close_errors)
    assert any("1006" in e and "abnormal closure" in e.lower() for e in close_errors)
    assert result["stats"]["connect"]["failures"] == len(rejected)


def test_rate_limiting_is_not_a_failure(tmp_path: Path) -> None:
    result = run_driver(
        {
            "run_dir": str(tmp_path / "run"),
            "think_time": "0",
            "messages_per_session": 20,
            "heartbeat_interval": "0",
            "typing": "off",
            "sim_args": "--limit msg-rate=2 --bot-latency fixed:1ms",
        },
        users=2,
        seconds=3,
    )
    ev = _events(result)
    limited = ev[ev[s.ERROR] == s.ERR_RATE_LIMITED]
    assert len(limited) > 0 and (limited[s.STEP] == s.STEP_ON_MESSAGE).all()
    stats = result["stats"]
    assert stats["rate_limited"]["requests"] == len(limited)
    assert stats["rate_limited"]["failures"] == 0
    assert stats["onMessage"]["failures"] == 0 and stats["onMessage"]["requests"] > 0
    _check_accounting(ev, _summary(result))


def test_open_model_records_intended_start_times(tmp_path: Path) -> None:
    """One user cannot keep up with 20 conversations/s: the slots stay on schedule and the
    growing gap between intended and actual start is recorded, not hidden."""
    result = run_driver(
        {
            "run_dir": str(tmp_path / "run"),
            "shape": "open",
            "arrival_rate": 20,
            "messages_per_session": 1,
            "think_time": "0",
            "heartbeat_interval": "0",
            "typing": "off",
        },
        users=1,
        seconds=3,
    )
    ev = _events(result)
    connects = ev[ev[s.STEP] == s.STEP_CONNECT].sort_values(s.INTENDED_NS)
    assert len(connects) >= 3 and connects[s.INTENDED_NS].notna().all()
    gaps = connects[s.INTENDED_NS].diff().dropna().to_numpy()
    # one slot every 1/20 s, however late the starts are (float64 columns: ±1 µs)
    assert abs(gaps - 50_000_000).max() < 1_000
    lateness = (connects[s.TS_NS] - connects[s.INTENDED_NS]).to_numpy()
    assert (lateness >= 0).all() and lateness[-1] > lateness[0] + 50_000_000
    turns = ev[ev[s.STEP] == s.STEP_ON_MESSAGE]
    assert turns[s.INTENDED_NS].notna().all()
    assert (turns[s.TS_NS] >= turns[s.INTENDED_NS]).all()


def test_resume_mode_reconnects_with_the_same_token(tmp_path: Path) -> None:
    result = run_driver(
        {
            "run_dir": str(tmp_path / "run"),
            "session_mode": "resume",
            "messages_per_session": 1,
            "think_time": "0.1s",
            "heartbeat_interval": "0",
            "typing": "off",
        },
        users=2,
        seconds=3,
    )
    ev = _events(result)
    connects = ev[ev[s.STEP] == s.STEP_CONNECT]
    per_token = connects.groupby(s.SESSION_TOKEN)[s.CONN_ID].agg(list)
    assert len(per_token) == 2  # one guest token per user, kept across reconnects
    for conn_ids in per_token:
        assert len(conn_ids) >= 2 and sorted(conn_ids) == list(range(1, len(conn_ids) + 1))
    summary = _summary(result)
    assert summary["sessions"] == 2 and summary["upgrades"] == len(connects)
    _check_accounting(ev, summary)
