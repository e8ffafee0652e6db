"""``harness compare BASE_RUN CANDIDATE_RUN``: deltas with confidence intervals and verdicts.

Writes compare.md and compare.json (into --out, default the candidate run directory) and
prints the Markdown. Exit codes: 0 no regression, 1 a regression beyond tolerance,
3 a run could not be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError

FATAL_EXIT = 3


def _fraction(text: str) -> float:
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or percentage: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", type=Path, metavar="BASE_RUN")
    parser.add_argument("candidate", type=Path, metavar="CANDIDATE_RUN")
    parser.add_argument(
        "--confidence", type=_fraction, default=0.95, help="CI level (default 95%%)"
    )
    parser.add_argument(
        "--tolerance",
        type=_fraction,
        default=0.05,
        help="latency tolerance as a share of the base value (default 5%%)",
    )
    parser.add_argument(
        "--tolerance-ms",
        type=float,
        default=1.0,
        help="absolute latency tolerance floor in ms (default 1)",
    )
    parser.add_argument(
        "--rate-tolerance",
        type=_fraction,
        default=0.005,
        help="success-rate / close-code share tolerance (default 0.5%%)",
    )
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap replicates")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--out", type=Path, help="output directory (default: CANDIDATE_RUN)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except HarnessError as exc:
        print(f"harness compare: error: {exc}", file=sys.stderr)
        return FATAL_EXIT


def _side(run_dir: Path) -> dict[str, Any]:
    from harness.report.compare import scenario_samples
    from harness.report.load import COMPARE_COLUMNS, load_run
    from harness.report.metrics.closes import close_code_table
    from harness.report.metrics.connections import connection_summary
    from harness.report.metrics.latency import latency_samples

    data = load_run(run_dir, columns=(*COMPARE_COLUMNS, "close_initiator"))
    for warning in data.warnings:
        print(f"warning: {run_dir}: {warning}", file=sys.stderr)
    events = data.events
    return {
        "dir": run_dir,
        "samples": latency_samples(events),
        "conns": connection_summary(events),
        "closes": close_code_table(events),
        "scenarios": scenario_samples(events),
        "warnings": list(data.warnings),
    }


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from harness.report.compare import (
        CompareConfig,
        compare_latency,
        compare_rates,
        compare_scenarios,
        overall,
    )
    from harness.report.compare_render import compare_json, compare_markdown

    if not 0 < args.confidence < 1:
        raise UsageError(f"--confidence must be within (0, 1): {args.confidence}")
    cfg = CompareConfig(
        args.confidence,
        args.tolerance,
        args.tolerance_ms,
        args.rate_tolerance,
        args.resamples,
        args.seed,
    )
    base, cand = _side(args.base), _side(args.candidate)
    rows = pd.concat(
        [
            compare_latency(base["samples"], cand["samples"], cfg),
            compare_rates(base["conns"], cand["conns"], base["closes"], cand["closes"], cfg),
            compare_scenarios(base["scenarios"], cand["scenarios"], cfg),
        ],
        ignore_index=True,
    )
    result = overall(rows)
    out = args.out or args.candidate
    out.mkdir(parents=True, exist_ok=True)
    md = compare_markdown(args.base, args.candidate, rows, cfg, result)
    (out / "compare.md").write_text(md, encoding="utf-8")
    (out / "compare.json").write_bytes(compare_json(args.base, args.candidate, rows, cfg, result))
    print(md)
    return 1 if result == "regression" else 0
