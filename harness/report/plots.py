"""Plots as PNG bytes (matplotlib's object API with the Agg canvas; no pyplot global state).

Seven plots: latency percentiles over time per step, throughput + active connections, close
codes, failure reasons, latency CDF per step, survival curve, capacity per load level.
Saturated generator windows are shaded red on the time plots.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.record import schema as s
from harness.report.build import Report
from harness.report.columns import AGE_S, WINDOW_S
from harness.report.metrics.common import thin_rows

_DPI = 100
#: Survival curves are drawn from at most this many points.
_PLOT_POINTS = 800


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _series_window(report: Report) -> float:
    """10-s windows for runs over 5 min, else 1 s (readable either way)."""
    windows = sorted(report.step_series)
    long_run = float(report.run.get("events_span_s") or 0) > 300
    return windows[-1] if long_run and windows else windows[0]


def _shade_saturated(ax: Axes, report: Report) -> None:
    """Red bands over saturated generator windows; the x axis spans the run."""
    h, w = report.health_windows, report.config.health_window_s
    span = float(report.run.get("events_span_s") or 0.0)
    for start in h.loc[h["saturated"].astype(bool), WINDOW_S]:
        ax.axvspan(start, min(start + w, span), color="red", alpha=0.15, lw=0)
    ax.set_xlim(0, max(span, 1.0))


def on_window_grid(part: pd.DataFrame, window_s: float, windows: int) -> pd.DataFrame:
    """One row per window of the run, NaN where the step had no sample: matplotlib breaks a
    line at NaN, so a window without samples is a gap, not a line drawn across it."""
    index = np.arange(windows) * window_s
    keyed = part.drop_duplicates(WINDOW_S).set_index(WINDOW_S)
    return keyed.reindex(index).rename_axis(WINDOW_S).reset_index()


def latency_over_time(report: Report) -> bytes:
    width = _series_window(report)
    series = report.step_series[width]
    windows = len(report.load_series[width]) if width in report.load_series else 0
    steps = [st for st in s.LATENCY_STEPS if (series["step"] == st).any()]
    fig = Figure(figsize=(10, 2.2 * max(len(steps), 1)))
    for i, step in enumerate(steps or ["(no samples)"]):
        ax = fig.add_subplot(max(len(steps), 1), 1, i + 1)
        part = series[series["step"] == step]
        if windows and len(part):
            last = round(float(part[WINDOW_S].max()) / width) + 1
            part = on_window_grid(part, width, max(windows, last))
        for col, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            # a marker, so a window between two gaps still shows
            ax.plot(part[WINDOW_S], part[col], style, marker=".", ms=3, label=col[:-3])
        _shade_saturated(ax, report)
        ax.set_ylabel(f"{step}\nms")
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(alpha=0.3)
    fig.axes[-1].set_xlabel("seconds since first event")
    fig.suptitle(
        f"Latency percentiles per {_series_window(report):g}-s window (red: generator saturated)"
    )
    return _png(fig)


def throughput(report: Report) -> bytes:
    frame = report.load_series[_series_window(report)]
    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    ax.plot(frame[WINDOW_S], frame["throughput_rps"], label="requests/s", color="tab:blue")
    ax.plot(
        frame[WINDOW_S], frame["errors"] / _series_window(report), label="errors/s", color="tab:red"
    )
    ax.set_ylabel("per second")
    ax.set_xlabel("seconds since first event")
    _shade_saturated(ax, report)
    ax2 = ax.twinx()
    ax2.plot(
        frame[WINDOW_S], frame["active_connections"], color="tab:green", label="active connections"
    )
    ax2.set_ylabel("active connections")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_title("Throughput, errors and active connections")
    return _png(fig)


def _bars(
    labels: list[str], counts: list[int], title: str, colors: list[str] | None = None
) -> bytes:
    fig = Figure(figsize=(8, 0.45 * max(len(labels), 2) + 1.2))
    ax = fig.add_subplot()
    if labels:
        bars = ax.barh(
            labels[::-1], counts[::-1], color=(colors or ["tab:blue"] * len(labels))[::-1]
        )
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts[::-1]], padding=3, fontsize="small")
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel("count")
    return _png(fig)


def close_codes(report: Report) -> bytes:
    c = report.closes
    labels = [f"{int(code)} {name}" for code, name in zip(c["close_code"], c["name"], strict=True)]
    colors = ["tab:green" if int(code) in (1000, 1001) else "tab:red" for code in c["close_code"]]
    return _bars(labels, [int(n) for n in c["count"]], "Close codes", colors)


def failure_reasons(report: Report) -> bytes:
    r = report.failure_reasons
    return _bars(
        [str(x) for x in r["reason"]],
        [int(n) for n in r["count"]],
        "Connection failures by reason",
        ["tab:red"] * len(r),
    )


def latency_cdf(report: Report) -> bytes:
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    for step, cdf in report.cdfs.items():
        if len(cdf):
            ax.plot(np.maximum(cdf["latency_ms"], 1e-3), cdf["fraction"], label=step)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of samples ≤ x")
    ax.grid(alpha=0.3, which="both")
    if any(len(cdf) for cdf in report.cdfs.values()):
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no latency samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Latency CDF per step")
    return _png(fig)


def survival(report: Report) -> bytes:
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    curve = thin_rows(report.survival, _PLOT_POINTS)
    ax.step(curve[AGE_S], curve["survival"], where="post", color="black", label="still open (KM)")
    by_code: pd.DataFrame = report.survival_by_code
    end = float(curve[AGE_S].max()) if len(curve) else 0.0
    for code, full in by_code.groupby("close_code"):
        part = thin_rows(full, _PLOT_POINTS)
        # hold each line flat to the oldest age so the curves read as shares at any age
        x = np.append(part[AGE_S].to_numpy(float), end)
        y = np.append(part["cumulative_share"].to_numpy(float), part["cumulative_share"].iloc[-1])
        ax.step(x, y, where="post", label=f"closed with {code}")
    for key, label in (("idle_timeout_s", "idle timeout"), ("max_age_s", "max age")):
        value = report.detected.get(key)
        if value is not None:
            ax.axvline(value, color="grey", ls="--")
            ax.annotate(f"{label} ≈ {value:.1f} s", (value, 0.5), rotation=90, fontsize="small")
    ax.set_xlabel("connection age (s)")
    ax.set_ylabel("share of connections")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Session survival and time to close by code")
    return _png(fig)


def capacity(report: Report) -> bytes:
    """Turns/s and botReply p95 per load level against concurrency; the knee marked."""
    cap = report.capacity
    levels = cap.levels
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    if not len(levels):
        ax.text(0.5, 0.5, cap.verdict_text, ha="center", va="center", transform=ax.transAxes)
        return _png(fig)
    x = levels["concurrency"].to_numpy(float)
    sat = levels["saturated"].to_numpy(bool)
    ax.plot(x, levels["turns_per_s"], "o-", color="tab:blue", label="turns/s (botReply)")
    ax.set_xlabel("concurrency (active connections, level)")
    ax.set_ylabel("turns per second")
    ax2 = ax.twinx()
    ax2.plot(x, levels["botReply_p95_ms"], "s--", color="tab:orange", label="botReply p95")
    ax2.set_ylabel("botReply p95 (ms)")
    if sat.any():
        ax.plot(
            x[sat],
            levels["turns_per_s"].to_numpy(float)[sat],
            "x",
            color="red",
            ms=10,
            label="generator saturated",
        )
    if cap.knee is not None:
        ax.axvline(cap.knee["concurrency"], color="red", ls=":", label="knee")
    lines, lines2 = ax.get_legend_handles_labels(), ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    # headroom above the data for the legend
    for axis, col in ((ax, "turns_per_s"), (ax2, "botReply_p95_ms")):
        values = levels[col].to_numpy(float)
        finite = values[np.isfinite(values)]
        axis.set_ylim(0, 1.3 * float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
    if cap.knee is not None:
        best = cap.max_sustainable_concurrency
        title = f"knee at {cap.knee['concurrency']:g} connections, max sustainable " + (
            "none" if best is None else f"{best:g}"
        )
    else:
        title = cap.verdict_text.split(" (")[0].rstrip(".")
    ax.set_title(f"Capacity: {title}", fontsize="medium")
    return _png(fig)


PLOTS: dict[str, Callable[[Report], bytes]] = {
    "latency_over_time": latency_over_time,
    "throughput": throughput,
    "close_codes": close_codes,
    "failure_reasons": failure_reasons,
    "latency_cdf": latency_cdf,
    "survival": survival,
    "capacity": capacity,
}


def render_plots(
    report: Report,
    names: Iterable[str] | None = None,
    on_plot: Callable[[str], None] = lambda _n: None,
) -> dict[str, bytes]:
    """The named plots (default: every plot) as PNG bytes, keyed by name."""
    out = {}
    for name in PLOTS if names is None else names:
        on_plot(name)
        out[name] = PLOTS[name](report)
    return out
