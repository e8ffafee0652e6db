"""Plain ``locust -f locustfiles/guest.py --headless`` and stop signals: SIGINT, SIGTERM and
SIGHUP (a closed terminal), alone or in a burst, are one clean stop: users stopped, every
event flushed (a close row for every established connection), run.json ``ended`` set."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, locust_cmd
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
