"""``harness run --profile capacity`` against the embedded simulator: small steps of a few
seconds, a server limit that breaks at a known level, and a generator that is declared
saturated; the search stops where expected and the report says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import ROOT

#: 5 users per level, 3 s each; every user keeps conversing on one connection
SMALL_STEPS = ["--step-users", "5", "--step-time", "3s", "--think-time", "0.5s"]


def _capacity_run(run_dir: Path, *args: str, gates: tuple[str, ...] = ()) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "harness", "run", "--profile", "capacity", "-u", "15", "-t"]
    cmd += ["90s", "--run-dir", str(run_dir)]
    for gate in gates:
        cmd += ["--slo", gate]
    proc = subprocess.run(
        [*cmd, "--", *SMALL_STEPS, *args],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=ROOT,
        check=False,
    )
    return proc.returncode, proc.stderr[-3000:]


def _search(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    info = json.loads((run_dir / "run.json").read_text())
    report = json.loads((run_dir / "report.json").read_text())
    return info["capacity_search"], report, (run_dir / "report.md").read_text()


def test_stops_at_the_level_where_the_server_limit_breaks(tmp_path: Path) -> None:
    """The simulator accepts 12 new connections a minute: levels of 5 and 10 users pass, the
    third level's last 3 connects are rate-limited and the gate on them fails."""
    run_dir = tmp_path / "run"
    gate = "connections.rate_limited == 0 min=1"
    code, stderr = _capacity_run(run_dir, "--sim-args", "--limit conn-rate=12", gates=(gate,))
    assert code == 1, stderr  # the same gate fails on the whole run too
    search, report, markdown = _search(run_dir)
    assert search["stopped_by"] == "gate", search["verdict"]
    assert [lv["users"] for lv in search["levels"]] == [5, 10, 15]
    assert [lv["verdict"] for lv in search["levels"]] == ["pass", "pass", "fail"]
    assert search["highest_passing_users"] == 10
    first = search["first_failing"]
    assert first["users"] == 15 and not first["saturated"]
    (failed,) = first["failed_gates"]
    assert failed["gate"] == gate and failed["observed"] >= 3
    assert all(lv["complete"] for lv in search["levels"])
    assert report["capacity"]["search"] == search
    assert "highest level meeting every gate: 10 users" in markdown
    assert "the server side broke" in markdown
    # the load stopped at the third level: nobody beyond 15 users, no fourth level
    assert report["connections"]["succeeded"] == 12


def test_a_saturated_generator_stops_the_search_and_is_named(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, stderr = _capacity_run(run_dir, "--cpu-threshold", "0")  # every sample saturates
    assert code == 0, stderr  # no gates: the report passes
    search, _, markdown = _search(run_dir)
    assert search["stopped_by"] == "generator"
    assert [lv["verdict"] for lv in search["levels"]] == ["saturated"]
    assert search["highest_passing_users"] is None
    assert search["first_failing"]["saturated"] and search["first_failing"]["users"] == 5
    assert "the limit found is the generator's, not the server's" in markdown
