"""Survival, diagnosis and soak drift on hand-built connections with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from harness.record import schema as s
from harness.report.columns import AGE_S, WINDOW_S
from harness.report.metrics.diagnosis import diagnose
from harness.report.metrics.soak import DriftRule, drift, soak_analysis
from harness.report.metrics.survival import (
    closes_by_code_curve,
    connection_lifetimes,
    detect_cluster,
    survival_curve,
)

from .conftest import SEC, T0, ev, frame


def conn(
    cid: int,
    start: float,
    end: float | None,
    *,
    code: int = 1000,
    who: str = "client",
    last: float | None = None,
    reason: str | None = None,
) -> list[dict[str, object]]:
    """A connection: connect at ``start``, one echo at ``last``, close at ``end``."""
    rows = [ev(s.STEP_CONNECT, start, lat_ms=1.0, conn_id=cid, user_id=cid)]
    if last is not None:
        rows.append(ev(s.STEP_ECHO, last, lat_ms=0.0, conn_id=cid, user_id=cid))
    if end is not None:
        rows.append(
            ev(
                s.STEP_CLOSE,
                end,
                conn_id=cid,
                user_id=cid,
                close_code=code,
                close_initiator=who,
                close_reason=reason,
            )
        )
    return rows


def test_kaplan_meier_by_hand() -> None:
    # Ages 1, 2, 2, 4 closed; one connection still open at the end (age 5, censored).
    rows = conn(1, 0, 1) + conn(2, 0, 2) + conn(3, 0, 2, code=1006, who="none")
    rows += conn(4, 0, 4) + conn(5, 0, None) + [ev(s.STEP_ECHO, 5, lat_ms=1.0)]
    life = connection_lifetimes(frame(rows), T0 + 5 * SEC)
    assert sorted(zip(life["age_s"], life["censored"], strict=True)) == [
        (1.0, False),
        (2.0, False),
        (2.0, False),
        (4.0, False),
        (5.0, True),
    ]
    curve = survival_curve(life)
    expected = pd.DataFrame(
        {
            AGE_S: [0.0, 1.0, 2.0, 4.0],
            "at_risk": [5, 5, 4, 2],
            "closed": [0, 1, 2, 1],
            # S(1) = 4/5, S(2) = 4/5 * 2/4, S(4) = 0.4 * 1/2
            "survival": [1.0, 0.8, 0.4, 0.2],
        }
    )
    pdt.assert_frame_equal(curve, expected)
    by_code = closes_by_code_curve(life)
    c1006 = by_code[by_code["close_code"] == 1006]
    # one of the two closes at age 2 (S before = 0.8, at risk 4): 0.8 * 1/4
    assert c1006["cumulative_share"].tolist() == pytest.approx([0.2])
    assert by_code[by_code["close_code"] == 1000]["cumulative_share"].iloc[-1] == pytest.approx(0.6)


def test_close_stamped_before_last_request_is_flagged() -> None:
    rows = conn(1, 0, 5, code=1011, who="server", last=9) + conn(
        2, 0, 8, code=1011, who="server", last=4
    )
    life = connection_lifetimes(frame(rows), T0 + 10 * SEC).sort_values("close_ns")
    assert life["close_before_activity"].tolist() == [True, False]


def test_detect_cluster() -> None:
    values = np.array([5.0, 300.0, 600.2, 599.8, 600.0, 601.0, 900.0])
    assert detect_cluster(values) == (600.1, 4)
    assert detect_cluster(np.array([10.0, 100.0, 1000.0, 5000.0])) is None


def test_idle_timeout_and_403_diagnosis() -> None:
    # Four connections go quiet and are cut ~60 s after their last echo, at different ages.
    rows: list[dict[str, object]] = []
    for i, start in enumerate((0, 20, 45, 70)):
        rows += conn(
            i, start, start + 30 + i * 7 + 60, code=1006, who="none", last=start + 30 + i * 7
        )
    rows += conn(10, 0, 200)
    rows += [ev(s.STEP_CONNECT, 1, ok=False, error="http_403", http_status=403)]
    events = frame(rows)
    life = connection_lifetimes(events, T0 + 200 * SEC)
    found = {d.kind: d for d in diagnose(events, life, T0)}
    assert set(found) == {"idle_timeout", "refused_upgrade_403"}
    assert found["idle_timeout"].value_s == pytest.approx(60.0, abs=0.01)
    assert "idle timeout near 60.0 s" in found["idle_timeout"].text
    assert "deploymentId unknown or Origin not allowed" in found["refused_upgrade_403"].text


def test_max_age_1011_burst_and_rate_limit_diagnosis() -> None:
    rows: list[dict[str, object]] = []
    for i in range(5):  # server closes at age 120 s though active until the end
        rows += conn(i, i * 3, i * 3 + 120, code=1001, who="server", last=i * 3 + 119.5)
    for i in range(4):  # a 1011 burst within one 10-s window
        rows += conn(20 + i, 0, 150 + i, code=1011, who="server", last=149)
    rows += conn(30, 0, 10, code=1013, who="server", reason="try again later", last=9)
    rows += [ev(s.STEP_CONNECT, 2, ok=False, error="http_429", http_status=429)]
    rows += [ev(s.STEP_ECHO, 300, lat_ms=1.0)]
    events = frame(rows)
    life = connection_lifetimes(events, T0 + 300 * SEC)
    found = {d.kind: d for d in diagnose(events, life, T0)}
    assert found["max_age"].value_s == pytest.approx(120.0)
    assert "max connection age near 120.0 s" in found["max_age"].text
    assert found["burst_1011"].evidence == {"windows": 1, "closes": 4}
    assert found["rate_limit"].evidence == {"closes": 1, "http_429": 1}
    assert "idle_timeout" not in found


def test_no_diagnosis_for_clean_client_closes() -> None:
    rows: list[dict[str, object]] = []
    for i in range(10):
        rows += conn(i, i, i + 10 + i * 3, last=i + 5)
    events = frame(rows)
    assert diagnose(events, connection_lifetimes(events, T0 + 60 * SEC), T0) == []


def test_drift_slope_per_hour() -> None:
    t = np.arange(0, 7200, 60.0)  # 2 h of minute windows
    rising = drift(t, 100.0 + 30.0 * t / 3600, "botReply.p95", "ms", DriftRule())
    assert rising["slope_per_hour"] == pytest.approx(30.0)
    assert rising["fit_start"] == pytest.approx(100.0)
    assert rising["verdict"] == "drifting"
    noise = np.random.default_rng(1).normal(0, 1.0, t.size)
    flat = drift(t, 100.0 + noise, "botReply.p95", "ms", DriftRule())
    assert flat["verdict"] == "stable"
    short = drift(t[:3], t[:3], "x", "ms", DriftRule())
    assert short["verdict"] == "insufficient"
    brief = drift(t[:8] / 60, t[:8], "x", "ms", DriftRule())  # 8 windows over 7 s
    assert brief["verdict"] == "insufficient"
    assert "spanning >= 600 s" in str(brief["evidence"])


def test_soak_analysis_covers_latency_errors_and_rss() -> None:
    t = np.arange(0, 3600, 60.0)
    steps = pd.DataFrame(
        {WINDOW_S: t, "step": "botReply", "count": 10, "p50_ms": 1.0, "p95_ms": 50.0, "p99_ms": 2.0}
    )
    load = pd.DataFrame({WINDOW_S: t, "requests": 100, "errors": (t / 600).astype(int)})
    health = pd.DataFrame({WINDOW_S: t, "rss_bytes": 2**20 * (100 + t / 36)})
    table = soak_analysis(steps, load, health).set_index("metric")
    assert table.loc["botReply.p95", "verdict"] == "stable"
    assert table.loc["errors.rate", "verdict"] == "drifting"
    assert table.loc["generator.rss", "slope_per_hour"] == pytest.approx(100.0)
    assert table.loc["generator.rss", "verdict"] == "drifting"


def test_lifetimes_same_with_tokens_and_plain_strings() -> None:
    rows: list[dict[str, object]] = []
    for i in range(6):  # two conversations per user, each conn_id 1, told apart by the token
        for k, start in enumerate((0.0, 50.0)):
            tok = f"tok-{i}-{k}"
            rows += [
                ev(s.STEP_CONNECT, start + i, lat_ms=1.0, conn_id=1, user_id=i, session_token=tok),
                ev(s.STEP_ECHO, start + i + 5, lat_ms=0.5, conn_id=1, user_id=i, session_token=tok),
                ev(
                    s.STEP_CLOSE,
                    start + i + 20,
                    conn_id=1,
                    user_id=i,
                    session_token=tok,
                    close_code=1001,
                    close_initiator="server",
                ),
            ]
    events = frame(rows)
    life = connection_lifetimes(events, T0 + 100 * SEC)
    assert len(life) == 12
    assert life["age_s"].tolist() == pytest.approx([20.0] * 12)
    assert life["idle_s"].tolist() == pytest.approx([15.0 - 0.0005] * 12)
    plain = events.astype({c: object for c in events.columns if events[c].dtype == "category"})
    pdt.assert_frame_equal(
        connection_lifetimes(plain, T0 + 100 * SEC)
        .drop(columns=["conn_key"])
        .sort_values("connect_ns", ignore_index=True),
        life.drop(columns=["conn_key"]).sort_values("connect_ns", ignore_index=True),
    )
