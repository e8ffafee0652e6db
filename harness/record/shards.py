"""Parquet shards in ``<run-dir>/events/`` and the Arrow IPC bytes that carry them.

A shard is written to a temporary name in the same directory and renamed into place, so a
crash or a signal never leaves a half-written ``*.parquet`` for the reports to trip over.
Workers of a distributed run ship their batches to the master as Arrow IPC stream bytes
(plain ``bytes`` travel through Locust's msgpack messages unchanged).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from harness.errors import UsageError
from harness.record import schema as s
from harness.record.recorder import BATCH_SCHEMA

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def complete_table(batch: pa.Table, run_id: str, worker_id: str) -> pa.Table:
    """Add the per-shard constant columns and order the columns as the event schema."""
    if batch.schema != BATCH_SCHEMA:
        raise UsageError("event batch does not match the recorder's schema")
    n = batch.num_rows
    run = pa.repeat(pa.scalar(run_id, pa.string()), n)
    worker = pa.repeat(pa.scalar(worker_id, pa.string()), n)
    columns = [run, worker, *batch.columns]
    return pa.Table.from_arrays(columns, schema=s.EVENT_SCHEMA)


def shard_name(worker_id: str, seq: int) -> str:
    """``<worker>-<seq>.parquet`` with the worker name made filesystem-safe."""
    return f"{_SAFE_NAME.sub('_', worker_id)}-{seq:06d}.parquet"


def write_shard(table: pa.Table, events_dir: Path, name: str) -> Path:
    """Write ``table`` as ``events_dir/name`` atomically (temporary file + rename)."""
    events_dir.mkdir(parents=True, exist_ok=True)
    final = events_dir / name
    tmp = events_dir / f".{name}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final)
    return final


def to_ipc(batch: pa.Table) -> bytes:
    """Serialise a recorded batch as Arrow IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    """Read bytes made by :func:`to_ipc`.

    Raises:
        UsageError: the bytes are not an Arrow stream of the recorder's schema.
    """
    try:
        table = ipc.open_stream(pa.py_buffer(data)).read_all()
    except pa.ArrowInvalid as exc:
        raise UsageError(f"bad event batch from a worker: {exc}") from exc
    if table.schema != BATCH_SCHEMA:
        raise UsageError("event batch from a worker has another schema (version mismatch?)")
    return table


def read_events(run_dir: Path) -> pa.Table:
    """Read every shard of a run directory as one table (for tests and quick checks)."""
    files = sorted((run_dir / s.EVENTS_DIR).glob(s.SHARD_GLOB))
    if not files:
        return s.EVENT_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=s.EVENT_SCHEMA) for f in files])
