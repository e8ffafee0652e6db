"""A real distributed run: a Locust master and 3 workers as separate processes (loopback),
against an externally started simulator with fault injection.

The master's run directory must hold every worker's events (workers ship their batches over
Locust messages), and the events, the simulator's own SUMMARY counters and the master's
``harness report`` must agree exactly on attempts, connects, refusals and close codes: at the
normal end of the run, and when every worker is stopped by its own SIGTERM mid-run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

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


def _stop_sim(sim: SimProcess) -> SimStats:
    """SIGTERM (closes what is left with 1001), then the SUMMARY line it printed last."""
    sim.proc.send_signal(signal.SIGTERM)
    sim.proc.wait(timeout=PROC_TIMEOUT_S)  # before stop(), which would add a SIGINT
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


@dataclass
class Cluster:
    """A running master (procs[0]) and its workers, each in its own empty directory."""

    base: Path
    procs: list[subprocess.Popen[str]]

    @property
    def run_dir(self) -> Path:
        return self.base / "run"

    def log(self, name: str) -> str:
        return (self.base / "logs" / f"{name}.log").read_text()[-3000:]

    def wait(self) -> None:
        for proc in self.procs:
            proc.wait(timeout=PROC_TIMEOUT_S)


def _run_cluster(
    base: Path, env: dict[str, str], run_s: int, during: Callable[[Cluster], None]
) -> tuple[Cluster, SimStats]:
    """Simulator, master and workers; ``during`` runs while they do. Returns once every
    process has exited (killed in any case) and the simulator has printed its SUMMARY."""
    port = str(free_port())
    master_args = [
        "--master", "--expect-workers", str(WORKERS), "--headless",
        "-u", "12", "-r", "12", "-t", f"{run_s}s", "--stop-timeout", str(STOP_TIMEOUT_S),
        "--master-bind-host", "127.0.0.1", "--master-bind-port", port,
        "--run-dir", str(base / "run"), *FLOW,
    ]  # fmt: skip
    worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", port]
    logs = base / "logs"
    logs.mkdir()
    cluster = Cluster(base, [])
    with SimProcess(list(SIM_FAULTS), ready_timeout_s=30) as sim:
        try:
            master = _spawn(
                [*master_args, "--host", sim.url], base / "master", env, logs / "master.log"
            )
            cluster.procs.append(master)
            for i in range(WORKERS):
                name = f"worker{i}"
                cluster.procs.append(_spawn(worker_args, base / name, env, logs / f"{name}.log"))
            during(cluster)
            cluster.wait()
        finally:  # whatever happens, no Locust process outlives the test
            for proc in cluster.procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)
        summary = _stop_sim(sim)
    return cluster, summary


def _harness_report(run_dir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run_dir), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=PROC_TIMEOUT_S,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads((run_dir / "report.json").read_text())
    return report


def _client_counts(ev: pd.DataFrame) -> dict[str, Any]:
    connects = ev[ev[s.STEP] == s.STEP_CONNECT]
    refused = connects[~connects[s.OK]]
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    return {
        "attempts": len(connects),
        "connects": int(connects[s.OK].sum()),
        "refused_by_status": dict(Counter(str(int(v)) for v in refused[s.HTTP_STATUS])),
        "closes_by_code": dict(Counter(str(int(v)) for v in closes[s.CLOSE_CODE])),
    }


def _check(cluster: Cluster, summary: SimStats) -> dict[str, Any]:
    """Every worker's rows are in the master's run directory, and only there; the events, the
    simulator's SUMMARY and the master's report agree exactly. Returns our counts."""
    ev: pd.DataFrame = read_events(cluster.run_dir).to_pandas()
    workers = set(ev[s.WORKER_ID])
    assert workers == {f"worker{i}" for i in range(WORKERS)}, workers
    for i in range(WORKERS):
        assert not any((cluster.base / f"worker{i}").iterdir()), f"worker{i} wrote files"
    assert not any((cluster.base / "master").iterdir()), "the master wrote outside --run-dir"
    key = [s.WORKER_ID, s.USER_ID, s.SESSION_TOKEN, s.CONN_ID, s.STEP, s.TS_NS]
    assert not ev.duplicated(subset=key).any(), "duplicated rows"

    ours = _client_counts(ev)
    print("client:", ours, "\nsimulator:", summary.to_dict())
    assert ours["attempts"] == summary.upgrades > 0
    assert ours["connects"] == summary.accepted
    assert ours["refused_by_status"] == dict(summary.rejected_by_status)
    assert ours["closes_by_code"] == dict(summary.closes_by_code)

    report = _harness_report(cluster.run_dir)
    conns = report["connections"]
    assert conns["attempted"] == summary.upgrades
    assert conns["succeeded"] == summary.accepted
    refused = {f"http_{k}": v for k, v in summary.rejected_by_status.items()}
    assert conns["failures_by_reason"] == refused
    assert report["close_codes"] == dict(summary.closes_by_code)
    return ours


def test_three_workers_ship_every_event_to_the_master(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    cluster, summary = _run_cluster(tmp_path, locust_env, RUN_S, lambda cluster: None)
    assert cluster.procs[0].returncode in (0, 1), cluster.log("master")
    for i, proc in enumerate(cluster.procs[1:]):
        assert proc.returncode == 0, cluster.log(f"worker{i}")
    ours = _check(cluster, summary)
    # the faults and the clean closes all happened, so each count above was really compared
    assert {"1000", "1006", "1011"} <= set(ours["closes_by_code"]), ours
    assert set(ours["refused_by_status"]) == {"503"}, ours


def _sigterm_workers_mid_run(cluster: Cluster) -> None:
    """Once the first batch is on the master's disk (the run is live), SIGTERM every worker:
    the master sees its last worker quit and stops at once."""
    events = cluster.run_dir / s.EVENTS_DIR
    deadline = time.monotonic() + PROC_TIMEOUT_S
    while not list(events.glob("worker*.parquet")):
        assert time.monotonic() < deadline, "no worker batch reached the master"
        assert all(p.poll() is None for p in cluster.procs), "a process ended early"
        time.sleep(0.1)
    for worker in cluster.procs[1:]:
        worker.send_signal(signal.SIGTERM)


def test_workers_stopped_by_sigterm_ship_their_last_events(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    """Each worker stops its users and ships their closes before it tells the master it
    quits; users the master rebalances onto a stopping worker never start a conversation."""
    cluster, summary = _run_cluster(tmp_path, locust_env, 60, _sigterm_workers_mid_run)
    for i, proc in enumerate(cluster.procs[1:]):
        assert proc.returncode in (0, 1), cluster.log(f"worker{i}")
    assert cluster.procs[0].returncode in (0, 1), cluster.log("master")
    _check(cluster, summary)
