"""Synthetic raw events (harness.record.schema) written with numpy + pyarrow only.

Used by ``harness bench report`` and by tests that need a realistic run directory. Each
connection has a connect, a configureSession, turns of typing/onMessage/botReply, heartbeats
and a close; each worker also records ``generator`` rows every second. Everything is drawn
from a seeded numpy Generator, with no per-row Python loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import __version__
from harness.record import schema as s

# Body steps of a connection and their weights.
_BODY_STEPS = (s.STEP_CONFIGURE, s.STEP_TYPING, s.STEP_ON_MESSAGE, s.STEP_BOT_REPLY, s.STEP_ECHO)
_BODY_WEIGHTS = np.array([0.08, 0.22, 0.3, 0.3, 0.1])
# Median latency (µs) per body step, lognormal sigma 0.6.
_MEDIAN_US = {
    s.STEP_CONFIGURE: 15_000.0,
    s.STEP_ON_MESSAGE: 8_000.0,
    s.STEP_BOT_REPLY: 90_000.0,
    s.STEP_ECHO: 5_000.0,
}


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    events: int = 10_000_000
    shards: int = 10
    duration_s: float = 3600.0
    seed: int = 1
    start_ns: int = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    events_per_connection: int = 40
    fail_share: float = 0.01


def _strings(values: list[str], idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(values)).cast(
        pa.string()
    )


def _latency(rng: np.random.Generator, steps: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    medians = np.array([_MEDIAN_US.get(n, np.nan) for n in names])[steps]
    return np.asarray(medians * rng.lognormal(0.0, 0.6, steps.size), dtype=np.float64)


def shard_table(spec: SyntheticSpec, worker: int, rows: int) -> pa.Table:
    """One worker's events: connections plus one generator row per second."""
    rng = np.random.default_rng([spec.seed, worker])
    n_gen = int(spec.duration_s)
    n_conn = max(1, (rows - n_gen) // spec.events_per_connection)
    body = rows - n_gen - 2 * n_conn
    dur_ns = int(spec.duration_s * 1e9)
    age = np.minimum(rng.lognormal(np.log(600), 0.8, n_conn), spec.duration_s * 0.9) * 1e9
    start = rng.integers(0, dur_ns - age.astype(np.int64), n_conn)
    conn_of_body = rng.integers(0, n_conn, body)
    # body events end well before their close (a close is the last thing on a connection)
    offs = (rng.random(body) * np.maximum(age[conn_of_body] - 5e9, 0.0)).astype(np.int64)
    names = (s.STEP_CONNECT, s.STEP_CLOSE, *_BODY_STEPS, s.STEP_GENERATOR)
    step = np.concatenate(
        [
            np.zeros(n_conn, np.int8),
            np.ones(n_conn, np.int8),
            rng.choice(5, body, p=_BODY_WEIGHTS).astype(np.int8) + 2,
            np.full(n_gen, 7, np.int8),
        ]
    )
    conn = np.concatenate([np.arange(n_conn), np.arange(n_conn), conn_of_body, np.full(n_gen, -1)])
    ts = (
        np.concatenate(
            [
                start,
                start + age.astype(np.int64),
                start[conn_of_body] + offs,
                np.arange(n_gen, dtype=np.int64) * 1_000_000_000,
            ]
        )
        + spec.start_ns
    )
    lat = _latency(rng, step, names)
    lat[step == 0] = 2_000.0 * rng.lognormal(0.0, 0.4, n_conn)
    lat[step == 7] = rng.exponential(2_000.0, n_gen)
    ok = rng.random(rows) >= spec.fail_share
    ok[(step == 1) | (step == 7)] = True
    error = np.where(ok, 0, np.where(step == 0, 2, 1)).astype(np.int32)  # 0 none, timeout, http_503
    error[(step == 4) & ~ok & (rng.random(rows) < 0.3)] = 3  # rate limited messages
    lat[~ok | np.isin(step, [1, 3])] = np.nan
    code = np.where(
        step == 1, rng.choice([1000, 1001, 1006, 1011], rows, p=[0.9, 0.05, 0.04, 0.01]), -1
    )
    arrays = {"step": step, "conn": conn, "ts": ts, "lat": lat, "ok": ok, "error": error}
    table = _table(worker, names, arrays | {"code": code}, rng)
    # A failed connect never had a connection, hence no close row (design.md).
    keep = np.ones(rows, dtype=bool)
    keep[n_conn : 2 * n_conn] = ok[:n_conn]
    return table.filter(pa.array(keep))


def _table(
    worker: int, names: tuple[str, ...], a: dict[str, np.ndarray], rng: np.random.Generator
) -> pa.Table:
    step, conn, ts, lat, ok, error, code = (
        a[k] for k in ("step", "conn", "ts", "lat", "ok", "error", "code")
    )
    rows = step.size
    is_gen, is_close = step == 7, step == 1
    cols = {
        s.RUN_ID: _strings(["bench"], np.zeros(rows, np.int32)),
        s.WORKER_ID: _strings([f"w{worker}"], np.zeros(rows, np.int32)),
        s.USER_ID: pa.array(np.where(conn >= 0, conn // 4, 0), mask=conn < 0),
        # one guest token per connection (UUID-sized strings), none on generator rows
        s.SESSION_TOKEN: pa.DictionaryArray.from_arrays(
            pa.array(np.maximum(conn, 0).astype(np.int32), mask=conn < 0),
            pa.array([f"{worker:08x}-0000-4000-8000-{c:012x}" for c in range(int(conn.max()) + 1)]),
        ).cast(pa.string()),
        s.CONN_ID: pa.array(conn, mask=conn < 0),
        s.STEP: pa.DictionaryArray.from_arrays(
            pa.array(step.astype(np.int32)), pa.array(names)
        ).cast(pa.string()),
        s.TS_NS: pa.array(ts),
        s.LATENCY_US: pa.array(lat, mask=np.isnan(lat)),
        s.INTENDED_NS: pa.nulls(rows, pa.int64()),
        s.OK: pa.array(ok),
        s.ERROR: pa.DictionaryArray.from_arrays(
            pa.array(error, mask=error == 0),
            pa.array(["", "timeout", "http_503", s.ERR_RATE_LIMITED]),
        ).cast(pa.string()),
        s.HTTP_STATUS: pa.array(np.full(rows, 503), mask=error != 2),
        s.CLOSE_CODE: pa.array(code, mask=code < 0),
        s.CLOSE_INITIATOR: pa.DictionaryArray.from_arrays(
            pa.array(
                np.where(code == 1000, 0, np.where(code == 1006, 2, 1)).astype(np.int32),
                mask=~is_close,
            ),
            pa.array(["client", "server", "none"]),
        ).cast(pa.string()),
        s.CLOSE_REASON: pa.nulls(rows, pa.string()),
        s.DETAIL: pa.nulls(rows, pa.string()),
        s.BYTES_OUT: pa.nulls(rows, pa.int64()),
        s.BYTES_IN: pa.nulls(rows, pa.int64()),
        s.ANSWER_MESSAGES: pa.nulls(rows, pa.int64()),
        s.SCENARIO: pa.nulls(rows, pa.string()),
        s.SCRIPT_STEP: pa.nulls(rows, pa.int64()),
        s.CPU_PCT: pa.array(np.where(is_gen, rng.uniform(20, 60, rows), np.nan), mask=~is_gen),
        s.RSS_BYTES: pa.array(np.full(rows, 200 * 2**20), mask=~is_gen),
        s.ACTIVE_CONNECTIONS: pa.array(np.full(rows, 100), mask=~is_gen),
    }
    return pa.table(cols).cast(s.EVENT_SCHEMA)


def write_run(run_dir: Path, spec: SyntheticSpec) -> Path:
    """Write ``spec.shards`` shards and a run.json; returns the run directory."""
    events_dir = run_dir / s.EVENTS_DIR
    events_dir.mkdir(parents=True, exist_ok=True)
    per = spec.events // spec.shards
    for worker in range(spec.shards):
        rows = per + (spec.events - per * spec.shards if worker == spec.shards - 1 else 0)
        pq.write_table(shard_table(spec, worker, rows), events_dir / f"w{worker}-0.parquet")
    started = np.datetime64(spec.start_ns, "ns")
    ended = started + np.timedelta64(int(spec.duration_s * 1e9), "ns")
    info = {
        "run_id": run_dir.name,
        "started": f"{np.datetime_as_string(started, unit='s')}Z",
        "ended": f"{np.datetime_as_string(ended, unit='s')}Z",
        "host": "synthetic",
        "users": spec.shards * 100,
        "shape": "synthetic",
        "harness_version": __version__,
        "args": {"events": spec.events, "shards": spec.shards, "seed": spec.seed},
    }
    (run_dir / s.RUN_JSON).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return run_dir
