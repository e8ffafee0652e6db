"""SLO gates: parse ``"botReply.p95 < 800ms"`` or a TOML file; judge an observed value.

Shared by the report (``harness report --slo``, via harness.report.slo) and the load side
(the capacity search evaluates the same gates on each load level while the run goes), so
the grammar and its verdict rules exist once. Pure: no I/O beyond reading a gate file.

Syntax: ``METRIC OP VALUE[UNIT] [min=N]``; OP is one of < <= > >= == !=.
Metrics: ``<step>.{mean,p50,p90,p95,p99,p999,max}`` (latency: ms, s or us; bare = ms),
``<step>.{count,failures,rate_limited}``, ``<step>.failure_rate``,
``connections.{success_rate,attempted,succeeded,failed,rate_limited}``,
``connections.failures.<reason>``, ``close_codes.<code>`` (count), ``close_codes.<code>.share``,
``errors.{rate,count}``, ``integrity.<category>``,
``generator.{saturated_windows,max_cpu_pct,max_lag_ms}``,
``capacity.max_sustainable_concurrency`` (connections; samples = load levels, minimum 2; with
no knee the highest healthy level tested counts, a lower bound),
``scenarios.completion_rate`` / ``scenarios.{completed,failed}`` (scripted runs; samples =
conversations not cut short by the end of the run).
Rates take ``%`` or a bare fraction. A gate with fewer samples than its minimum is
``inconclusive``, never a silent pass.
"""

from __future__ import annotations

import math
import operator
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.record import schema as s

DEFAULT_MIN_SAMPLES = 30
#: A generator health sample at or above either threshold means the load side was saturated
#: (harness/report/metrics/health.py; the capacity search stops on it).
GENERATOR_CPU_PCT_MAX = 90.0
GENERATOR_LAG_MS_MAX = 50.0
#: A capacity gate needs at least two load levels (one level has no knee to find).
MIN_CAPACITY_LEVELS = 2
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_GATE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>ms|us|µs|s|%)?"
    r"(?:\s+min\s*=\s*(?P<min>\d+))?\s*$"
)
_LATENCY_STATS = {
    "mean": None,
    "p50": 0.5,
    "p90": 0.9,
    "p95": 0.95,
    "p99": 0.99,
    "p999": 0.999,
    "p99.9": 0.999,
    "max": None,
}
_STEP_COUNTS = ("count", "failures", "rate_limited")
_UNIT_SCALE: dict[str, dict[str | None, float]] = {
    "latency": {None: 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001},
    "rate": {None: 1.0, "%": 0.01},
    "count": {None: 1.0},
}


@dataclass(frozen=True, slots=True)
class Gate:
    text: str
    metric: str
    op: str
    threshold: float  # in the metric's own unit: ms, fraction or count
    kind: str  # latency | rate | count
    min_samples: int


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: Gate
    observed: float
    samples: int
    verdict: str  # pass | fail | inconclusive
    detail: str


def metric_kind(metric: str) -> tuple[str, int]:
    """(kind, default minimum samples) of a metric path.

    Raises:
        UsageError: the path names no known metric.
    """
    parts = metric.split(".")
    head, rest = parts[0], ".".join(parts[1:])
    steps = {st.lower(): st for st in s.LATENCY_STEPS}
    if head.lower() in steps and rest in _LATENCY_STATS:
        q = _LATENCY_STATS[rest]
        return "latency", max(DEFAULT_MIN_SAMPLES, math.ceil(1 / (1 - q)) if q else 0)
    if head.lower() in steps and rest in _STEP_COUNTS:
        return "count", DEFAULT_MIN_SAMPLES
    if head.lower() in steps and rest == "failure_rate":
        return "rate", DEFAULT_MIN_SAMPLES
    known = {
        "connections.success_rate": "rate",
        "errors.rate": "rate",
        "errors.count": "count",
        "generator.max_lag_ms": "latency",
        "generator.max_cpu_pct": "count",
        "generator.saturated_windows": "count",
        "capacity.max_sustainable_concurrency": "count",
        "scenarios.completion_rate": "rate",
        "scenarios.completed": "count",
        "scenarios.failed": "count",
    } | {f"connections.{k}": "count" for k in ("attempted", "succeeded", "failed", "rate_limited")}
    if metric == "capacity.max_sustainable_concurrency":
        return "count", MIN_CAPACITY_LEVELS
    if metric in known:
        many = metric.startswith(("conn", "err", "scenarios"))
        return known[metric], DEFAULT_MIN_SAMPLES if many else 1
    if re.fullmatch(r"connections\.failures\.\w+|integrity\.\w+", metric):
        return "count", DEFAULT_MIN_SAMPLES
    if re.fullmatch(r"close_codes\.\d{3,4}", metric):
        return "count", DEFAULT_MIN_SAMPLES
    if re.fullmatch(r"close_codes\.\d{3,4}\.share", metric):
        return "rate", DEFAULT_MIN_SAMPLES
    raise UsageError(
        f"unknown SLO metric {metric!r}: use <step>.p95 (steps: {', '.join(s.LATENCY_STEPS)}), "
        "connections.success_rate, close_codes.<code>, errors.rate, integrity.<category>, "
        "capacity.max_sustainable_concurrency, scenarios.completion_rate …"
    )


