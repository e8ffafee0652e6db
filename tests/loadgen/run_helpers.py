"""Helpers for the ``harness run`` end-to-end tests: start it, wait for live events, read them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from harness.record import schema as s
from harness.record.shards import read_events

from .conftest import ROOT

#: Generous bounds for a loaded two-core machine; a healthy run is far inside them.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 90.0


@dataclass
class HarnessRun:
    """A ``harness run`` child in its own session (its pid is its process group id)."""

    proc: subprocess.Popen[str]
    run_dir: Path
    stdout: Path
    stderr: Path

    def wait(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_tree(self.proc.pid)
            raise

    def err_lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def locust(self) -> psutil.Process:
        """The Locust child (found by its command line; bounded wait for it to exist)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for child in self.descendants():
                try:
                    if "locust" in " ".join(child.cmdline()):
                        return child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        raise AssertionError("no locust child found")


def start_run(tmp_path: Path, *args: str) -> HarnessRun:
    run_dir = tmp_path / "run"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "harness", "run", "--run-dir", str(run_dir), *args]
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # the tests signal its process group, never their own
        )
    return HarnessRun(proc, run_dir, out, err)


def run_to_end(tmp_path: Path, *args: str, timeout_s: float = 120.0) -> HarnessRun:
    run = start_run(tmp_path, *args)
    run.wait(timeout_s)
    return run


def wait_for_events(run: HarnessRun) -> None:
    """Until the first shard is on disk: the load is live (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not list((run.run_dir / s.EVENTS_DIR).glob("*.parquet")):
        if run.proc.poll() is not None:
            raise AssertionError(f"harness run exited early: {run.err_lines()[-5:]}")
        if time.monotonic() > deadline:
            kill_tree(run.proc.pid)
            raise AssertionError("no events written in time")
        time.sleep(0.1)


def kill_tree(pid: int) -> None:
    """Last resort in a failing test: SIGKILL a process and everything under it."""
    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


def run_info(run_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((run_dir / s.RUN_JSON).read_text())
    return info


def events(run_dir: Path) -> pd.DataFrame:
    frame: pd.DataFrame = read_events(run_dir).to_pandas()
    return frame


def assert_every_connection_closed(ev: pd.DataFrame) -> int:
    """Every established connection has exactly one close row; returns how many there were."""
    key = [s.USER_ID, s.SESSION_TOKEN, s.CONN_ID]
    connects = ev[(ev[s.STEP] == s.STEP_CONNECT) & ev[s.OK].fillna(False).astype(bool)]
    established = {tuple(r) for r in connects[key].to_numpy()}
    closed = [tuple(r) for r in ev[ev[s.STEP] == s.STEP_CLOSE][key].to_numpy()]
    assert len(closed) == len(set(closed)), "a connection has two close rows"
    assert set(closed) == established, (len(established), len(closed))
    assert established, "no connection was established"
    return len(established)
