"""Kept sessions: the closes the harness makes when it stops its users are censored, not deaths
(docs/metrics.md#session-survival)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pandas.testing as pdt
import pytest

from harness.cli import main
from harness.record import schema as s
from harness.report.columns import AGE_S
from harness.report.metrics.survival import connection_lifetimes, survival_curve

from .conftest import SEC, T0, ev, frame, write_run


def _conn(user: int, cid: int, start: float, end: float, *, code: int, who: str) -> list[Any]:
    ids = {"user_id": user, "conn_id": cid}
    return [
        ev(s.STEP_CONNECT, start, lat_ms=1.0, **ids),
        ev(s.STEP_CONFIGURE, start + 0.5, lat_ms=1.0, **ids),
        ev(s.STEP_CLOSE, end, close_code=code, close_initiator=who, **ids),
    ]


def _rows() -> list[dict[str, Any]]:
    """Three kept-session users, stopped by the harness at +20 s."""
    rows = _conn(1, 1, 0, 20, code=1000, who="client")  # held until the stop
    rows += _conn(2, 1, 0, 10, code=1001, who="server")  # idle cut: a death ...
    rows += _conn(2, 2, 11, 20, code=1000, who="client")  # ... it resumed, held until the stop
    rows += _conn(3, 1, 0, 5, code=1000, who="client")  # closed after a ConnectionClosedEvent ...
    rows += _conn(
        3, 2, 6, 20, code=1000, who="client"
    )  # ... reconnected: that first 1000 is a death
    return rows


def test_harness_closes_of_kept_sessions_are_censored() -> None:
    life = connection_lifetimes(frame(_rows()), T0 + 20 * SEC, kept_sessions=True)
    got = sorted(zip(life[AGE_S], life["censored"], life["closed_by_harness"], strict=True))
    assert got == [
        (5.0, False, False),
        (9.0, True, True),
        (10.0, False, False),
        (14.0, True, True),
        (20.0, True, True),
    ]
    # KM: S(5) = 4/5; at 10 the three of ages 10, 14, 20 are at risk: S = 0.8 * 2/3
    expected = pd.DataFrame(
        {AGE_S: [0.0, 5.0, 10.0], "at_risk": [5, 5, 3], "closed": [0, 1, 1]}
        | {"survival": [1.0, 0.8, 0.8 * 2 / 3]}
    )
    pdt.assert_frame_equal(survival_curve(life), expected)


def test_without_kept_sessions_every_close_is_a_death() -> None:
    life = connection_lifetimes(frame(_rows()), T0 + 20 * SEC)
    assert not life["censored"].any() and not life["closed_by_harness"].any()
    assert survival_curve(life)["survival"].iloc[-1] == 0.0


@pytest.mark.parametrize(
    ("options", "censored"),
    [
        ({"session_mode": "keep", "shape": "none"}, 3),
        ({"session_mode": "close", "shape": "none"}, 0),
        ({"session_mode": "keep", "shape": "open"}, 0),  # open model: every conversation closes
    ],
)
def test_report_censors_by_the_runs_session_mode(
    tmp_path: Path, options: dict[str, Any], censored: int
) -> None:
    run = write_run(tmp_path / "run", [_rows()], {"run_id": "k", "options": options})
    assert main(["report", str(run), "--no-plots"]) == 0
    doc = json.loads((run / "report.json").read_text())
    assert doc["survival"]["censored"] == {"open_at_end": 0, "closed_by_harness": censored}
    assert (doc["survival"]["curve"][-1]["survival"] > 0.5) is (censored > 0)
    assert doc["close_codes"] == {"1000": 4, "1001": 1}  # the close codes still count them all
    md = (run / "report.md").read_text()
    assert f"{censored} closed by the harness itself when it stopped their user" in md
