"""End to end: a short headless Locust run against the embedded simulator with fault
injection, then ``harness report``; report.json counts must equal the simulator's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "guest.py"
FAULTS = (
    "--seed 1 --fault-close every:4 --fault-close-code 1011 --fault-drop every:5 "
    "--fault-reject every:6 --fault-reject-status 403"
)


def _locust(run_dir: Path, *args: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        "10",
        "-r",
        "10",
        "--think-time",
        "0.2s",
        "--run-dir",
        str(run_dir),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # Locust exits 1 when requests failed, which injected faults guarantee.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]


def test_idle_timeout_is_detected(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _locust(
        run_dir,
        "-t",
        "8s",
        "--messages-per-session",
        "2",
        "--session-mode",
        "keep",
        "--sim-args",
        "--idle-timeout 2s",
    )
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["close_codes"].get("1001", 0) >= 5
    idle = doc["survival"]["detected_idle_timeout_s"]
    # measured from the end of the last request, so a little under the server's 2 s timer
    assert idle is not None and 1.7 <= idle <= 2.2, idle
    assert any("idle timeout near" in d["text"] for d in doc["diagnoses"])


def test_report_counts_equal_simulator_counts(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _locust(run_dir, "-t", "6s", "--sim-args", FAULTS)
    sim = json.loads((run_dir / "run.json").read_text())["simulator_summary"]
    code = main(
        [
            "report",
            str(run_dir),
            "--no-plots",
            "--slo",
            "close_codes.1011 == 0 min=1",
            "--slo",
            "botReply.p95 < 10s min=1",
        ]
    )
    assert code == 1  # the 1011 gate fails: faults were injected
    doc = json.loads((run_dir / "report.json").read_text())
    conns = doc["connections"]
    assert conns["attempted"] == sim["upgrades"] > 0
    assert conns["succeeded"] == sim["accepted"]
    rejected = {f"http_{k}": v for k, v in sim["rejected_by_status"].items()}
    assert conns["failures_by_reason"] == rejected
    assert rejected["http_403"] > 0
    assert doc["close_codes"] == {k: v for k, v in sim["closes_by_code"].items() if v}
    assert {"1011", "1006"} <= set(doc["close_codes"])
    assert sum(doc["close_codes"].values()) == conns["succeeded"]
    assert doc["steps"]["botReply"]["count"] > 0
    curve = doc["survival"]["curve"]
    assert curve[0]["at_risk"] == conns["succeeded"]  # every connection has one lifetime
    assert curve[-1]["survival"] == 0.0  # ... and every one was closed
    assert [g["verdict"] for g in doc["slo"]] == ["fail", "pass"]
    kinds = {d["kind"] for d in doc["diagnoses"]}
    assert "refused_upgrade_403" in kinds
