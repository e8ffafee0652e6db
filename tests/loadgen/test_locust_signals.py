"""Plain ``locust -f locustfiles/guest.py --headless`` and stop signals: SIGINT, SIGTERM and
SIGHUP (a closed terminal), alone or in a burst, are one clean stop: users stopped, every
event flushed (a close row for every established connection), run.json ``ended`` set."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, locust_cmd, master_args
from .run_helpers import (
    HarnessRun,
    assert_every_connection_closed,
    events,
    kill_tree,
    run_info,
    wait_for_events,
)


@pytest.mark.parametrize(
    "names", [["SIGHUP"], ["SIGINT", "SIGINT"], ["SIGINT", "SIGHUP", "SIGTERM"]]
)
def test_locust_stops_once_on_any_stop_signal(
    tmp_path: Path, locust_env: dict[str, str], names: list[str]
) -> None:
    """Plain ``locust --headless``: SIGHUP (a closed terminal) and a burst of repeats are one
    clean stop, never a death halfway through the flush."""
    run_dir = tmp_path / "run"
    args = ["--headless", "-u", "4", "-r", "4", "-t", "120s", "--think-time", "0.5s"]
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen(
            locust_cmd(*args, "--run-dir", str(run_dir)),
            cwd=ROOT,
            env=locust_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        run = HarnessRun(proc, run_dir, tmp_path / "stdout.txt", tmp_path / "stderr.txt")
        wait_for_events(run)
        for name in names:
            proc.send_signal(signal.Signals[name])
        code = run.wait()
    finally:
        kill_tree(proc.pid)
    text = run.stderr.read_text()
    assert code == 0 and "Traceback" not in text, text[-3000:]
    assert text.count("stopping the users") == 1
    assert run_info(run_dir)["ended"]
    assert_every_connection_closed(events(run_dir))


def test_distributed_stop_collects_the_workers_last_events(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    """``--processes 2``, SIGINT to the master: the workers stop their users and ship their
    last events (their closes) before the master tells them to quit."""
    run_dir = tmp_path / "run"
    args = ["--headless", "-u", "6", "-r", "6", "-t", "120s", "--think-time", "0.5s"]
    args += ["--processes", "2", *master_args(), "--run-dir", str(run_dir)]
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen(
            locust_cmd(*args),
            cwd=ROOT,
            env=locust_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        run = HarnessRun(proc, run_dir, tmp_path / "stdout.txt", tmp_path / "stderr.txt")
        wait_for_events(run)
        proc.send_signal(signal.SIGINT)
        code = run.wait()
    finally:
        kill_tree(proc.pid)
    assert code == 0, run.stderr.read_text()[-3000:]
    assert run_info(run_dir)["ended"]
    ev = events(run_dir)
    assert set(ev["worker_id"]) >= {"worker0", "worker1"}
    assert_every_connection_closed(ev)
