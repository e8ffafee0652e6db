"""``harness report RUN_DIR``: report.json/md/html (+ junit.xml with gates) in the run dir.

Exit codes: 0 all gates pass (or none given), 1 a gate failed, 2 only inconclusive gates,
3 the report could not be made (missing/empty run dir, bad gate syntax): one-line error.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError

FATAL_EXIT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="run directory (events/*.parquet + run.json)"
    )
    parser.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="GATE",
        help="SLO gate, e.g. 'botReply.p95 < 800ms' (repeatable)",
    )
    parser.add_argument("--slo-file", type=Path, help="TOML file with gates (see README)")
    parser.add_argument(
        "--min-samples", type=int, help="minimum samples for every gate (default per metric)"
    )
    parser.add_argument("--out", type=Path, help="output directory (default: RUN_DIR)")
    parser.add_argument("--no-plots", action="store_true", help="skip plots (HTML without images)")
    parser.add_argument(
        "--progress", action="store_true", help="progress bar even when stderr is not a TTY"
    )
    parser.add_argument(
        "--cpu-threshold",
        type=float,
        default=90.0,
        help="generator cpu_pct that marks a window saturated (default 90)",
    )
    parser.add_argument(
        "--capacity-window",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="window length for the capacity levels (default 10)",
    )
    parser.add_argument(
        "--lag-threshold",
        default="50ms",
        help="event-loop lag that marks a window saturated (default 50ms)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except HarnessError as exc:
        print(f"harness report: error: {exc}", file=sys.stderr)
        return FATAL_EXIT


def _gates(args: argparse.Namespace) -> list[Any]:
    from harness.report.slo import load_slo_file, parse_gate

    gates = [parse_gate(text, args.min_samples) for text in args.slo]
    if args.slo_file is not None:
        gates += load_slo_file(args.slo_file, args.min_samples)
    return gates


def lag_ms(text: str) -> float:
    """``50ms``, ``0.05s``, ``50000us`` or a bare number of ms.

    Raises:
        UsageError: anything else.
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|us)?\s*", text)
    if m is None:
        raise UsageError(f"--lag-threshold: not a duration: {text!r} (use e.g. 50ms or 0.05s)")
    return float(m[1]) * {None: 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001}[m[2]]


def _run(args: argparse.Namespace) -> int:
    from harness.report.build import BUILD_STAGES, ReportConfig, build_report
    from harness.report.load import load_run, shard_paths
    from harness.report.metrics.capacity import CapacityConfig
    from harness.report.metrics.health import HealthThresholds
    from harness.report.observe import check_gates
    from harness.report.progress import Progress
    from harness.report.slo import exit_code
    from harness.report.write import write_outputs

    gates = _gates(args)  # bad syntax fails before any data is read
    if not args.capacity_window > 0:
        raise UsageError(f"--capacity-window must be > 0 seconds, got {args.capacity_window:g}")
    config = ReportConfig(
        health=HealthThresholds(args.cpu_threshold, lag_ms(args.lag_threshold)),
        capacity=CapacityConfig(window_s=args.capacity_window),
    )
    shards = shard_paths(args.run_dir)
    n_plots = 0
    if not args.no_plots:  # matplotlib is imported only when plots are wanted
        from harness.report.plots import PLOTS

        n_plots = len(PLOTS)
    stages = len(shards) + BUILD_STAGES + n_plots + 1
    progress = Progress(stages, enabled=args.progress or sys.stderr.isatty())
    data = load_run(args.run_dir, on_shard=lambda name: progress.advance(f"read {name}"))
    report = build_report(data, config, on_stage=progress.advance)
    results = check_gates(report, gates)
    out_dir = args.out or args.run_dir
    files = write_outputs(
        report, results, out_dir, plots=not args.no_plots, on_stage=progress.advance
    )
    progress.finish()
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_summary(report, results, files, out_dir)
    return exit_code(results)


def _print_summary(report: Any, results: list[Any], files: dict[str, str], out_dir: Path) -> None:
    c = report.connections
    closes = int(report.closes["count"].sum()) if len(report.closes) else 0
    print(
        f"run {report.run.get('run_id')}: {report.run.get('events')} events, connections "
        f"{c.succeeded}/{c.attempted} ok, closes {closes}"
    )
    if not report.health.trustworthy:
        print(
            f"WARNING: generator saturated in {report.health.saturated_windows} windows: "
            "latency figures are not trustworthy"
        )
    for d in report.diagnoses:
        print(f"diagnosis: {d.text}")
    for r in results:
        print(f"SLO {r.verdict.upper():<12} {r.gate.text}  ({r.detail})")
    print(
        "wrote "
        + ", ".join(
            str(out_dir / f) for k, f in files.items() if not k.startswith(("series", "plot"))
        )
    )
