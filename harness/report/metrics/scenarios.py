"""Scripted runs (``--script``): per scenario, how many conversations started and completed,
a funnel of where the others stopped and why, and exact latency percentiles per step.

Every conversation ends in exactly one ``scenario`` row: ok = completed; otherwise ``error``
says why and ``script_step`` where (0 = it never connected). Conversations the end of the run
cut short (``stopped``) are counted apart: neither completed nor failed, and not in the
completion rate's denominator. Step latencies are the ``reply`` rows (waits, timed from the
send before them) and the ``botReply`` / ``botAnswer`` rows of the sends, by step number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import QUANTILES, failure_mask, sorted_quantiles

STEP_KINDS = (s.STEP_SCRIPT_REPLY, s.STEP_BOT_REPLY, s.STEP_BOT_ANSWER)
_QS = tuple(q for _, q in QUANTILES)


@dataclass(frozen=True)
class ScenarioReport:
    name: str
    started: int
    completed: int
    failed: int
    stopped: int  # cut short by the end of the run
    completion_rate: float  # completed / (started - stopped)
    #: one row per step: step, description, reached, passed, failed, reasons {reason: n}
    funnel: list[dict[str, Any]] = field(default_factory=list)
    #: one row per (step, kind): step, kind, count, failures, mean_ms, p50_ms, …, max_ms
    latency: list[dict[str, Any]] = field(default_factory=list)
    #: an example failure detail (expected vs arrived) per (step, reason)
    examples: dict[str, str] = field(default_factory=dict)


def _reason(error: object, close_code: float) -> str:
    text = str(error) if isinstance(error, str) and error else "failed"
    if text == s.ERR_CLOSED and not np.isnan(close_code):
        return f"closed {int(close_code)}"
    return text


def _latency(ev: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    fail = failure_mask(ev)
    ok = np.asarray(ev[s.OK], dtype=bool)
    lat = ev[s.LATENCY_US].to_numpy()
    steps = ev[s.SCRIPT_STEP].to_numpy()
    kinds = ev[s.STEP].astype(str).to_numpy()
    for kind in STEP_KINDS:
        for number in np.unique(steps[(kinds == kind) & ~np.isnan(steps)]):
            mask = (kinds == kind) & (steps == number)
            values = np.sort(lat[mask & ok & ~np.isnan(lat)] / 1000.0)
            row: dict[str, Any] = {
                "step": int(number),
                "kind": kind,
                "count": int(values.size),
                "failures": int((mask & fail).sum()),
                "mean_ms": float(values.mean()) if values.size else float("nan"),
            }
            qs = sorted_quantiles(values, _QS)
            row.update(
                {f"{label}_ms": float(v) for (label, _), v in zip(QUANTILES, qs, strict=True)}
            )
            row["max_ms"] = float(values.max()) if values.size else float("nan")
            rows.append(row)
    return sorted(rows, key=lambda r: (r["step"], STEP_KINDS.index(r["kind"])))


def _funnel(ends: pd.DataFrame, descriptions: Sequence[str]) -> list[dict[str, Any]]:
    last = np.nan_to_num(ends[s.SCRIPT_STEP].to_numpy(), nan=0).astype(np.int64)
    ok = np.asarray(ends[s.OK], dtype=bool)
    stopped = np.asarray(ends[s.ERROR] == s.ERR_STOPPED, dtype=bool)
    reasons = [
        _reason(e, c)
        for e, c in zip(ends[s.ERROR].astype(object), ends[s.CLOSE_CODE].to_numpy(), strict=True)
    ]
    total = max([len(descriptions), *last.tolist(), 0])
    rows = []
    for number in range(total + 1):
        here = (last == number) & ~ok & ~stopped
        counts: dict[str, int] = {}
        for i in np.flatnonzero(here):
            counts[reasons[i]] = counts.get(reasons[i], 0) + 1
        if number == 0 and not counts:
            continue  # every conversation connected: no step-0 row
        reached = int((last >= number).sum()) if number else len(ends)
        rows.append(
            {
                "step": number,
                "description": "connect + configureSession"
                if number == 0
                else (descriptions[number - 1] if number <= len(descriptions) else ""),
                "reached": reached,
                "passed": int(((last > number) | ((last == number) & ok)).sum()),
                "failed": int(here.sum()),
                "stopped": int(((last == number) & stopped).sum()),
                "reasons": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            }
        )
    return rows


def scenario_reports(
    events: pd.DataFrame,
    descriptions: Mapping[str, Sequence[str]] | None = None,
) -> list[ScenarioReport]:
    """One report per scenario, in the order first seen; [] when the run was not scripted.

    ``descriptions``: scenario → step descriptions (from run.json); the failed ``reply``
    rows' ``detail`` (expected vs arrived) gives one example per step and reason.
    """
    if s.SCENARIO not in events or events[s.SCENARIO].isna().all():
        return []
    ends_all = events[events[s.STEP] == s.STEP_SCENARIO]
    names = list(dict.fromkeys(str(n) for n in ends_all[s.SCENARIO].dropna()))
    stepped = events[events[s.STEP].isin(STEP_KINDS) & events[s.SCENARIO].notna()]
    out = []
    for name in names:
        ends = ends_all[ends_all[s.SCENARIO] == name]
        ok = int(ends[s.OK].sum())
        stopped = int((ends[s.ERROR] == s.ERR_STOPPED).sum())
        started = len(ends)
        judged = started - stopped
        out.append(
            ScenarioReport(
                name=name,
                started=started,
                completed=ok,
                failed=judged - ok,
                stopped=stopped,
                completion_rate=ok / judged if judged else float("nan"),
                funnel=_funnel(ends, (descriptions or {}).get(name, ())),
                latency=_latency(stepped[stepped[s.SCENARIO] == name]),
                examples=_examples(stepped[stepped[s.SCENARIO] == name]),
            )
        )
    return out


def _examples(rows: pd.DataFrame) -> dict[str, str]:
    if s.DETAIL not in rows:
        return {}
    mine = rows[(rows[s.STEP] == s.STEP_SCRIPT_REPLY) & ~rows[s.OK] & rows[s.DETAIL].notna()]
    out: dict[str, str] = {}
    for row in mine.itertuples(index=False):
        step = getattr(row, s.SCRIPT_STEP)
        key = f"{0 if pd.isna(step) else int(step)} {getattr(row, s.ERROR)}"
        out.setdefault(key, str(getattr(row, s.DETAIL)))
    return out


def overall_completion(reports: Sequence[ScenarioReport]) -> tuple[float, int]:
    """Completion rate over every scenario and the number of judged conversations."""
    judged = sum(r.started - r.stopped for r in reports)
    done = sum(r.completed for r in reports)
    return (done / judged if judged else float("nan")), judged
