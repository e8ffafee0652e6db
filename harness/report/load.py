"""Read a run directory (design.md layout: ``<run>/events/*.parquet`` + ``<run>/run.json``).

Shards are read one by one, column-wise with pyarrow, so a corrupt or truncated shard is
named in a warning and skipped while the rest is used. String columns become pandas
categoricals (10 million rows of a handful of step names cost 10 MB, not 600 MB).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.errors import UsageError
from harness.record import schema as s
from harness.report.columns import SCHEDULE_LAG_US

log = logging.getLogger(__name__)

#: Every column the report uses; ``session_token``, ``detail`` and byte counts are not read.
REPORT_COLUMNS: tuple[str, ...] = (
    s.WORKER_ID,
    s.USER_ID,
    s.CONN_ID,
    s.STEP,
    s.TS_NS,
    s.LATENCY_US,
    s.INTENDED_NS,
    s.OK,
    s.ERROR,
    s.HTTP_STATUS,
    s.CLOSE_CODE,
    s.CLOSE_INITIATOR,
    s.CLOSE_REASON,
    s.CPU_PCT,
    s.RSS_BYTES,
    s.ACTIVE_CONNECTIONS,
)
#: Enough for latency comparisons (``harness compare``).
COMPARE_COLUMNS: tuple[str, ...] = (s.STEP, s.TS_NS, s.LATENCY_US, s.OK, s.ERROR, s.CLOSE_CODE)

_STRING_COLUMNS = frozenset(
    {s.RUN_ID, s.WORKER_ID, s.SESSION_TOKEN, s.STEP, s.ERROR, s.CLOSE_INITIATOR}
    | {s.CLOSE_REASON, s.DETAIL}
)


@dataclass(frozen=True)
class RunData:
    """The events of one run, its run.json and what went wrong while reading it."""

    run_dir: Path
    events: pd.DataFrame
    info: dict[str, Any]
    warnings: tuple[str, ...] = ()
    shards_read: int = 0
    shards_skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def shard_paths(run_dir: Path) -> list[Path]:
    """The run's shards, sorted; raises a clear error for a missing or empty run directory.

    Raises:
        UsageError: the directory or its shards are missing.
    """
    if not run_dir.is_dir():
        raise UsageError(f"run directory not found: {run_dir}")
    events_dir = run_dir / s.EVENTS_DIR
    paths = sorted(events_dir.glob(s.SHARD_GLOB)) if events_dir.is_dir() else []
    if not paths:
        raise UsageError(f"no event shards in {events_dir} (expected {s.SHARD_GLOB}); not a run?")
    return paths


def read_run_info(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Parse run.json; a missing or broken file is a warning, not an error."""
    path = run_dir / s.RUN_JSON
    if not path.is_file():
        return {}, [f"{s.RUN_JSON} missing in {run_dir}; run metadata unknown"]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {}, [f"{path.name} unreadable ({exc}); run metadata unknown"]
    if not isinstance(data, dict):
        return {}, [f"{path.name} is not a JSON object; run metadata unknown"]
    return data, []


def _read_shard(path: Path, columns: Sequence[str]) -> pa.Table:
    """Read the wanted columns of one shard, add missing ones as nulls, cast to the schema."""
    present = set(pq.read_schema(path).names)
    wanted = [c for c in columns if c in present]
    dict_cols = [c for c in wanted if c in _STRING_COLUMNS]
    table = pq.read_table(path, columns=wanted, read_dictionary=dict_cols)
    arrays = []
    for name in columns:
        target = s.EVENT_SCHEMA.field(name).type
        if name in _STRING_COLUMNS:
            target = pa.dictionary(pa.int32(), pa.string())
        if name in present:
            col = table.column(name)
            arrays.append(col if col.type == target else col.cast(target))
        else:
            arrays.append(pa.nulls(table.num_rows, target))
    return pa.Table.from_arrays(arrays, names=list(columns))


def _schedule_lag(table: pa.Table) -> pa.Table:
    """Replace ``intended_ns`` by ``schedule_lag_us`` (see columns.py for why)."""
    idx = table.schema.get_field_index(s.INTENDED_NS)
    if idx < 0:
        return table
    lag = pc.divide(
        pc.cast(pc.subtract(table.column(s.TS_NS), table.column(s.INTENDED_NS)), pa.float64()),
        1000.0,
    )
    return table.set_column(idx, SCHEDULE_LAG_US, lag)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Column by column, dropping each Arrow column once converted (bounded peak memory)."""
    out: dict[str, Any] = {}
    for name in list(table.column_names):
        col = table.column(name)
        table = table.drop_columns([name])
        if pa.types.is_dictionary(col.type):
            out[name] = col.to_pandas()
        elif pa.types.is_boolean(col.type):
            out[name] = col.fill_null(False).to_numpy()
        elif pa.types.is_integer(col.type) and name != s.TS_NS:
            # Integer columns with nulls become float64 (ids, codes, counts < 2**53: exact).
            out[name] = col.to_numpy().astype(np.float64, copy=False)
        else:
            out[name] = col.to_numpy()
        del col
    return pd.DataFrame(out, copy=False)


def load_run(
    run_dir: Path,
    columns: Sequence[str] = REPORT_COLUMNS,
    on_shard: Callable[[str], None] | None = None,
) -> RunData:
    """Read every readable shard of a run; corrupt shards become warnings.

    Raises:
        UsageError: no run directory, no shards, no readable shard, or no events at all.
    """
    paths = shard_paths(run_dir)
    info, warnings = read_run_info(run_dir)
    tables: list[pa.Table] = []
    for path in paths:
        try:
            tables.append(_read_shard(path, columns))
        except (pa.ArrowException, OSError, ValueError) as exc:
            msg = f"skipped corrupt shard {path.relative_to(run_dir)}: {exc}".splitlines()[0]
            log.warning(msg)
            warnings.append(msg)
        if on_shard is not None:
            on_shard(path.name)
    if not tables:
        raise UsageError(f"no readable event shard in {run_dir / s.EVENTS_DIR}")
    table = pa.concat_tables(tables)
    del tables
    if table.column(s.TS_NS).null_count:
        dropped = table.column(s.TS_NS).null_count
        table = table.filter(pc.is_valid(table.column(s.TS_NS)))
        warnings.append(f"dropped {dropped} events without {s.TS_NS}")
    if table.num_rows == 0:
        raise UsageError(f"run {run_dir} has no events")
    events = _to_pandas(_schedule_lag(table))
    return RunData(
        run_dir=run_dir,
        events=events,
        info=info,
        warnings=tuple(warnings),
        shards_read=len(paths) - sum(w.startswith("skipped corrupt") for w in warnings),
        shards_skipped=sum(w.startswith("skipped corrupt") for w in warnings),
    )
