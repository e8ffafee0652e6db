"""The report as a renderer-neutral document: titled sections of text, tables and plots.

Markdown and HTML render the same sections, so the two never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import pandas as pd

from harness.report.build import Report
from harness.report.metrics.common import QUANTILE_DEFINITION
from harness.report.search import SEARCH_HEADERS, search_of, search_rows, search_text
from harness.report.slo import GateResult


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


def fmt(value: object, digits: int = 3) -> str:
    """Numbers with decimals (latencies are never rounded to whole ms), "n/a" for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 100:.3f}%"


def frame_table(frame: pd.DataFrame, index: str | None = None) -> Table:
    data = frame.reset_index() if index else frame
    rows = [
        [fmt(v.item() if hasattr(v, "item") else v) for v in row]
        for row in data.itertuples(index=False)
    ]
    return Table([str(c) for c in data.columns], rows)


#: Shape options worth naming in the header (as given on the command line).
_SHAPE_OPTIONS: dict[str, tuple[str, ...]] = {
    "ramp": ("peak_users", "ramp_time", "hold_time"),
    "soak": ("peak_users", "ramp_time", "hold_time"),
    "step": ("peak_users", "step_users", "step_time"),
    "spike": ("spike_users", "spike_at", "spike_time"),
    "open": ("arrival_rate", "max_users"),
}


def _flags(options: dict[str, object], names: tuple[str, ...]) -> str:
    given = [(n, options.get(n)) for n in names]
    return " ".join(f"--{n.replace('_', '-')} {v}" for n, v in given if v not in (None, "", 0))


def _clock(iso: object) -> str:
    """``2026-01-02T03:04:05.678+00:00`` → ``2026-01-02 03:04:05Z``."""
    return f"{str(iso)[:19].replace('T', ' ')}Z" if iso else "n/a"


def run_lines(report: Report) -> list[str]:
    """What was loaded, how hard and for how long: host, users / shape, duration of load."""
    run = report.run
    raw = run.get("options")
    options: dict[str, object] = raw if isinstance(raw, dict) else {}
    host = run.get("host")
    target = f"`{host}`" if host else "unknown (no host in run.json)"
    if run.get("simulator_summary"):
        target += " (embedded simulator)"
    shape = str(run.get("shape") or options.get("shape") or "unknown")
    load = f"{fmt(run.get('users'))} users"
    if run.get("spawn_rate") is not None:
        load += f", spawn rate {fmt(run.get('spawn_rate'), 1)}/s"
    flags = _flags(options, _SHAPE_OPTIONS.get(shape, ()))
    load += f", shape `{shape}`" + (f" ({flags})" if flags else "")
    if options.get("session_mode"):
        load += f", session mode `{options['session_mode']}`"
    if run.get("run_time_s"):
        load += f", -t {fmt(run.get('run_time_s'))} s"
    finest = report.load_series[min(report.load_series)] if report.load_series else None
    peak = float(finest["active_connections"].max()) if finest is not None else math.nan
    duration = (
        f"Load ran {fmt(run.get('load_duration_s'), 1)} s, from {_clock(run.get('load_started'))}"
        f" to {_clock(run.get('load_ended'))} (first step start to last step end)"
    )
    if run.get("started") and run.get("ended"):
        duration += f"; the whole run (run.json) {fmt(run.get('duration_s'), 1)} s"
    return [
        f"Target: {target}.",
        f"Load: {load}; peak {fmt(peak, 0)} active connections.",
        duration + ".",
    ]


def headline(report: Report, results: list[GateResult]) -> Section:
    c, h = report.connections, report.health
    text = [
        *run_lines(report),
        f"Run `{report.run.get('run_id')}`: {report.run.get('events')} events; connections "
        f"{c.succeeded}/{c.attempted - c.rate_limited} succeeded ({pct(c.success_rate)}).",
    ]
    if not h.trustworthy:
        text.append(
            f"**WARNING: the load generator was saturated in {h.saturated_windows} of {h.windows} "
            f"windows (CPU >= {report.config.health.cpu_pct_max:g}% or event-loop lag >= "
            f"{report.config.health.lag_ms_max:g} ms). Latency figures are NOT trustworthy: they "
            "include generator queueing (docs/troubleshooting.md#a-saturated-generator).**"
        )
    text += [f"**Warning:** {w}" for w in report.warnings]
    if results:
        counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "fail", "inconclusive")}
        text.append(
            f"SLO gates: {counts['pass']} pass, {counts['fail']} fail, "
            f"{counts['inconclusive']} inconclusive."
        )
    return Section("Summary", text)


