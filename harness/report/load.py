"""Read a run directory (design.md layout: ``<run>/events/*.parquet`` + ``<run>/run.json``).

Shards are read one by one, column-wise with pyarrow, so a corrupt or truncated shard is
named in a warning and skipped while the rest is used. String columns become pandas
categoricals (10 million rows of a handful of step names cost 10 MB, not 600 MB).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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

#: Every column the report uses; byte counts are not read. ``detail`` (free text, null on
#: most rows) names e.g. the cause of a refused upgrade.
REPORT_COLUMNS: tuple[str, ...] = (
    s.WORKER_ID,
    s.USER_ID,
    s.SESSION_TOKEN,
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
    s.DETAIL,
    s.CPU_PCT,
    s.RSS_BYTES,
    s.ACTIVE_CONNECTIONS,
    s.ANSWER_MESSAGES,
    s.SCENARIO,
    s.SCRIPT_STEP,
)
#: Enough for latency comparisons (``harness compare``), per scenario step too.
COMPARE_COLUMNS: tuple[str, ...] = (
    s.STEP,
    s.TS_NS,
    s.LATENCY_US,
    s.OK,
    s.ERROR,
    s.CLOSE_CODE,
    s.SCENARIO,
    s.SCRIPT_STEP,
)

_STRING_COLUMNS = frozenset(
    {s.RUN_ID, s.WORKER_ID, s.SESSION_TOKEN, s.STEP, s.ERROR, s.CLOSE_INITIATOR}
    | {s.CLOSE_REASON, s.DETAIL, s.SCENARIO}
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
    return _conform(pq.read_table(path, columns=wanted, read_dictionary=dict_cols), columns)


def _conform(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """Exactly ``columns``: missing ones as nulls, strings dictionary-encoded, schema types."""
    present = set(table.column_names)
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


def _schedule_lag_us(table: pa.Table) -> np.ndarray:
    """``(ts_ns - intended_ns) / 1000`` as float64, NaN where not scheduled (columns.py)."""
    if table.column(s.INTENDED_NS).null_count == table.num_rows:
        return np.full(table.num_rows, np.nan)
    diff = pc.subtract(table.column(s.TS_NS), table.column(s.INTENDED_NS))
    return np.asarray(pc.divide(pc.cast(diff, pa.float64()), 1000.0).to_numpy(), dtype=np.float64)


#: Nullable integer columns small enough for float32 (exact below 2**24).
_FLOAT32_COLUMNS = frozenset({s.HTTP_STATUS, s.CLOSE_CODE, s.ACTIVE_CONNECTIONS, s.CPU_PCT})


class _Columns:
    """Preallocated output arrays filled shard by shard: the peak memory is the final frame
    plus one shard, never two copies of the whole run."""

    def __init__(self, names: Sequence[str], rows: int) -> None:
        self.names = [SCHEDULE_LAG_US if n == s.INTENDED_NS else n for n in names]
        self.arrays: dict[str, np.ndarray] = {}
        self.categories: dict[str, dict[str, int]] = {}
        for name in self.names:
            self.arrays[name] = np.empty(rows, dtype=self._dtype(name))
            if name in _STRING_COLUMNS:
                self.categories[name] = {}
        self.filled = 0

    @staticmethod
    def _dtype(name: str) -> type[np.generic]:
        if name in _STRING_COLUMNS:
            return np.int32
        if name == s.TS_NS:
            return np.int64
        if name == s.OK:
            return np.bool_
        return np.float32 if name in _FLOAT32_COLUMNS else np.float64

    def _fill_codes(self, name: str, col: pa.ChunkedArray, out: np.ndarray) -> None:
        """Dictionary indices remapped onto the run-wide category list (-1 = null)."""
        lookup = self.categories[name]  # value -> run-wide code, in first-seen order
        col = col.unify_dictionaries()  # every chunk now shares one dictionary: map it once
        if col.num_chunks == 0 or col.null_count == len(col):
            out[:] = -1
            return
        values = col.chunk(0).dictionary.to_pylist()
        codes = [-1 if v is None else lookup.setdefault(v, len(lookup)) for v in values]
        mapping = np.array([*codes, -1], dtype=np.int32)
        pos = 0
        for chunk in col.chunks:
            n = len(chunk)
            idx = chunk.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
            np.take(mapping, idx, out=out[pos : pos + n])
            pos += n

    @staticmethod
    def _fill_values(col: pa.ChunkedArray, out: np.ndarray) -> None:
        """Chunk by chunk into ``out`` (no concatenated temporary); nulls become NaN."""
        pos = 0
        for chunk in col.chunks:
            n = len(chunk)
            if chunk.null_count == n:
                out[pos : pos + n] = np.nan
            elif pa.types.is_floating(chunk.type):
                out[pos : pos + n] = chunk.to_numpy(zero_copy_only=False)
            else:
                out[pos : pos + n] = pc.cast(chunk, pa.float64()).to_numpy(zero_copy_only=False)
            pos += n

    def fill(self, table: pa.Table) -> None:
        lo, hi = self.filled, self.filled + table.num_rows
        for name in self.names:
            target = self.arrays[name]
            if name == SCHEDULE_LAG_US:
                target[lo:hi] = _schedule_lag_us(table)
            elif name in _STRING_COLUMNS:
                self._fill_codes(name, table.column(name), target[lo:hi])
            elif name == s.OK:
                target[lo:hi] = table.column(name).fill_null(False).to_numpy()
            elif name == s.TS_NS:
                target[lo:hi] = table.column(name).fill_null(np.iinfo(np.int64).min).to_numpy()
            else:
                self._fill_values(table.column(name), target[lo:hi])
        self.filled = hi

    def frame(self) -> pd.DataFrame:
        out: dict[str, Any] = {}
        for name in self.names:
            arr = self.arrays[name][: self.filled]
            if name in _STRING_COLUMNS:
                cats = pd.Index(list(self.categories[name]), dtype=object)
                out[name] = pd.Categorical.from_codes(arr, categories=cats, validate=False)
            else:
                out[name] = arr
        return pd.DataFrame(out, copy=False)


def frame_from_table(table: pa.Table, columns: Sequence[str] = REPORT_COLUMNS) -> pd.DataFrame:
    """The loader's conversion of one Arrow table (EVENT_SCHEMA) into the report frame;
    pure, so tests build frames exactly as the loader does."""
    cols = _Columns(columns, table.num_rows)
    cols.fill(_conform(table, columns))
    return cols.frame()


def _shard_rows(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_rows)


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
    readable: list[tuple[Path, int]] = []
    skipped = 0
    for path in paths:
        try:
            readable.append((path, _shard_rows(path)))
        except (pa.ArrowException, OSError, ValueError) as exc:
            skipped += 1
            warnings.append(_corrupt(run_dir, path, exc))
    cols = _Columns(columns, sum(n for _, n in readable))
    # The next shard is read (decompressed, in pyarrow threads) while this one is converted.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: dict[int, Future[pa.Table]] = {}
        for i, (path, _rows) in enumerate(readable):
            for j in (i, i + 1):
                if j < len(readable) and j not in pending:
                    pending[j] = pool.submit(_read_shard, readable[j][0], columns)
            try:
                cols.fill(pending.pop(i).result())  # popped: the table is freed once converted
            except (pa.ArrowException, OSError, ValueError) as exc:
                skipped += 1
                warnings.append(_corrupt(run_dir, path, exc))
            if on_shard is not None:
                on_shard(path.name)
    if skipped == len(paths):
        raise UsageError(f"no readable event shard in {run_dir / s.EVENTS_DIR}")
    events = cols.frame()
    del cols
    missing_ts = events[s.TS_NS].to_numpy() == np.iinfo(np.int64).min
    if missing_ts.any():
        warnings.append(f"dropped {int(missing_ts.sum())} events without {s.TS_NS}")
        events = events.loc[~missing_ts].reset_index(drop=True)
    if events.empty:
        raise UsageError(f"run {run_dir} has no events")
    return RunData(run_dir, events, info, tuple(warnings), len(paths) - skipped, skipped)


def _corrupt(run_dir: Path, path: Path, exc: Exception) -> str:
    msg = f"skipped corrupt shard {path.relative_to(run_dir)}: {exc}".splitlines()[0]
    log.debug(msg)  # the caller shows RunData.warnings once
    return msg
