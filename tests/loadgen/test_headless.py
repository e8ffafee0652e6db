"""``locust -f locustfiles/guest.py --headless`` with no host: the embedded simulator, real
events on disk, distributed shipping with ``--processes 2``, and a clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd

from harness.record import schema as s
from harness.record.shards import read_events

from .conftest import ROOT, locust_cmd, master_args


def _run(args: list[str], env: dict[str, str], timeout_s: float = 90) -> None:
    proc = subprocess.run(
        locust_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _load(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    info = json.loads((run_dir / s.RUN_JSON).read_text())
    assert info["ended"] and info["started"] and info["host"].startswith("ws://127.0.0.1:")
    frame: pd.DataFrame = read_events(run_dir).to_pandas()
    return frame, info


def _accounting(ev: pd.DataFrame, summary: dict[str, Any]) -> None:
    connects = ev[ev[s.STEP] == s.STEP_CONNECT]
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    assert len(connects) == summary["upgrades"] > 0
    key = [s.USER_ID, s.SESSION_TOKEN, s.CONN_ID]
    established = {tuple(r) for r in connects[connects[s.OK]][key].to_numpy()}
    closed = [tuple(r) for r in closes[key].to_numpy()]
    assert len(closed) == len(set(closed)) and set(closed) == established


def test_headless_embedded_simulator(tmp_path: Path, locust_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    _run(["--headless", "-u", "20", "-r", "10", "-t", "10s", "--run-dir", str(run_dir)], locust_env)
    ev, info = _load(run_dir)
    assert set(ev[s.WORKER_ID]) == {"local"}
    for step in ("connect", "configureSession", "onMessage", "botReply", "close"):
        assert (ev[s.STEP] == step).any(), step
    _accounting(ev, info["simulator_summary"])


def test_headless_processes_2(tmp_path: Path, locust_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    args = ["--headless", "-u", "20", "-r", "10", "-t", "10s", "--processes", "2", *master_args()]
    _run([*args, "--run-dir", str(run_dir)], locust_env)
    ev, info = _load(run_dir)
    assert set(ev[s.WORKER_ID]) == {"worker0", "worker1"}
    for worker in ("worker0", "worker1"):
        mine = ev[ev[s.WORKER_ID] == worker]
        assert (mine[s.STEP] == s.STEP_CONNECT).any() and (mine[s.STEP] == "generator").any()
    assert ev[s.USER_ID].dropna().groupby(ev[s.WORKER_ID]).nunique().sum() == 20
    _accounting(ev, info["simulator_summary"])


def test_sigterm_flushes_everything(tmp_path: Path, locust_env: dict[str, str]) -> None:
    run_dir = tmp_path / "run"
    args = ["--headless", "-u", "10", "-r", "10", "-t", "60s", "--think-time", "0.3s"]
    proc = subprocess.Popen(
        locust_cmd(*args, "--run-dir", str(run_dir)),
        cwd=ROOT,
        env=locust_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30  # wait for the first flushed shard: the run is live
        while not list((run_dir / s.EVENTS_DIR).glob("*.parquet")):
            assert time.monotonic() < deadline and proc.poll() is None, "no events written"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    ev, info = _load(run_dir)
    summary = info["simulator_summary"]
    _accounting(ev, summary)
    sent = ev[ev[s.STEP].isin([s.STEP_ON_MESSAGE, s.STEP_TYPING])]
    limited = sent[s.ERROR].eq(s.ERR_RATE_LIMITED).sum()
    # every send completed before the signal has its row; a turn cut mid-wait has none
    in_flight = summary["messages"] - (len(sent) - limited)
    assert 0 <= in_flight <= 10


def test_remote_host_is_refused_before_any_traffic(locust_env: dict[str, str]) -> None:
    """The safety rail: a non-loopback host without opt-in exits non-zero with one line
    (10.0.0.1 is never contacted: the check runs before any user exists)."""
    args = ["--headless", "-u", "1", "-r", "1", "-t", "2s", "--host", "ws://10.0.0.1:9"]
    proc = subprocess.run(
        locust_cmd(*args, "--no-record"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=locust_env,
        check=False,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "refusing" in line]
    assert len(lines) == 1 and "--allow-remote-target" in lines[0]
    assert "Traceback" not in proc.stderr


def test_step_shape_drives_the_users(tmp_path: Path, locust_env: dict[str, str]) -> None:
    """``--shape step`` ends the run by itself and reaches its peak in steps."""
    run_dir = tmp_path / "run"
    args = ["--headless", "--shape", "step", "--peak-users", "4", "--step-users", "2"]
    args += ["--step-time", "3s", "--think-time", "0.5s", "--run-dir", str(run_dir)]
    _run(args, locust_env)  # no -t: the shape's own end stops the test
    ev, info = _load(run_dir)
    connects = ev[ev[s.STEP] == s.STEP_CONNECT].sort_values(s.TS_NS)
    first = connects.groupby(s.USER_ID)[s.TS_NS].min().sort_values().to_numpy()
    assert len(first) == 4
    assert first[2] - first[1] > 2e9  # the second step starts one step-time later
    assert info["shape"] == "step"
