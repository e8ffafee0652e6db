"""Buffer raw event rows in memory and hand them out as Arrow tables.

The hot path is one tuple append per row: a flush transposes the buffered rows into columns
(``zip(*rows)``) and converts each column once, which costs far less than appending to twenty
lists per row. The recorder knows nothing about Locust, files or sockets; the load side decides
when to flush and where the batch goes (a Parquet shard, or a message to the master).

Batches carry every column of :data:`harness.record.schema.EVENT_SCHEMA` except ``run_id`` and
``worker_id``: those are constant per shard and are added by whoever writes the shard, because a
distributed worker does not know the master's run directory when it records.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final

import pyarrow as pa

from harness.record import schema as s

#: The columns a recorded batch carries, in order (the schema minus the per-shard constants).
BATCH_SCHEMA: Final = pa.schema(
    [f for f in s.EVENT_SCHEMA if f.name not in (s.RUN_ID, s.WORKER_ID)]
)

# Step rows: every column but the generator's; generator rows: their own short tuple.
_GENERATOR_ONLY: Final = (s.CPU_PCT, s.RSS_BYTES, s.ACTIVE_CONNECTIONS)
_STEP_COLUMNS: Final = tuple(n for n in BATCH_SCHEMA.names if n not in _GENERATOR_ONLY)

StepRow = tuple[
    int | None,  # user_id
    str | None,  # session_token
    int | None,  # conn_id
    str,  # step
    int,  # ts_ns
    float | None,  # latency_us
    int | None,  # intended_ns
    bool,  # ok
    str | None,  # error
    int | None,  # http_status
    int | None,  # close_code
    str | None,  # close_initiator
    str | None,  # close_reason
    str | None,  # detail
    int | None,  # bytes_out
    int | None,  # bytes_in
    int | None,  # answer_messages
    str | None,  # scenario
    int | None,  # script_step
]


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= s.MAX_TEXT_CHARS:
        return text
    return text[: s.MAX_TEXT_CHARS]


class Recorder:
    """Collects rows; :meth:`take_batch` swaps the buffer out and converts it to Arrow.

    Meant for the greenlets of one thread (a Locust process): the swap cannot interleave with
    an append there, so no row is lost or written twice. It is not a cross-thread queue.
    """

    def __init__(self) -> None:
        self._rows: list[StepRow] = []
        self._health: list[tuple[int, float, float, int, int]] = []
        self.rows_recorded = 0

    def __len__(self) -> int:
        return len(self._rows) + len(self._health)

    def add(self, row: StepRow) -> None:
        """Record one step row (design.md "Raw event schema"), columns in :data:`StepRow` order.

        Free text (``close_reason``, ``detail``) is cut to ``MAX_TEXT_CHARS``.
        """
        if row[12] is not None or row[13] is not None:
            row = (*row[:12], _clip(row[12]), _clip(row[13]), *row[14:])
        self._rows.append(row)

    def add_generator(
        self, ts_ns: int, loop_lag_us: float, cpu_pct: float, rss_bytes: int, active: int
    ) -> None:
        """Record one generator health sample (step ``generator``)."""
        self._health.append((ts_ns, loop_lag_us, cpu_pct, rss_bytes, active))

    def take_batch(self) -> pa.Table | None:
        """Return everything buffered so far as one table (None when empty) and clear."""
        rows, self._rows = self._rows, []
        health, self._health = self._health, []
        if not rows and not health:
            return None
        self.rows_recorded += len(rows) + len(health)
        parts = []
        if rows:
            parts.append(_step_batch(rows))
        if health:
            parts.append(_health_batch(health))
        return pa.Table.from_batches(parts, schema=BATCH_SCHEMA)


def warm_up() -> None:
    """Pay pyarrow's one-off set-up now (its first Python-to-Arrow conversion imports pandas
    and takes most of a second), so the first flush during a run does not stall the event
    loop. Call it before the load starts."""
    rec = Recorder()
    rec.add(
        (
            0,
            "",
            0,
            "warm-up",
            0,
            0.0,
            None,
            True,
            None,
            None,
            None,
            None,
            None,
            None,
            0,
            0,
            1,
            "",
            1,
        )
    )
    rec.add_generator(0, 0.0, 0.0, 0, 0)
    rec.take_batch()


def _step_batch(rows: list[StepRow]) -> pa.RecordBatch:
    n = len(rows)
    # map(itemgetter) per column transposes about twice as fast as zip(*rows) here
    arrays: list[pa.Array] = [
        pa.array(list(map(itemgetter(i), rows)), type=BATCH_SCHEMA.field(name).type)
        for i, name in enumerate(_STEP_COLUMNS)
    ]
    arrays += [pa.nulls(n, BATCH_SCHEMA.field(name).type) for name in _GENERATOR_ONLY]
    return pa.RecordBatch.from_arrays(arrays, schema=BATCH_SCHEMA)  # generator columns last


def _health_batch(rows: list[tuple[int, float, float, int, int]]) -> pa.RecordBatch:
    n = len(rows)
    ts, lag, cpu, rss, active = zip(*rows, strict=True)
    given = {
        s.STEP: pa.array([s.STEP_GENERATOR] * n, pa.string()),
        s.TS_NS: pa.array(ts, pa.int64()),
        s.LATENCY_US: pa.array(lag, pa.float64()),
        s.OK: pa.array([True] * n, pa.bool_()),
        s.CPU_PCT: pa.array(cpu, pa.float64()),
        s.RSS_BYTES: pa.array(rss, pa.int64()),
        s.ACTIVE_CONNECTIONS: pa.array(active, pa.int64()),
    }
    arrays = [given.get(f.name, pa.nulls(n, f.type)) for f in BATCH_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=BATCH_SCHEMA)