def connections_section(report: Report) -> Section:
    c = report.connections
    summary = Table(
        ["attempted", "succeeded", "failed", "rate limited", "success rate"],
        [
            [
                str(c.attempted),
                str(c.succeeded),
                str(c.failed),
                str(c.rate_limited),
                pct(c.success_rate),
            ]
        ],
    )
    reasons = frame_table(report.failure_reasons)
    return Section(
        "Connection success",
        ["success rate = succeeded / (attempted - rate limited)."],
        [summary, reasons],
        ["failure_reasons"],
    )


def closes_section(report: Report) -> Section:
    text = [f"Diagnosis: {d.text}" for d in report.diagnoses] or [
        "Diagnosis: none (no pattern the evidence supports)."
    ]
    closes = report.closes.assign(share=report.closes["share"].map(lambda v: pct(float(v))))
    text.append("What each code means: docs/guest-api.md#close-codes.")
    return Section("Close codes", text, [frame_table(closes)], ["close_codes"])


def co_table(steps: pd.DataFrame, co: pd.DataFrame) -> Table:
    """Actual vs intended-start percentiles per step, one column pair per statistic."""
    stats = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    headers = ["step", "samples"] + [
        f"{st} {kind}" for st in stats for kind in ("actual", "intended")
    ]
    rows = []
    actual = steps.to_dict(orient="index")
    for step, row in co.to_dict(orient="index").items():
        cells = [str(step), fmt(int(row["count"]))]
        for st in stats:
            cells += [fmt(float(actual[step][st])), fmt(float(row[st]))]
        rows.append(cells)
    return Table(headers, rows)


def latency_section(report: Report) -> Section:
    text = [
        f"Latency in ms from raw samples. Quantiles: {QUANTILE_DEFINITION} "
        "(docs/metrics.md#percentiles).",
        "count = successful samples; failures exclude rate-limited requests (counted apart).",
    ]
    tables = [frame_table(report.steps, index="step")]
    if len(report.co_steps):
        text.append(
            "Coordinated-omission view (open model), side by side: 'actual' is measured from "
            "the actual start, 'intended' from the scheduled start (latency + start delay), "
            "for the steps that carry a schedule."
        )
        tables.append(co_table(report.steps, report.co_steps))
    return Section("Latency per step", text, tables, ["latency_over_time", "latency_cdf"])


def answers_section(report: Report) -> Section:
    """Messages per bot answer and late messages (the answer rule is in the README)."""
    a = report.answers
    text = [
        "An answer is every bot message after a guest text until the bot has been quiet for "
        "--answer-quiet (or a message offers quick replies, or the reply timeout); botReply is "
        "its first message, botAnswer its last.",
        f"{a.answers} answers, {a.messages} messages, mean {fmt(a.mean_messages, 2)} and max "
        f"{a.max_messages} messages per answer; {a.late_messages} late messages (a bot message "
        "after its answer had closed: raise --answer-quiet if this is not 0).",
    ]
    table = Table(
        ["messages per answer", "answers", "share"],
        [[str(k), str(v), pct(v / a.answers)] for k, v in sorted(a.distribution.items())],
    )
    return Section("Bot answers", text, [table] if a.distribution else [])


