"""The soak bench's drift figures: its slope and its use of the report's drift rule."""

from __future__ import annotations

import pytest

from harness.bench.soak import Sample, same_rule_verdict, side_line, slope_mib_per_10min

MIB = 2**20


def _samples(mib_per_10min: float, minutes: float = 30, every_s: float = 10) -> list[Sample]:
    n = int(minutes * 60 / every_s)
    wobble = (0, MIB // 4, -MIB // 4)  # the allocator's ups and downs
    return [
        Sample(
            i * every_s,
            int(100 * MIB + mib_per_10min * MIB * i * every_s / 600) + wobble[i % 3],
            50,
        )
        for i in range(n)
    ]


def test_slope_is_per_10_minutes() -> None:
    assert slope_mib_per_10min(_samples(2.0)) == pytest.approx(2.0, abs=0.05)
    assert slope_mib_per_10min(_samples(0.0)) == pytest.approx(0.0, abs=0.05)
    assert slope_mib_per_10min(_samples(1.0)[:2]) is None


def test_side_line_judges_the_target_after_the_warmup() -> None:
    flat_after_ramp = [
        Sample(s.t_s, s.rss + (0 if s.t_s >= 180 else -20 * MIB), s.fds) for s in _samples(0.0)
    ]
    line, ok = side_line("gen", flat_after_ramp, warmup_s=180)
    assert ok, line
    line, ok = side_line("gen", _samples(1.5), warmup_s=180)
    assert not ok and "NOT met" in line


def test_report_rule_on_samples() -> None:
    assert same_rule_verdict(_samples(10.0), 90)[0] == "drifting"
    assert same_rule_verdict(_samples(0.0), 90)[0] == "stable"
    assert same_rule_verdict(_samples(0.0, minutes=5), 90)[0] == "insufficient"
