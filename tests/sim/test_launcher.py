"""The launcher never leaves an orphan simulator holding a port."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil

PARENT = """
import sys, time
from harness.sim.launcher import SimProcess
sim = SimProcess()
print(sim.proc.pid, flush=True)
time.sleep(120)
"""


def test_simulator_dies_with_a_killed_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        sim_pid = int(parent.stdout.readline())
        sim = psutil.Process(sim_pid)
        assert sim.is_running()
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        sim.wait(timeout=20)  # raises psutil.TimeoutExpired if it is left behind
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