def scenarios_section(report: Report) -> Section:
    """Scripted runs: completion, the funnel of where conversations stopped, step latency."""
    text = [
        "Each conversation runs one scenario. completion rate = completed / (started - "
        "stopped by the end of the run). The funnel lists, per step, the conversations that "
        "reached it, passed it, and failed there by reason; step latencies are exact "
        "percentiles in ms, waits (reply) timed from the send before them."
    ]
    tables = [
        Table(
            ["scenario", "started", "completed", "failed", "stopped by run end", "completion"],
            [
                [r.name, str(r.started), str(r.completed), str(r.failed), str(r.stopped),
                 pct(r.completion_rate)]
                for r in report.scenarios
            ],
        )
    ]  # fmt: skip
    for r in report.scenarios:
        funnel = [
            [
                str(f["step"]),
                f["description"],
                str(f["reached"]),
                str(f["passed"]),
                str(f["failed"]),
                ", ".join(f"{k}: {v}" for k, v in f["reasons"].items()) or "-",
            ]
            for f in r.funnel
        ]
        tables.append(
            Table([f"{r.name}: step", "what", "reached", "passed", "failed", "why"], funnel)
        )
        latency = [
            [str(x["step"]), x["kind"], str(x["count"]), str(x["failures"])]
            + [fmt(x[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
            for x in r.latency
        ]
        if latency:
            tables.append(
                Table(
                    [f"{r.name}: step", "kind", "count", "failures", "p50", "p95", "p99", "max"],
                    latency,
                )
            )
        text += [f"{r.name}, step {k}: {v}" for k, v in sorted(r.examples.items())]
    return Section("Scenarios", text, tables)


def throughput_section(report: Report) -> Section:
    text = []
    for w, frame in report.load_series.items():
        text.append(
            f"{w:g}-s windows: peak {frame['throughput_rps'].max():.1f} req/s, "
            f"peak active connections {frame['active_connections'].max():.0f}, "
            f"{int(frame['errors'].sum())} errors, "
            f"{int(frame['saturated'].sum())} saturated windows."
        )
    return Section("Time series", text, [], ["throughput"])


def capacity_section(report: Report) -> Section:
    cap, cfg = report.capacity, report.config.capacity
    text = [
        f"**Capacity: {cap.verdict_text}**" if cap.knee else f"Capacity: {cap.verdict_text}",
        f"Levels: consecutive {cfg.window_s:g}-s windows whose active connections stay within "
        f"±{fmt(cap.quantum / 2, 1)} of their plateau's mean (half the level step "
        f"{fmt(cap.quantum, 0)}); plateaus shorter than {cfg.min_windows} windows are "
        "transitions and are left out; concurrency = median active connections of a level. "
        "Knee = first level where botReply p95 > "
        f"{cfg.knee_latency_factor:g} x the lowest level's, or error rate > "
        f"{cfg.max_error_rate * 100:g}%, or turns/s per connection < "
        f"{cfg.min_scaling * 100:g}% of the lowest level's; levels with a saturated generator "
        "cannot define it. Latencies (ms) are exact percentiles of the samples in each level's "
        "windows.",
    ]
    cols = {
        "concurrency": "concurrency",
        "mean_active": "mean active",
        "duration_s": "duration s",
        "turns_per_s": "turns/s",
        "requests_per_s": "req/s",
        "botReply_p50_ms": "botReply p50",
        "botReply_p95_ms": "botReply p95",
        "botReply_p99_ms": "botReply p99",
        "onMessage_p95_ms": "onMessage p95",
        "onMessage_p99_ms": "onMessage p99",
        "error_rate": "error rate",
        "rate_limited_rate": "rate limited",
        "connection_success_rate": "conn success",
        "saturated": "saturated",
    }
    levels = cap.levels[list(cols)].rename(columns=cols)
    for col in ("error rate", "rate limited", "conn success"):
        levels[col] = levels[col].map(lambda v: pct(float(v)))
    for col in ("concurrency", "mean active", "duration s"):
        levels[col] = levels[col].map(lambda v: fmt(float(v), 1))
    tables = [frame_table(levels)] if len(levels) else []
    search = search_of(report.run)
    if search is not None:  # a --shape capacity run: its own verdict comes first
        text = search_text(search) + text
        tables.insert(0, Table(SEARCH_HEADERS, search_rows(search)))
    return Section("Capacity", text, tables, ["capacity"])


def soak_section(report: Report) -> Section:
    table = report.soak.drop(columns=["evidence"])
    text = [
        f"Windows of {report.soak_window_s:g} s; drifting = fitted change > tolerance of the "
        "mean level and |t| >= 3."
    ]
    text += [f"{r.metric}: **{r.verdict}** — {r.evidence}" for r in report.soak.itertuples()]
    return Section("Soak drift", text, [frame_table(table)])


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f} s"


def survival_section(report: Report) -> Section:
    d = report.detected
    text = [
        f"Detected idle timeout: {_seconds(d.get('idle_timeout_s'))}; detected max connection "
        f"age: {_seconds(d.get('max_age_s'))}.",
        "Kaplan-Meier survival of established connections. Censored (alive when observation "
        f"stopped): {report.censored['open_at_end']} still open at the end of the run, "
        f"{report.censored['closed_by_harness']} closed by the harness itself when it stopped "
        "their user (kept sessions: a client close 1000 after which the user made no new "
        "connection; see docs/metrics.md#session-survival).",
    ]
    return Section("Session survival", text, [], ["survival"])


def integrity_section(report: Report) -> Section:
    return Section(
        "Message integrity",
        ["lost = integrity 'lost' rows, else onMessage timeouts."],
        [frame_table(report.integrity), frame_table(report.errors)],
    )


def health_section(report: Report) -> Section:
    h, t = report.health, report.config.health
    text = [
        f"Saturated = any worker with cpu_pct >= {t.cpu_pct_max:g} or event-loop lag >= "
        f"{t.lag_ms_max:g} ms in a {report.config.health_window_s:g}-s window.",
        f"{h.samples} samples, {h.saturated_windows}/{h.windows} saturated windows, max CPU "
        f"{fmt(h.max_cpu_pct, 1)}%, max lag {fmt(h.max_lag_ms)} ms, peak RSS "
        f"{fmt(h.peak_rss_bytes / 2**20, 1)} MiB.",
    ]
    return Section("Generator health", text)


def slo_section(results: list[GateResult]) -> Section:
    rows = [
        [
            r.gate.text,
            r.verdict.upper(),
            fmt(r.observed, 4),
            str(r.samples),
            str(r.gate.min_samples),
            r.detail,
        ]
        for r in results
    ]
    return Section(
        "SLO gates",
        [
            "Exit code: 0 all pass, 1 a gate failed, 2 inconclusive only "
            "(docs/metrics.md#slo-gates)."
        ],
        [Table(["gate", "verdict", "observed", "samples", "min samples", "detail"], rows)],
    )


def empty_plots(report: Report) -> dict[str, str]:
    """Plots that would show nothing, each with the one line the report says instead.

    No placeholder image is drawn for them (and no PNG written).
    """
    empty: dict[str, str] = {}
    if not len(report.failure_reasons):
        empty["failure_reasons"] = "No connection failures, so no failure-reason plot."
    if not len(report.closes):
        empty["close_codes"] = "No connection was closed, so no close-code plot."
    if not any(len(cdf) for cdf in report.cdfs.values()):
        line = "No latency samples, so no latency plots."
        empty["latency_cdf"] = empty["latency_over_time"] = line
    if not len(report.survival) or int(report.survival["at_risk"].iloc[0]) == 0:
        empty["survival"] = "No established connection, so no survival plot."
    if len(report.capacity.levels) < 2:
        empty["capacity"] = "No capacity plot: it needs at least two load levels."
    return empty


def _say_instead(section: Section, empty: dict[str, str]) -> Section:
    """Replace the section's empty plots by their one line (each line said once)."""
    gone = [name for name in section.plots if name in empty]
    if not gone:
        return section
    lines = list(dict.fromkeys(empty[name] for name in gone))
    kept = [name for name in section.plots if name not in empty]
    return replace(section, text=[*section.text, *lines], plots=kept)


def build_sections(report: Report, results: list[GateResult]) -> list[Section]:
    """Every section, in reading order; empty plots are left out (see empty_plots)."""
    empty = empty_plots(report)
    sections = [headline(report, results)]
    if results:
        sections.append(slo_section(results))
    return [
        _say_instead(sec, empty)
        for sec in [
            *sections,
            connections_section(report),
            closes_section(report),
            latency_section(report),
            answers_section(report),
            *([scenarios_section(report)] if report.scenarios else []),
            throughput_section(report),
            capacity_section(report),
            soak_section(report),
            survival_section(report),
            integrity_section(report),
            health_section(report),
        ]
    ]
