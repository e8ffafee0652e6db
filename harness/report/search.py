"""The capacity search's outcome, as recorded by ``--shape capacity`` in run.json
``capacity_search``: its verdict (the highest level meeting every gate, the first that did
not and why, generator or server) and one row per level it judged."""

from __future__ import annotations

import math
from typing import Any

SEARCH_HEADERS = [
    "level",
    "users",
    "active connections",
    "turns/s",
    "max CPU %",
    "max lag ms",
    "verdict",
    "gates that did not pass",
]


def _num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def search_of(run: dict[str, Any]) -> dict[str, Any] | None:
    """run.json's ``capacity_search`` when the run was a capacity search."""
    found = run.get("capacity_search")
    return found if isinstance(found, dict) else None


def search_text(search: dict[str, Any]) -> list[str]:
    """The verdict paragraph and how the levels were judged."""
    gates = ", ".join(f"`{g}`" for g in search.get("gates", [])) or "none"
    return [
        f"**{search.get('verdict', 'Capacity search: no verdict recorded.')}**",
        f"Capacity search (run.json capacity_search): levels of +{search.get('step_users')} "
        f"users held {_num(search.get('step_time_s'), 1)} s each, every level's window judged "
        f"by the gates {gates}; a level is generator-saturated when a health sample reached "
        f"{_num(search.get('cpu_threshold_pct'), 0)}% CPU or "
        f"{_num(search.get('lag_threshold_ms'), 0)} ms event-loop lag. Stopped by: "
        f"{search.get('stopped_by')}.",
    ]


def search_rows(search: dict[str, Any]) -> list[list[str]]:
    rows = []
    for level in search.get("levels", []):
        gen = level.get("generator", {})
        failed = [g["shown"] for g in level.get("gates", []) if g.get("verdict") != "pass"]
        rows.append(
            [
                str(level.get("level")),
                str(level.get("users")),
                _num(level.get("active_connections"), 1),
                _num(level.get("turns_per_s"), 3),
                _num(gen.get("max_cpu_pct"), 1),
                _num(gen.get("max_lag_ms"), 1),
                str(level.get("verdict")) + ("" if level.get("complete", True) else " (partial)"),
                "; ".join(failed) or "-",
            ]
        )
    return rows
