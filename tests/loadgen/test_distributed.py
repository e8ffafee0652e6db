"""A real distributed run: a Locust master and 3 workers as separate processes (loopback),
against an externally started simulator with fault injection.

The master's run directory must hold every worker's events (workers ship their batches over
Locust messages), and the events, the simulator's own SUMMARY counters and the master's
``harness report`` must agree exactly on attempts, connects, refusals and close codes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from harness.record import schema as s
from harness.record.shards import read_events
from harness.sim.launcher import SimProcess
from harness.sim.stats import SimStats, parse_summary

from .conftest import ROOT, free_port, locust_cmd

WORKERS = 3
#: every conversation in progress finishes well inside this (2 short turns, 20 ms bot)
STOP_TIMEOUT_S = 20
RUN_S = 6
PROC_TIMEOUT_S = 40
SIM_FAULTS = (
    "--seed", "11", "--no-limits", "--bot-latency", "fixed:20ms",
    "--fault-close", "0.2", "--fault-close-code", "1011", "--fault-drop", "0.1",
    "--fault-reject", "0.1", "--fault-reject-status", "503",
)  # fmt: skip
FLOW = ("--messages-per-session", "2", "--think-time", "0.1s,0.3s", "--heartbeat-interval", "0")


@contextmanager
def _killed_at_exit(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Whatever happens in the test, no Locust process outlives it."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _stop_sim(sim: SimProcess) -> SimStats:
    """SIGTERM (closes what is left with 1001), then the SUMMARY line it printed last."""
    sim.proc.send_signal(signal.SIGTERM)
    output = sim.stop()
    assert sim.proc.returncode == 0, sim.stderr_text()[-2000:]
    summary = parse_summary(output)
    assert summary is not None and output.splitlines()[-1].startswith("SUMMARY "), output
    return summary


def _spawn(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    cwd.mkdir()
    with log.open("w") as out:  # a file, not a pipe: nobody reads while the run goes
        return subprocess.Popen(
            locust_cmd(*args), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )


def _harness_report(run_dir: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run_dir), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=PROC_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, object] = json.loads((run_dir / "report.json").read_text())
    return report


def _client_counts(ev: pd.DataFrame) -> dict[str, object]:
    connects = ev[ev[s.STEP] == s.STEP_CONNECT]
    refused = connects[~connects[s.OK]]
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    return {
        "attempts": len(connects),
        "connects": int(connects[s.OK].sum()),
        "refused_by_status": dict(Counter(str(int(v)) for v in refused[s.HTTP_STATUS])),
        "closes_by_code": dict(Counter(str(int(v)) for v in closes[s.CLOSE_CODE])),
    }


@pytest.mark.timeout(120)
def test_three_workers_ship_every_event_to_the_master(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    run_dir = tmp_path / "run"
    port = str(free_port())
    master_args = [
        "--master", "--expect-workers", str(WORKERS), "--headless",
        "-u", "12", "-r", "12", "-t", f"{RUN_S}s", "--stop-timeout", str(STOP_TIMEOUT_S),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--run-dir", str(run_dir), *FLOW,
    ]  # fmt: skip
    worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", port]
    procs: list[subprocess.Popen[str]] = []
    with SimProcess(list(SIM_FAULTS), ready_timeout_s=30) as sim, _killed_at_exit(procs):
        master_args += ["--host", sim.url]
        logs = tmp_path / "logs"
        logs.mkdir()
        procs.append(_spawn(master_args, tmp_path / "master", locust_env, logs / "master.log"))
        for i in range(WORKERS):
            cwd = tmp_path / f"worker{i}"
            procs.append(_spawn(worker_args, cwd, locust_env, logs / f"worker{i}.log"))
        for proc in procs:
            proc.wait(timeout=PROC_TIMEOUT_S)
        outputs = {p.name: p.read_text() for p in logs.iterdir()}
        assert procs[0].returncode in (0, 1), outputs["master.log"][-3000:]
        for i, proc in enumerate(procs[1:]):
            assert proc.returncode == 0, outputs[f"worker{i}.log"][-3000:]
        summary = _stop_sim(sim)

    # every worker's rows are in the master's run directory, and only there
    ev: pd.DataFrame = read_events(run_dir).to_pandas()
    workers = set(ev[s.WORKER_ID])
    assert len(workers) == WORKERS and all(w.startswith("worker") for w in workers), workers
    for i in range(WORKERS):
        assert not any((tmp_path / f"worker{i}").iterdir()), f"worker{i} wrote files of its own"
    assert not (tmp_path / "master" / "reports").exists()
    key = [s.WORKER_ID, s.USER_ID, s.SESSION_TOKEN, s.CONN_ID, s.STEP, s.TS_NS]
    assert not ev.duplicated(subset=key).any(), "duplicated rows"

    # the events add up exactly to the simulator's own counters
    ours = _client_counts(ev)
    print("client:", ours, "\nsimulator:", summary.to_dict())
    assert ours["attempts"] == summary.upgrades > 0
    assert ours["connects"] == summary.accepted
    assert ours["refused_by_status"] == dict(summary.rejected_by_status)
    assert ours["closes_by_code"] == dict(summary.closes_by_code)
    for code in ("1000", "1006", "1011", "503"):
        assert code in {**summary.closes_by_code, **summary.rejected_by_status}, code

    # and the master's report counts the same
    report = _harness_report(run_dir)
    conns = report["connections"]
    assert isinstance(conns, dict)
    assert conns["attempted"] == summary.upgrades
    assert conns["succeeded"] == summary.accepted
    assert conns["failures_by_reason"] == {
        f"http_{k}": v for k, v in summary.rejected_by_status.items()
    }
    assert report["close_codes"] == dict(summary.closes_by_code)
