"""Markdown and JSON for ``harness compare``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import orjson
import pandas as pd

from harness.report.compare import CompareConfig
from harness.report.render_json import clean, records
from harness.report.sections import fmt


def compare_markdown(
    base: Path, cand: Path, rows: pd.DataFrame, cfg: CompareConfig, result: str
) -> str:
    lines = [
        f"# Compare: {cand.name} vs {base.name}",
        "",
        f"Overall: **{result}** at {cfg.confidence:.0%} confidence; latency tolerance "
        f"max({cfg.tolerance_rel:.1%} of base, {cfg.tolerance_ms:g} ms), rate tolerance "
        f"{cfg.tolerance_rate:.2%}. Verdict = interval excludes 0 and |delta| > tolerance.",
        "",
        "| metric | base | candidate | delta | CI low | CI high | tolerance | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    numbers = rows[["base", "candidate", "delta", "ci_low", "ci_high", "tolerance"]]
    for metric, values, v in zip(
        rows["metric"], numbers.to_numpy(float), rows["verdict"], strict=True
    ):
        cells = " | ".join(fmt(float(x), 4) for x in values)
        lines.append(f"| {metric} | {cells} | {v} |")
    return "\n".join(lines) + "\n"


def compare_json(
    base: Path, cand: Path, rows: pd.DataFrame, cfg: CompareConfig, result: str
) -> bytes:
    doc = {
        "schema_version": 1,
        "base": str(base),
        "candidate": str(cand),
        "config": asdict(cfg),
        "verdict": result,
        "metrics": records(rows),
    }
    return orjson.dumps(clean(doc), option=orjson.OPT_INDENT_2) + b"\n"
