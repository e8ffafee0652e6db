"""report.json, schema_version 1 (design.md contract), plus extra sections.

Contract keys: schema_version, run, connections, close_codes, steps, slo. Latencies are ms
floats, never rounded; NaN (no samples) is written as null.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from harness.report.build import Report
from harness.report.metrics.common import QUANTILE_DEFINITION, thin_rows
from harness.report.search import search_of
from harness.report.slo import GateResult

SCHEMA_VERSION = 1
_CURVE_POINTS = 200


def clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(zip(frame.columns, row, strict=True)) for row in frame.itertuples(index=False)]


def steps_section(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    # to_dict("index") keeps each column's type (counts stay integers; iterrows would not)
    return {
        str(step): {str(k): v for k, v in row.items()}
        for step, row in table.to_dict("index").items()
    }


def gate_records(results: list[GateResult]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.gate.text,
            "metric": r.gate.metric,
            "op": r.gate.op,
            "threshold": r.gate.threshold,
            "kind": r.gate.kind,
            "observed": r.observed,
            "samples": r.samples,
            "min_samples": r.gate.min_samples,
            "verdict": r.verdict,
            "detail": r.detail,
        }
        for r in results
    ]


def capacity_section(report: Report) -> dict[str, Any]:
    """report.json "capacity": levels, knee (or null), max sustainable concurrency, verdict."""
    cap, cfg = report.capacity, report.config.capacity
    return {
        "levels": records(cap.levels),
        "knee": cap.knee,
        "max_sustainable_concurrency": cap.max_sustainable_concurrency,
        "max_tested_concurrency": cap.max_tested_concurrency,
        "verdict_text": cap.verdict_text,
        "search": search_of(report.run),  # --shape capacity: what the search itself found
        "window_s": cfg.window_s,
        "level_step": cap.quantum,
        "rule": {
            "knee_latency_factor": cfg.knee_latency_factor,
            "max_error_rate": cfg.max_error_rate,
            "min_scaling": cfg.min_scaling,
            "min_windows": cfg.min_windows,
        },
    }


def answers_section(report: Report) -> dict[str, Any]:
    """report.json "answers": messages per bot answer and late messages."""
    a = report.answers
    return {
        "answers": a.answers,
        "messages": a.messages,
        "mean_messages": a.mean_messages,
        "max_messages": a.max_messages,
        "messages_per_answer": {str(k): v for k, v in a.distribution.items()},
        "late_messages": a.late_messages,
    }


def scenarios_section(report: Report) -> dict[str, Any] | None:
    """report.json "scenarios" (scripted runs; null otherwise): per scenario name."""
    if not report.scenarios:
        return None
    return {
        r.name: {
            "started": r.started,
            "completed": r.completed,
            "failed": r.failed,
            "stopped": r.stopped,
            "completion_rate": r.completion_rate,
            "funnel": r.funnel,
            "steps": r.latency,
            "examples": r.examples,
        }
        for r in report.scenarios
    }


def report_dict(report: Report, results: list[GateResult], files: dict[str, str]) -> dict[str, Any]:
    """The whole report.json document."""
    conns = report.connections
    closes = report.closes
    health = asdict(report.health)
    health["thresholds"] = asdict(report.config.health)
    health["window_s"] = report.config.health_window_s
    health["saturated_window_starts_s"] = report.health_windows.loc[
        report.health_windows["saturated"].astype(bool), "window_start_s"
    ].tolist()
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run": report.run,
        "warnings": list(report.warnings),
        "trustworthy": report.health.trustworthy and report.run.get("shards_skipped", 0) == 0,
        "connections": asdict(conns),
        "close_codes": {
            str(int(c)): int(n) for c, n in zip(closes["close_code"], closes["count"], strict=True)
        },
        "close_code_details": records(closes),
        "diagnoses": [asdict(d) for d in report.diagnoses],
        "steps": steps_section(report.steps),
        "quantile_definition": QUANTILE_DEFINITION,
        "coordinated_omission": steps_section(report.co_steps) if len(report.co_steps) else None,
        "errors": records(report.errors),
        "integrity": dict(
            zip(report.integrity["category"], report.integrity["count"], strict=True)
        ),
        "generator": health,
        "soak": {"window_s": report.soak_window_s, "metrics": records(report.soak)},
        "survival": {
            "detected_idle_timeout_s": report.detected.get("idle_timeout_s"),
            "detected_max_age_s": report.detected.get("max_age_s"),
            "censored": report.censored,
            "curve": records(thin_rows(report.survival, _CURVE_POINTS)),
        },
        "capacity": capacity_section(report),
        "answers": answers_section(report),
        "scenarios": scenarios_section(report),
        "timeseries": {"files": {k: v for k, v in files.items() if k.startswith("series")}},
        "slo": gate_records(results),
        "files": files,
    }
    return dict(clean(doc))


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
