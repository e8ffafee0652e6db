"""``harness report`` end to end on synthetic runs: files, report.json contract, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.record import schema as s

from .conftest import ev, write_run


def test_report_writes_every_artefact(small_run: Path) -> None:
    code = main(
        [
            "report",
            str(small_run),
            "--slo",
            "botReply.p95 < 10s",
            "--slo",
            "close_codes.1006 == 0",
            "--slo",
            "echo.p999 < 1s min=100000",
        ]
    )
    assert code == 1  # synthetic runs have 1006 closes
    doc = json.loads((small_run / "report.json").read_text())
    assert doc["schema_version"] == 1
    for key in (
        "run",
        "connections",
        "close_codes",
        "steps",
        "slo",
        "soak",
        "survival",
        "integrity",
        "generator",
        "diagnoses",
        "coordinated_omission",
    ):
        assert key in doc
    conns = doc["connections"]
    buckets = conns["succeeded"] + sum(conns["failures_by_reason"].values()) + conns["rate_limited"]
    assert buckets == conns["attempted"]
    assert sum(doc["close_codes"].values()) <= conns["succeeded"]
    s_keys = {
        "count",
        "failures",
        "mean_ms",
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
    }
    assert s_keys <= set(doc["steps"]["botReply"])
    assert isinstance(doc["steps"]["botReply"]["count"], int)
    assert isinstance(doc["steps"]["botReply"]["p50_ms"], float)
    assert [g["verdict"] for g in doc["slo"]] == ["pass", "fail", "inconclusive"]
    html = (small_run / "report.html").read_text()
    drawn = {p.stem for p in (small_run / "plots").glob("*.png")}
    assert html.count("data:image/png;base64,") == len(drawn)  # one per plot drawn
    # one load level only (the synthetic run has a constant concurrency): no capacity curve
    assert drawn == {
        "latency_over_time",
        "throughput",
        "close_codes",
        "failure_reasons",
        "latency_cdf",
        "survival",
    }
    assert 'src="plots/' not in html
    md = (small_run / "report.md").read_text()
    assert "Hyndman-Fan type 7" in md
    suite = ET.parse(small_run / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    assert (small_run / "series" / "load_1s.csv").is_file()
    assert (small_run / "plots" / "survival.png").stat().st_size > 1000


def test_exit_codes_pass_and_inconclusive(small_run: Path, tmp_path: Path) -> None:
    assert main(["report", str(small_run), "--no-plots", "--slo", "botReply.p95 < 10s"]) == 0
    assert (
        main(
            [
                "report",
                str(small_run),
                "--no-plots",
                "--slo",
                "botReply.p95 < 10s",
                "--slo",
                "botReply.p95 < 10s min=100000000",
            ]
        )
        == 2
    )
    slo = tmp_path / "slo.toml"
    slo.write_text('gates = ["connections.success_rate >= 50%"]\n')
    assert main(["report", str(small_run), "--no-plots", "--slo-file", str(slo)]) == 0


def test_fatal_errors_are_one_line_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness report: error: run directory not found")
    assert "\n" not in err
    assert main(["report", str(tmp_path), "--slo", "botReply.p95 <"]) == 3
    assert "bad SLO" in capsys.readouterr().err


def test_saturated_generator_marks_headline_untrustworthy(tmp_path: Path) -> None:
    rows = [ev(s.STEP_ECHO, i / 10, lat_ms=1.0) for i in range(100)]
    rows += [
        ev(s.STEP_GENERATOR, i, lat_ms=1.0, cpu_pct=99.0 if i == 5 else 10.0) for i in range(10)
    ]
    run = write_run(tmp_path / "sat", [rows])
    assert main(["report", str(run), "--no-plots"]) == 0
    doc = json.loads((run / "report.json").read_text())
    assert doc["trustworthy"] is False
    assert doc["generator"]["saturated_windows"] == 1
    assert "NOT trustworthy" in (run / "report.md").read_text()
    assert any("run.json missing" in w for w in doc["warnings"])


def test_lag_threshold_units() -> None:
    from harness.errors import UsageError
    from harness.report.cli import lag_ms

    assert [lag_ms(t) for t in ("50ms", "0.05s", "50000us", "50")] == [50.0, 50.0, 50.0, 50.0]
    with pytest.raises(UsageError, match="not a duration"):
        lag_ms("fast")


def test_progress_bar_on_request(small_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(small_run), "--no-plots", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "read w0-0.parquet" in err
    assert "[##############################]" in err  # the bar reaches the end


def test_runs_without_latency_samples_still_report(tmp_path: Path) -> None:
    refused = [ev(s.STEP_CONNECT, i / 10, ok=False, error="refused", lat_ms=1.0) for i in range(50)]
    run = write_run(tmp_path / "refused", [refused])
    assert (
        main(
            [
                "report",
                str(run),
                "--slo",
                "botReply.p95 < 1s",
                "--slo",
                "connections.success_rate > 50%",
            ]
        )
        == 1
    )
    doc = json.loads((run / "report.json").read_text())
    assert doc["connections"]["failures_by_reason"] == {"refused": 50}
    assert doc["steps"]["botReply"]["p95_ms"] is None
    assert [g["verdict"] for g in doc["slo"]] == ["inconclusive", "fail"]
    # nothing to draw but the failures and the (empty) throughput: no placeholder plots
    assert {p.stem for p in (run / "plots").glob("*.png")} == {"throughput", "failure_reasons"}
    assert (run / "report.html").read_text().count("data:image/png;base64,") == 2
    assert "No latency samples, so no latency plots." in (run / "report.md").read_text()
