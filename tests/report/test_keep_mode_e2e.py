"""End to end: a kept-session run stopped by its run time is not a curve falling to zero at the
run's length: the harness's own closes at the stop are censored (docs/metrics.md)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main

from .test_report_e2e import _locust


def test_keep_mode_stop_closes_are_censored(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _locust(run_dir, "-t", "5s", "--messages-per-session", "1", "--session-mode", "keep")
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    doc = json.loads((run_dir / "report.json").read_text())
    conns = doc["connections"]
    assert conns["succeeded"] == 10  # -u 10, each holds one socket until the stop
    assert doc["close_codes"] == {"1000": 10}  # every one closed by the harness at the stop
    assert doc["survival"]["censored"] == {"open_at_end": 0, "closed_by_harness": 10}
    curve = doc["survival"]["curve"]
    assert [p["survival"] for p in curve] == [1.0]  # no death at all
