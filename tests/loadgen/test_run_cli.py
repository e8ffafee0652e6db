"""``harness run``: headless Locust with the embedded simulator, then ``harness report``; the
exit code is the report's verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

EXIT_BY_VERDICT = {"pass": 0, "fail": 1, "inconclusive": 2}


def test_harness_run_reports_and_gates(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--profile",
        "smoke",
        "-t",
        "4s",
        "--run-dir",
        str(run_dir),
        "--slo",
        "connect.p95 < 30s",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    report = json.loads((run_dir / "report.json").read_text())
    verdicts = [gate["verdict"] for gate in report["slo"]]
    assert len(verdicts) == 1, proc.stderr[-2000:]
    assert proc.returncode == EXIT_BY_VERDICT[verdicts[0]], proc.stderr[-2000:]
    assert report["connections"]["attempted"] > 0
    assert report["connections"]["attempted"] == report["connections"]["succeeded"]
