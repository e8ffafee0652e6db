"""Helpers for the loadgen tests: run Locust (in-process driver or CLI) in a child process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.record import schema as s
from harness.record.shards import read_events

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("inproc_driver.py")
LOCUSTFILE = ROOT / "locustfiles" / "guest.py"


def run_driver(options: dict[str, Any], users: int, seconds: float) -> dict[str, Any]:
    """Run the in-process Environment driver; return its JSON summary."""
    config = json.dumps({"options": options, "users": users, "seconds": seconds})
    proc = subprocess.run(
        [sys.executable, str(DRIVER), config],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def locust_cmd(*args: str) -> list[str]:
    """``locust -f locustfiles/guest.py ARGS`` with this interpreter's locust."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


def free_port() -> int:
    """A currently free loopback TCP port (Locust's master cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def master_args() -> list[str]:
    """Keep a distributed run's master on loopback, on its own port (not the shared 5557)."""
    port = str(free_port())
    return ["--master-bind-host", "127.0.0.1", "--master-bind-port", port, "--master-port", port]


@pytest.fixture
def locust_env() -> dict[str, str]:
    """Environment for locust child processes (unbuffered, no colour)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def headless(
    run_dir: Path, env: dict[str, str], *args: str, users: int = 5, seconds: int = 8
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``locust --headless`` with a stop timeout long enough for every conversation in progress
    to finish (so the simulator's counts and ours can be compared exactly)."""
    cmd = locust_cmd(
        "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--stop-timeout", "30", "--run-dir", str(run_dir), *args,
    )  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 90, cwd=ROOT, env=env, check=False
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    info = json.loads((run_dir / s.RUN_JSON).read_text())
    events: pd.DataFrame = read_events(run_dir).to_pandas()
    return events, info
