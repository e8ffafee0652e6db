"""Helpers for report tests: event frames built exactly the way the loader builds them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.record import schema as s
from harness.report.load import frame_from_table

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
SEC = 1_000_000_000


def ev(step: str, t_s: float = 0.0, **fields: Any) -> dict[str, Any]:
    """One raw event row; ``t_s`` seconds after T0; ``lat_ms`` sets latency_us."""
    row: dict[str, Any] = {s.STEP: step, s.TS_NS: T0 + round(t_s * SEC), s.OK: True}
    row[s.WORKER_ID] = fields.pop("worker", "w0")
    if "lat_ms" in fields:
        lat = fields.pop("lat_ms")
        row[s.LATENCY_US] = None if lat is None else lat * 1000.0
    row.update(fields)
    return row


def table_of(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    cols = {name: [r.get(name) for r in rows] for name in s.COLUMNS}
    return pa.table(cols, schema=s.EVENT_SCHEMA)


def frame(rows: Iterable[dict[str, Any]]) -> Any:
    return frame_from_table(table_of(rows))


def write_run(
    run_dir: Path, shards: list[list[dict[str, Any]]], info: dict[str, Any] | None = None
) -> Path:
    """A run directory with one Parquet shard per list of rows (+ run.json)."""
    events = run_dir / s.EVENTS_DIR
    events.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(shards):
        pq.write_table(table_of(rows), events / f"shard-{i}.parquet")
    if info is not None:
        import json

        (run_dir / s.RUN_JSON).write_text(json.dumps(info), encoding="utf-8")
    return run_dir


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    """A synthetic run of 20k events in 2 shards (harness.bench.synthetic)."""
    from harness.bench.synthetic import SyntheticSpec
    from harness.bench.synthetic import write_run as synth

    return synth(tmp_path / "run-small", SyntheticSpec(events=20_000, shards=2, duration_s=120))
