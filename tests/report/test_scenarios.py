"""Scripted-run report math on synthetic events with hand-counted answers: completion,
the funnel, per-step percentiles, messages per answer."""

from __future__ import annotations

import math

import pytest

from harness.record import schema as s
from harness.report.metrics.answers import answer_summary
from harness.report.metrics.scenarios import overall_completion, scenario_reports

from .conftest import ev, frame

A = "Order"


def _end(
    t: float, ok: bool, step: int, error: str | None = None, **kw: object
) -> dict[str, object]:
    return ev(
        s.STEP_SCENARIO, t, ok=ok, error=error, scenario=A, script_step=step, lat_ms=10.0, **kw
    )


def test_completion_funnel_and_step_percentiles() -> None:
    rows = [
        _end(1, True, 3),
        _end(2, True, 3),
        _end(3, False, 2, s.ERR_MISMATCH),
        _end(4, False, 2, s.ERR_TIMEOUT),
        _end(5, False, 3, s.ERR_CLOSED, close_code=1011),
        _end(6, False, 0, "refused"),
        _end(7, False, 1, s.ERR_STOPPED),  # cut by the end of the run: not judged
    ]
    rows += [
        ev(s.STEP_SCRIPT_REPLY, i, lat_ms=float(i), scenario=A, script_step=2) for i in (1, 2, 3, 4)
    ]
    rows += [ev(s.STEP_SCRIPT_REPLY, 9, ok=False, error=s.ERR_MISMATCH, scenario=A, script_step=2)]
    (report,) = scenario_reports(frame(rows), {A: ["say 'hi'", "waitFor x", "waitFor y"]})
    assert (report.started, report.completed, report.failed, report.stopped) == (7, 2, 4, 1)
    assert report.completion_rate == pytest.approx(2 / 6)
    funnel = {row["step"]: row for row in report.funnel}
    assert funnel[0]["reasons"] == {"refused": 1} and funnel[0]["reached"] == 7
    assert (funnel[1]["reached"], funnel[1]["passed"], funnel[1]["stopped"]) == (6, 5, 1)
    assert funnel[2]["reasons"] == {"mismatch": 1, "timeout": 1} and funnel[2]["passed"] == 3
    assert funnel[3]["reasons"] == {"closed 1011": 1} and funnel[3]["description"] == "waitFor y"
    (step2,) = report.latency
    assert (step2["step"], step2["kind"], step2["count"], step2["failures"]) == (2, "reply", 4, 1)
    assert step2["p50_ms"] == pytest.approx(2.5) and step2["p95_ms"] == pytest.approx(3.85)
    assert overall_completion([report]) == (pytest.approx(2 / 6), 6)


def test_unscripted_runs_have_no_scenarios() -> None:
    rows = [ev(s.STEP_BOT_REPLY, 1, lat_ms=1.0)]
    assert scenario_reports(frame(rows)) == []
    rate, judged = overall_completion([])
    assert math.isnan(rate) and judged == 0


def test_messages_per_answer_and_late_messages() -> None:
    rows = [
        ev(s.STEP_BOT_ANSWER, i, lat_ms=5.0, answer_messages=n) for i, n in enumerate((1, 3, 3))
    ]
    rows += [ev(s.STEP_INTEGRITY, 9, error=s.INTEGRITY_LATE_MESSAGE)] * 2
    summary = answer_summary(frame(rows))
    assert (summary.answers, summary.messages, summary.max_messages) == (3, 7, 3)
    assert summary.distribution == {1: 1, 3: 2} and summary.late_messages == 2
    assert summary.mean_messages == pytest.approx(7 / 3)
