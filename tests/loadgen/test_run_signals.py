"""``harness run`` stopped by a signal: one clean stop of Locust, every event on disk, a report
for what ran, exit 128+N; killed hard, its Locust child still stops (and flushes) by itself.

Each run is a few seconds of load against the embedded simulator; the signal is sent once the
first shard is on disk, so the load is live. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from .run_helpers import (
    STOP_TIMEOUT_S,
    HarnessRun,
    assert_every_connection_closed,
    events,
    kill_tree,
    run_info,
    start_run,
    wait_for_events,
)

#: Long enough that only the signal ends the run; the think time keeps sessions turning over.
LOAD = ("--profile", "smoke", "-u", "4", "-r", "4", "-t", "120s", "--", "--think-time", "0.5s")


def _assert_clean_stop(run: HarnessRun, code: int, name: str, children: list[psutil.Process]):
    err = run.err_lines()
    assert code == 128 + signal.Signals[name].value, err[-15:]
    assert "Traceback" not in run.stderr.read_text()
    ours = [line for line in err if line.startswith("harness run:")]
    assert len(ours) == 1 and name in ours[0], ours
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left behind: {alive}"  # no Locust (or simulator) outlives the run
    info = run_info(run.run_dir)
    assert info["ended"], "run.json has no end time"
    assert_every_connection_closed(events(run.run_dir))
    assert (run.run_dir / "report.json").exists(), "no report for what ran"


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signal_to_harness_run_stops_locust_cleanly(tmp_path: Path, name: str) -> None:
    run = start_run(tmp_path, *LOAD)
    try:
        wait_for_events(run)
        children = run.descendants()
        run.proc.send_signal(signal.Signals[name])
        code = run.wait()
    finally:
        kill_tree(run.proc.pid)
    _assert_clean_stop(run, code, name, children)


def test_ctrl_c_to_the_process_group_is_one_clean_stop(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches harness run and Locust at once: still one stop, exit 130."""
    run = start_run(tmp_path, *LOAD)
    try:
        wait_for_events(run)
        children = run.descendants()
        os.killpg(run.proc.pid, signal.SIGINT)
        code = run.wait()
    finally:
        kill_tree(run.proc.pid)
    _assert_clean_stop(run, code, "SIGINT", children)


def test_locust_does_not_outlive_a_killed_harness_run(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to forward anything: the kernel tells Locust (PDEATHSIG), and
    Locust stops its users and flushes; there is no report (nobody is left to write it)."""
    run = start_run(tmp_path, *LOAD)
    locust: psutil.Process | None = None
    try:
        wait_for_events(run)
        locust = run.locust()
        run.proc.send_signal(signal.SIGKILL)
        run.wait()
        locust.wait(timeout=STOP_TIMEOUT_S)  # psutil.TimeoutExpired: it kept generating load
    finally:
        kill_tree(run.proc.pid)
        if locust is not None:
            kill_tree(locust.pid)
    assert run_info(run.run_dir)["ended"]
    assert_every_connection_closed(events(run.run_dir))
