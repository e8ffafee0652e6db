"""Look up the observed value and sample count of an SLO metric in a built report."""

from __future__ import annotations

import math

from harness.record import schema as s
from harness.report.build import Report
from harness.report.metrics.scenarios import overall_completion
from harness.report.slo import Gate, GateResult, evaluate


def _step_value(report: Report, step: str, stat: str) -> tuple[float, int]:
    row: dict[object, float] = report.steps.loc[step].to_dict()
    count, failures = int(row["count"]), int(row["failures"])
    if stat in ("count", "failures", "rate_limited"):
        return float(row[stat]), count + failures
    if stat == "failure_rate":
        n = count + failures
        return (failures / n if n else math.nan), n
    key = "p999_ms" if stat in ("p999", "p99.9") else f"{stat}_ms"
    return float(row[key]), count


def _close_value(report: Report, code: int, share: bool) -> tuple[float, int]:
    closes = report.closes
    total = int(closes["count"].sum()) if len(closes) else 0
    n = int(closes.loc[closes["close_code"] == code, "count"].sum()) if len(closes) else 0
    if share:
        return (n / total if total else math.nan), total
    return float(n), max(report.connections.succeeded, total)


def observe(report: Report, metric: str) -> tuple[float, int]:
    """(observed value in the metric's unit, samples behind it)."""
    head, _, rest = metric.partition(".")
    steps = {st.lower(): st for st in s.LATENCY_STEPS}
    conns = report.connections
    if head.lower() in steps:
        return _step_value(report, steps[head.lower()], rest)
    if head == "connections":
        if rest.startswith("failures."):
            return float(conns.failures_by_reason.get(rest[9:], 0)), conns.attempted
        if rest == "success_rate":
            return conns.success_rate, conns.attempted - conns.rate_limited
        return float(getattr(conns, rest)), conns.attempted
    if head == "close_codes":
        code, _, tail = rest.partition(".")
        return _close_value(report, int(code), tail == "share")
    if head == "errors":  # botAnswer measures the same turns as botReply: not counted twice
        steps_once = report.steps.drop(index=s.STEP_BOT_ANSWER, errors="ignore")
        fails = int(steps_once["failures"].sum())
        n = fails + int(steps_once["count"].sum())
        return ((fails / n if n else math.nan) if rest == "rate" else float(fails)), n
    if head == "integrity":
        table = report.integrity.set_index("category")["count"]
        on_msg = report.steps.loc[s.STEP_ON_MESSAGE].to_dict()
        n = int(on_msg["count"]) + int(on_msg["failures"])
        return float(table.to_dict().get(rest, 0)), n
    if head == "scenarios":
        rate, judged = overall_completion(report.scenarios)
        if rest == "completion_rate":
            return rate, judged
        return float(sum(getattr(r, rest) for r in report.scenarios)), judged
    if head == "capacity":  # rest == "max_sustainable_concurrency" (slo.metric_kind)
        cap = report.capacity
        return cap.gate_value, len(cap.levels)
    health = report.health
    value = {
        "saturated_windows": float(health.saturated_windows),
        "max_cpu_pct": health.max_cpu_pct,
        "max_lag_ms": health.max_lag_ms,
    }[rest]
    return value, health.windows


def check_gates(report: Report, gates: list[Gate]) -> list[GateResult]:
    """Evaluate every gate against the report."""
    return [evaluate(g, *observe(report, g.metric)) for g in gates]
