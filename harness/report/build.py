"""Assemble every section of a report from one run's events (no I/O, no rendering)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.columns import CLOSE_NS, WINDOW_S
from harness.report.load import RunData
from harness.report.metrics.answers import AnswerSummary, answer_summary
from harness.report.metrics.capacity import Capacity, CapacityConfig, analyse_capacity
from harness.report.metrics.closes import close_code_table
from harness.report.metrics.common import run_bounds_ns, step_mask
from harness.report.metrics.connections import (
    ConnectionSummary,
    connection_summary,
    error_categories,
    failure_reasons,
)
from harness.report.metrics.diagnosis import Diagnosis, diagnose
from harness.report.metrics.guests import guests_table
from harness.report.metrics.health import (
    HealthSummary,
    HealthThresholds,
    health_summary,
    health_windows,
)
from harness.report.metrics.integrity import integrity_counts
from harness.report.metrics.latency import co_latency, latency_cdf, latency_samples, step_latency
from harness.report.metrics.scenarios import ScenarioReport, scenario_reports
from harness.report.metrics.soak import soak_analysis, soak_window_s
from harness.report.metrics.survival import (
    closes_by_code_curve,
    connection_lifetimes,
    survival_curve,
)
from harness.report.metrics.timeseries import (
    coarsen_load_series,
    failed_rows,
    load_series,
    step_series,
    with_failures,
)

#: Number of progress stages build_report announces.
BUILD_STAGES = 10


@dataclass(frozen=True, slots=True)
class ReportConfig:
    windows_s: tuple[float, ...] = (1.0, 10.0)
    health: HealthThresholds = HealthThresholds()
    health_window_s: float = 5.0
    cdf_points: int = 400
    capacity: CapacityConfig = CapacityConfig()


@dataclass(frozen=True)
class Report:
    run: dict[str, Any]
    warnings: tuple[str, ...]
    connections: ConnectionSummary
    failure_reasons: pd.DataFrame
    errors: pd.DataFrame
    closes: pd.DataFrame
    diagnoses: list[Diagnosis]
    steps: pd.DataFrame
    co_steps: pd.DataFrame
    step_series: dict[float, pd.DataFrame]
    load_series: dict[float, pd.DataFrame]
    soak: pd.DataFrame
    soak_window_s: float
    survival: pd.DataFrame
    censored: dict[str, int]
    survival_by_code: pd.DataFrame
    detected: dict[str, float | None]
    integrity: pd.DataFrame
    health_windows: pd.DataFrame
    health: HealthSummary
    cdfs: dict[str, pd.DataFrame]
    capacity: Capacity
    answers: AnswerSummary = field(default_factory=AnswerSummary)
    scenarios: list[ScenarioReport] = field(default_factory=list)
    guests: pd.DataFrame = field(default_factory=pd.DataFrame)
    config: ReportConfig = field(default_factory=ReportConfig)


def _iso_seconds(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def load_span_ns(events: pd.DataFrame) -> tuple[int, int] | None:
    """When the load ran: the first step's start to the last step's end (ts + latency),
    generator health samples excluded; None when the run has only health samples."""
    mask = ~step_mask(events, s.STEP_GENERATOR)
    if not mask.any():
        return None
    ts = events[s.TS_NS].to_numpy()[mask]
    lat_ns = np.nan_to_num(events[s.LATENCY_US].to_numpy(np.float64)[mask], nan=0.0) * 1000.0
    return int(ts.min()), int((ts + np.maximum(lat_ns, 0.0).astype(np.int64)).max())


def _iso_ns(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


def load_span_s(info: dict[str, Any]) -> float | None:
    """Seconds under load: the sum of the run.json ``tests`` spans (one web UI session may
    run several tests with idle time between them); None when run.json lists none."""
    spans = []
    for test in info.get("tests") or []:
        a, b = _iso_seconds(test.get("started")), _iso_seconds(test.get("ended"))
        if a is not None and b is not None:
            spans.append(max(0.0, b - a))
    return sum(spans) if spans else None


def run_section(data: RunData, t0_ns: int, t1_ns: int) -> dict[str, Any]:
    """report.json "run": run.json fields plus what the events themselves say.

    ``duration_s`` is the time under load (the tests' spans), else ended - started, else
    the events' span.
    """
    info = dict(data.info)
    started, ended = _iso_seconds(info.get("started")), _iso_seconds(info.get("ended"))
    duration = load_span_s(info)
    if duration is None and started is not None and ended is not None:
        duration = ended - started
    events_span = (t1_ns - t0_ns) / 1e9
    run = {
        "run_id": info.get("run_id", data.run_dir.name),
        "started": info.get("started"),
        "ended": info.get("ended"),
        "duration_s": duration if duration is not None else events_span,
        "host": info.get("host"),
        "users": info.get("users"),
        "shape": info.get("shape"),
        "harness_version": info.get("harness_version"),
    }
    for key, value in info.items():
        run.setdefault(key, value)
    load = load_span_ns(data.events)
    run.update(
        events=len(data.events),
        events_span_s=events_span,
        first_event=_iso_ns(t0_ns),
        last_event=_iso_ns(t1_ns),
        load_started=_iso_ns(load[0]) if load else None,
        load_ended=_iso_ns(load[1]) if load else None,
        load_duration_s=(load[1] - load[0]) / 1e9 if load else None,
        shards_read=data.shards_read,
        shards_skipped=data.shards_skipped,
    )
    return run


def _flag_saturated(
    series: pd.DataFrame, window_s: float, health: pd.DataFrame, health_w: float
) -> pd.DataFrame:
    """Add ``saturated``: the series window overlaps a saturated health window."""
    bad = health.loc[health["saturated"].astype(bool), WINDOW_S].to_numpy(float)
    first = np.floor(bad / window_s + 1e-9).astype(np.int64)
    last = np.ceil((bad + health_w) / window_s - 1e-9).astype(np.int64) - 1
    hit = np.zeros(len(series) + 1, np.int64)
    np.add.at(hit, np.clip(first, 0, len(series)), 1)
    np.add.at(hit, np.clip(last + 1, 0, len(series)), -1)
    return series.assign(saturated=np.cumsum(hit)[: len(series)] > 0)


def _load_series_all(
    events: pd.DataFrame, t0: int, windows: tuple[float, ...]
) -> dict[float, pd.DataFrame]:
    """The finest window from the events; whole multiples of it by summing (exact counts)."""
    finest = min(windows)
    out = {finest: load_series(events, t0, finest)}
    for w in windows:
        if w in out:
            continue
        whole = abs(w / finest - round(w / finest)) < 1e-9
        out[w] = (
            coarsen_load_series(out[finest], finest, w, events, t0)
            if whole
            else load_series(events, t0, w)
        )
    return out


def _time_sections(
    events: pd.DataFrame,
    samples: pd.DataFrame,
    bounds: tuple[int, int],
    config: ReportConfig,
    on_stage: Callable[[str], None],
) -> dict[str, Any]:
    """Health windows, 1 s / 10 s series (flagged where saturated), capacity, soak drift."""
    t0, t1 = bounds
    on_stage("generator health")
    health = health_windows(events, t0, config.health_window_s, config.health)
    on_stage("time series")
    failed = failed_rows(events)
    sseries = {
        w: with_failures(step_series(samples, t0, w), failed, t0, w) for w in config.windows_s
    }
    lseries = _load_series_all(events, t0, config.windows_s)
    lseries = {w: _flag_saturated(f, w, health, config.health_window_s) for w, f in lseries.items()}
    on_stage("capacity")
    cap_w = config.capacity.window_s
    capacity = analyse_capacity(
        lseries[cap_w]
        if cap_w in lseries
        else _flag_saturated(load_series(events, t0, cap_w), cap_w, health, config.health_window_s),
        sseries[cap_w]
        if cap_w in sseries
        else with_failures(step_series(samples, t0, cap_w), failed, t0, cap_w),
        samples,
        t0_ns=t0,
        span_s=(t1 - t0) / 1e9,
        config=config.capacity,
    )
    on_stage("soak drift")
    soak_w = soak_window_s((t1 - t0) / 1e9, config.windows_s)
    soak = soak_analysis(
        sseries[soak_w] if soak_w in sseries else step_series(samples, t0, soak_w),
        lseries[soak_w] if soak_w in lseries else load_series(events, t0, soak_w),
        health
        if soak_w == config.health_window_s
        else health_windows(events, t0, soak_w, config.health),
    )
    return {
        "health_windows": health,
        "health": health_summary(health),
        "step_series": sseries,
        "load_series": lseries,
        "soak": soak,
        "soak_window_s": soak_w,
        "capacity": capacity,
    }


def kept_sessions(info: dict[str, Any]) -> bool:
    """The run kept its sessions open (``--session-mode keep``; the open model closes every
    conversation whatever the mode), so its users' last client closes are the harness's."""
    options = info.get("options")
    if not isinstance(options, dict):
        return False
    shape = options.get("shape") or info.get("shape")
    return options.get("session_mode") == "keep" and shape != "open"


def _lifetime_sections(
    data: RunData, bounds: tuple[int, int], on_stage: Callable[[str], None]
) -> dict[str, Any]:
    """Survival curves, diagnoses, detected idle timeout / max age, and a data warning."""
    events = data.events
    t0, t1 = bounds
    on_stage("connection lifetimes")
    life = connection_lifetimes(events, t1, kept_sessions=kept_sessions(data.info))
    early = int(life["close_before_activity"].sum())
    warnings: tuple[str, ...] = ()
    if early:
        warnings = (
            f"{early} server-side close row(s) are timestamped before the connection's last "
            "request ended: their ts_ns is not the close time, so connection ages, idle times "
            "and the idle-timeout / max-age detection are unreliable for them",
        )
    on_stage("diagnosis")
    diagnoses = diagnose(events, life, t0)
    found = {d.kind: d.value_s for d in diagnoses}
    return {
        "survival": survival_curve(life),
        "censored": {
            "open_at_end": int(life[CLOSE_NS].isna().sum()),
            "closed_by_harness": int(life["closed_by_harness"].sum()),
        },
        "survival_by_code": closes_by_code_curve(life),
        "diagnoses": diagnoses,
        "detected": {
            "idle_timeout_s": found.get("idle_timeout"),
            "max_age_s": found.get("max_age"),
        },
        "lifetime_warnings": warnings,
    }


def _script_steps(info: dict[str, Any]) -> dict[str, list[str]]:
    """Step descriptions per scenario, as the load side wrote them into run.json."""
    script = info.get("script")
    scenarios = script.get("scenarios") if isinstance(script, dict) else None
    if not isinstance(scenarios, dict):
        return {}
    return {str(k): [str(d) for d in v] for k, v in scenarios.items() if isinstance(v, list)}


def build_report(
    data: RunData,
    config: ReportConfig = ReportConfig(),
    on_stage: Callable[[str], None] = lambda _label: None,
) -> Report:
    """Compute every section. ``on_stage`` is told when each of BUILD_STAGES stages starts."""
    events = data.events
    bounds = run_bounds_ns(events)
    on_stage("connections and closes")
    parts: dict[str, Any] = {
        "run": run_section(data, *bounds),
        "config": config,
        "connections": connection_summary(events),
        "failure_reasons": failure_reasons(events),
        "errors": error_categories(events),
        "closes": close_code_table(events),
    }
    on_stage("latency samples")
    samples = latency_samples(events)
    parts.update(steps=step_latency(events, samples=samples), co_steps=co_latency(events))
    parts.update(_time_sections(events, samples, bounds, config, on_stage))
    parts.update(_lifetime_sections(data, bounds, on_stage))
    parts["warnings"] = data.warnings + parts.pop("lifetime_warnings")
    on_stage("integrity")
    parts["integrity"] = integrity_counts(events)
    parts["answers"] = answer_summary(events)
    parts["scenarios"] = scenario_reports(events, _script_steps(data.info))
    parts["guests"] = guests_table(events)
    on_stage("latency CDFs")
    parts["cdfs"] = {st: latency_cdf(samples, st, config.cdf_points) for st in s.LATENCY_STEPS}
    return Report(**parts)
