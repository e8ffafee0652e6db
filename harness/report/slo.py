"""The report's SLO gates. The grammar and verdict rules live in :mod:`harness.gates`, shared
with the load side's capacity search; this module is the report's name for them."""

from __future__ import annotations

from harness.gates import (
    DEFAULT_MIN_SAMPLES,
    MIN_CAPACITY_LEVELS,
    Gate,
    GateResult,
    evaluate,
    exit_code,
    load_slo_file,
    make_gate,
    metric_kind,
    parse_gate,
)

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "MIN_CAPACITY_LEVELS",
    "Gate",
    "GateResult",
    "evaluate",
    "exit_code",
    "load_slo_file",
    "make_gate",
    "metric_kind",
    "parse_gate",
]