def make_gate(
    text: str, metric: str, op: str, value: float, *, unit: str | None, min_samples: int | None
) -> Gate:
    """Validate the parts of a gate and convert the threshold to the metric's unit."""
    if op not in _OPS:
        raise UsageError(f"bad SLO {text!r}: operator {op!r} is not one of {' '.join(_OPS)}")
    kind, default_min = metric_kind(metric)
    scales = _UNIT_SCALE[kind]
    if unit not in scales:
        allowed = ", ".join(u for u in scales if u) or "no unit"
        raise UsageError(
            f"bad SLO {text!r}: unit {unit!r} does not fit a {kind} metric ({allowed})"
        )
    if min_samples is not None and min_samples < 1:
        raise UsageError(f"bad SLO {text!r}: min samples must be >= 1")
    return Gate(
        text.strip(),
        metric,
        op,
        value * scales[unit],
        kind,
        default_min if min_samples is None else min_samples,
    )


def parse_gate(text: str, min_samples: int | None = None) -> Gate:
    """Parse one ``METRIC OP VALUE[UNIT] [min=N]`` gate.

    Raises:
        UsageError: one line saying what is wrong.
    """
    match = _GATE.match(text)
    if match is None:
        hint = "missing operator" if not re.search(r"[<>=!]", text) else "cannot read it"
        raise UsageError(
            f"bad SLO {text!r}: {hint}; expected METRIC OP VALUE[UNIT] [min=N], "
            "e.g. 'botReply.p95 < 800ms'"
        )
    own_min = int(match["min"]) if match["min"] else None
    return make_gate(
        text,
        match["metric"],
        match["op"],
        float(match["value"]),
        unit=match["unit"],
        min_samples=own_min if own_min is not None else min_samples,
    )


def _file_gate(entry: Any, path: Path, default_min: int | None) -> Gate:
    if isinstance(entry, str):
        return parse_gate(entry, default_min)
    if not isinstance(entry, dict) or not {"metric", "op", "threshold"} <= entry.keys():
        raise UsageError(f"{path}: each [[gate]] needs metric, op and threshold")
    threshold = str(entry["threshold"])
    text = f"{entry['metric']} {entry['op']} {threshold}"
    m = re.fullmatch(r"\s*([-+]?[\d.eE+-]+)\s*(ms|us|µs|s|%)?\s*", threshold)
    if m is None:
        raise UsageError(f"{path}: bad threshold {threshold!r} in {text!r}")
    own = entry.get("min_samples", default_min)
    return make_gate(
        text,
        str(entry["metric"]),
        str(entry["op"]),
        float(m[1]),
        unit=m[2],
        min_samples=int(own) if own is not None else None,
    )


def load_slo_file(path: Path, min_samples: int | None = None) -> list[Gate]:
    """Gates from TOML: top-level ``min_samples``, ``gates = ["…"]`` and/or ``[[gate]]``
    tables with metric, op, threshold and optional min_samples.

    Raises:
        UsageError: unreadable file or a bad gate (one line).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read SLO file {path}: {exc}") from exc
    default_min = data.get("min_samples", min_samples)
    if min_samples is not None:
        default_min = min_samples
    entries = list(data.get("gates", [])) + list(data.get("gate", []))
    if not entries:
        raise UsageError(f'{path}: no gates (use gates = ["…"] or [[gate]] tables)')
    return [_file_gate(e, path, default_min) for e in entries]


def evaluate(gate: Gate, observed: float, samples: int) -> GateResult:
    """pass / fail / inconclusive for one gate given the observed value and sample count."""
    if samples < gate.min_samples:
        return GateResult(
            gate,
            observed,
            samples,
            "inconclusive",
            f"{samples} samples < minimum {gate.min_samples}",
        )
    if math.isnan(observed):
        return GateResult(gate, observed, samples, "inconclusive", "no observed value")
    ok = _OPS[gate.op](observed, gate.threshold)
    return GateResult(
        gate,
        observed,
        samples,
        "pass" if ok else "fail",
        f"observed {observed:.6g} {gate.op} {gate.threshold:.6g}: {ok}",
    )


def exit_code(results: list[GateResult]) -> int:
    """0 all pass, 1 any gate failed, 2 inconclusive (and none failed)."""
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return 1
    return 2 if "inconclusive" in verdicts else 0
