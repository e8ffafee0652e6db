"""SLO gate parsing, units, minimum samples and verdicts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.report.slo import evaluate, exit_code, load_slo_file, parse_gate


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "kind"),
    [
        ("botReply.p95 < 800ms", "botReply.p95", "<", 800.0, "latency"),
        ("botReply.p95<0.8s", "botReply.p95", "<", 800.0, "latency"),
        ("connect.p99.9 <= 1500us", "connect.p99.9", "<=", 1.5, "latency"),
        ("connections.success_rate >= 99.5%", "connections.success_rate", ">=", 0.995, "rate"),
        ("connections.success_rate >= 0.995", "connections.success_rate", ">=", 0.995, "rate"),
        ("close_codes.1006 == 0", "close_codes.1006", "==", 0.0, "count"),
        ("close_codes.1011.share < 1%", "close_codes.1011.share", "<", 0.01, "rate"),
        ("errors.rate != 5%", "errors.rate", "!=", 0.05, "rate"),
        ("integrity.duplicate == 0", "integrity.duplicate", "==", 0.0, "count"),
    ],
)
def test_parse_gate(text: str, metric: str, op: str, threshold: float, kind: str) -> None:
    gate = parse_gate(text)
    assert (gate.metric, gate.op, gate.kind) == (metric, op, kind)
    assert gate.threshold == pytest.approx(threshold)


def test_default_min_samples_follow_the_quantile() -> None:
    assert parse_gate("botReply.p95 < 1s").min_samples == 30
    assert parse_gate("botReply.p99 < 1s").min_samples == 100
    assert parse_gate("botReply.p999 < 1s").min_samples == 1000
    assert parse_gate("botReply.p99 < 1s min=5").min_samples == 5
    assert parse_gate("botReply.p99 < 1s", min_samples=7).min_samples == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("botReply.p95 800ms", "missing operator"),
        ("botReply.p95 < fast", "expected METRIC OP VALUE"),
        ("botReply.p42x < 1s", "unknown SLO metric 'botReply.p42x'"),
        ("nosuch.p95 < 1s", "unknown SLO metric"),
        ("botReply.p95 < 80%", "unit '%' does not fit a latency metric"),
        ("connections.success_rate > 3ms", "does not fit a rate metric"),
        ("close_codes.1006 == 1s", "does not fit a count metric"),
        ("botReply.p95 < 1s min=0", "min samples must be >= 1"),
    ],
)
def test_bad_gate_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        parse_gate(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_verdicts_and_exit_codes() -> None:
    gate = parse_gate("botReply.p95 < 800ms")
    assert evaluate(gate, 799.9, 30).verdict == "pass"
    assert evaluate(gate, 800.0, 30).verdict == "fail"
    few = evaluate(gate, 1.0, 29)
    assert few.verdict == "inconclusive"
    assert "29 samples < minimum 30" in few.detail
    assert evaluate(gate, math.nan, 500).verdict == "inconclusive"
    passed, failed, unsure = (evaluate(gate, v, n) for v, n in ((1, 50), (900, 50), (1, 2)))
    assert exit_code([passed]) == 0
    assert exit_code([passed, unsure]) == 2
    assert exit_code([passed, unsure, failed]) == 1
    assert exit_code([]) == 0


def test_slo_file(tmp_path: Path) -> None:
    path = tmp_path / "slo.toml"
    path.write_text(
        'min_samples = 10\ngates = ["botReply.p95 < 800ms"]\n\n'
        '[[gate]]\nmetric = "connections.success_rate"\nop = ">="\nthreshold = "99.5%"\n\n'
        '[[gate]]\nmetric = "close_codes.1006"\nop = "=="\nthreshold = 0\nmin_samples = 3\n',
        encoding="utf-8",
    )
    gates = load_slo_file(path)
    assert [(g.metric, g.threshold, g.min_samples) for g in gates] == [
        ("botReply.p95", 800.0, 10),
        ("connections.success_rate", pytest.approx(0.995), 10),
        ("close_codes.1006", 0.0, 3),
    ]
    path.write_text("gates = [1, 2", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot read SLO file"):
        load_slo_file(path)
    path.write_text("[[gate]]\nmetric = 'botReply.p95'\n", encoding="utf-8")
    with pytest.raises(UsageError, match="needs metric, op and threshold"):
        load_slo_file(path)


def test_observed_values_and_samples() -> None:
    from harness.record import schema as s
    from harness.report.build import build_report
    from harness.report.load import RunData
    from harness.report.observe import check_gates, observe

    from .conftest import ev, frame

    rows = [ev(s.STEP_CONNECT, i, lat_ms=1.0, conn_id=i, user_id=i) for i in range(8)]
    rows += [ev(s.STEP_CONNECT, 9, ok=False, error="http_403", http_status=403)]
    rows += [ev(s.STEP_CONNECT, 9, ok=False, error=s.ERR_RATE_LIMITED)]
    rows += [ev(s.STEP_BOT_REPLY, i, lat_ms=float(i + 1), conn_id=0, user_id=0) for i in range(10)]
    rows += [ev(s.STEP_BOT_REPLY, 11, ok=False, error="timeout", conn_id=0, user_id=0)] * 2
    rows += [ev(s.STEP_CLOSE, 20, conn_id=i, user_id=i, close_code=1000) for i in range(6)]
    rows += [ev(s.STEP_CLOSE, 20, conn_id=i, user_id=i, close_code=1006) for i in (6, 7)]
    rows += [ev(s.STEP_INTEGRITY, 5, ok=False, error="duplicate")]
    report = build_report(RunData(Path("r"), frame(rows), {}))
    expected = {
        "botReply.p95": (9.55, 10),
        "botReply.max": (10.0, 10),
        "botReply.failure_rate": (2 / 12, 12),
        "connections.success_rate": (8 / 9, 9),
        "connections.failed": (1.0, 10),
        "connections.failures.http_403": (1.0, 10),
        "close_codes.1006": (2.0, 8),
        "close_codes.1006.share": (0.25, 8),
        "close_codes.1011": (0.0, 8),
        "errors.rate": (3 / 21, 21),  # 1 connect + 2 botReply failures of 18 + 3 attempts
        "integrity.duplicate": (1.0, 0),
    }
    for metric, (value, samples) in expected.items():
        got_value, got_samples = observe(report, metric)
        assert got_value == pytest.approx(value), metric
        assert got_samples == samples, metric
    results = check_gates(
        report,
        [parse_gate("close_codes.1006 == 0 min=5"), parse_gate("botReply.p95 < 10ms min=11")],
    )
    assert [r.verdict for r in results] == ["fail", "inconclusive"]
