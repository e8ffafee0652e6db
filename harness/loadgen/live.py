"""Live statistics of the running test, exact, computed from every recorded event batch.

Fed with each batch as it is flushed (a local runner's own batches; on a master every
worker's batch as it arrives), so the numbers are merged across workers and equal what the
events on disk say: counts are counted and percentiles are type-7 quantiles of all raw
samples (numpy ``percentile(method="linear")``), never histogram buckets. Pure: numpy and
pyarrow only, no Locust, no I/O.

Definitions (the report's, harness/report/metrics):

- A *latency step* is a step of the schema's LATENCY_STEPS that has any row, or any other
  step (e.g. a scripted one) with a measured latency; close, generator, typing, error and
  integrity rows never are. Known steps come first in schema order, the others by name.
- ``count`` = successful samples with a latency; ``failures`` = rows with ``ok`` false that
  are not rate-limited; ``rate_limited`` = rows with ``error == "rate_limited"``.
- Connections: connect rows; rate-limited = not ok and rate-limited; failures by ``error``
  (``unknown`` when null); success rate = succeeded / (attempted - rate limited).
- Closes: close rows by code (no code = 1006) and initiator (no initiator = ``none``).

Memory: 8 bytes per successful latency sample (float64 ms, one array per step) plus one
counter per distinct (step, ok, error, close code, initiator) combination. An instance made
with ``windowed=True`` (the capacity search counts any time window exactly) also keeps
8 bytes per sample and 12 bytes per non-generator row (when it was observed, and its
combination): about 28 bytes per row, 280 MB for 10 million rows. Generator health samples
(one per worker per second) are always kept: 32 bytes each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from harness.protocol.codes import describe_close_code
from harness.record import schema as s

NOT_LATENCY_STEPS: Final = frozenset(
    {s.STEP_CLOSE, s.STEP_GENERATOR, s.STEP_TYPING, s.STEP_ERROR, s.STEP_INTEGRITY}
)
#: (label, q) of the percentiles computed for every step (the report's set).
QUANTILES: Final = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))
UNKNOWN_REASON: Final = "unknown"
_SEP: Final = "\x1f"
_NULL: Final = "\x00"


class _Growable:
    """An append-only numpy array; appends are amortised O(1) (capacity grows 1.5x)."""

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: Any) -> None:
        self._buf: npt.NDArray[Any] = np.empty(0, dtype)
        self._n = 0

    def extend(self, values: npt.NDArray[Any]) -> None:
        need = self._n + values.size
        if need > self._buf.size:
            grown = np.empty(max(need, self._buf.size * 3 // 2 + 1024), self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : need] = values
        self._n = need

    def view(self) -> npt.NDArray[Any]:
        return self._buf[: self._n]

    @property
    def nbytes(self) -> int:
        return int(self._buf.nbytes)


@dataclass(frozen=True, slots=True)
class Combo:
    """One distinct combination of the columns that counts are taken over."""

    step: str
    ok: bool
    error: str | None
    close_code: int | None
    initiator: str | None

    @property
    def rate_limited(self) -> bool:
        return self.error == s.ERR_RATE_LIMITED


@dataclass(frozen=True, slots=True)
class StepStats:
    step: str
    count: int
    failures: int
    rate_limited: int
    mean_ms: float
    quantiles_ms: dict[str, float]  # QUANTILES labels -> ms (NaN without samples)
    max_ms: float


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    attempted: int
    succeeded: int
    failed: int
    rate_limited: int
    success_rate: float  # NaN when nothing but rate-limited attempts
    failures_by_reason: dict[str, int]


@dataclass(frozen=True, slots=True)
class CloseStats:
    code: int
    name: str
    meaning: str
    count: int
    by_initiator: dict[str, int]


@dataclass(frozen=True, slots=True)
class GeneratorStats:
    samples: int
    max_cpu_pct: float
    max_lag_ms: float
    #: the sum over sources of each source's mean open connections (NaN without samples)
    active_connections: float


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    """The statistics of everything ingested, or of one time window of it."""

    steps: tuple[StepStats, ...]
    connections: ConnectionStats
    closes: tuple[CloseStats, ...]
    rate_limited: dict[str, int]  # step -> rows, every step with any
    integrity: dict[str, int]
    generator: GeneratorStats
    rows: int  # non-generator rows
    window_ns: tuple[int, int] | None = None
    steps_by_name: dict[str, StepStats] = field(default_factory=dict)

    def step(self, name: str) -> StepStats | None:
        return self.steps_by_name.get(name)


class LiveStats:
    """Accumulates event batches (the recorder's batch schema, any extra columns ignored)."""

    def __init__(self, *, windowed: bool = False) -> None:
        self.reset(windowed=windowed)

    def reset(self, *, windowed: bool = False) -> None:
        """Forget everything (a new test starts); ``windowed`` as in the constructor."""
        self.windowed = windowed
        self.version = 0
        self._combos: list[Combo] = []
        self._combo_ids: dict[str, int] = {}
        self._totals = np.zeros(0, np.int64)
        self._samples: dict[str, _Growable] = {}
        self._sample_obs: dict[str, _Growable] = {}
        self._latency_steps: set[str] = set()
        self._log_obs = _Growable(np.int64)
        self._log_id = _Growable(np.int32)
        self._gen = {k: _Growable(t) for k, t in _GEN_COLUMNS.items()}
        self._sources: dict[str, int] = {}
        self._flushed: dict[str, int] = {}
        self._cache: tuple[int, LiveSnapshot] | None = None

    # --- feeding ---------------------------------------------------------------------------
    def ingest(self, table: pa.Table, source: str = "local") -> None:
        """Add one flushed batch from ``source`` (a worker's node id, or ``local``)."""
        if table.num_rows == 0:
            return
        table = table.combine_chunks()
        steps = pc.fill_null(table.column(s.STEP), "").combine_chunks()
        is_gen = np.asarray(pc.equal(steps, s.STEP_GENERATOR).to_numpy(zero_copy_only=False))
        if is_gen.any():
            self._ingest_generator(table.filter(pa.array(is_gen)), source)
        if not is_gen.all():
            self._ingest_rows(table.filter(pa.array(~is_gen)))
        self.version += 1

    def mark_flushed(self, source: str, flushed_ns: int) -> None:
        """``source`` has handed over every row it recorded before ``flushed_ns``."""
        self._flushed[source] = max(flushed_ns, self._flushed.get(source, flushed_ns))

    def covered_ns(self, sources: Iterable[str]) -> int | None:
        """Wall-clock time up to which every one of ``sources`` has flushed (None: unknown)."""
        marks = [self._flushed.get(src) for src in sources]
        if not marks or any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None)

    def _ingest_rows(self, table: pa.Table) -> None:
        ok = np.asarray(pc.fill_null(table.column(s.OK), False).to_numpy(zero_copy_only=False))
        lat = _floats(table.column(s.LATENCY_US))
        ids = self._combo_column(table)
        self._totals = _add_counts(self._totals, ids, len(self._combos))
        obs = None
        if self.windowed:
            ts = _ints(table.column(s.TS_NS))
            obs = ts + np.where(np.isnan(lat), 0.0, np.rint(lat * 1000.0)).astype(np.int64)
            self._log_obs.extend(obs)
            self._log_id.extend(ids.astype(np.int32))
        encoded = pc.dictionary_encode(pc.fill_null(table.column(s.STEP), "").combine_chunks())
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
        has_lat = ~np.isnan(lat)
        for code, name in enumerate(encoded.dictionary.to_pylist()):
            if name in NOT_LATENCY_STEPS:
                continue
            rows = codes == code
            if name in s.LATENCY_STEPS or (rows & has_lat).any():
                self._latency_steps.add(name)
            take = rows & ok & has_lat
            if take.any():
                self._samples.setdefault(name, _Growable(np.float64)).extend(lat[take] / 1000.0)
                if obs is not None:
                    self._sample_obs.setdefault(name, _Growable(np.int64)).extend(obs[take])

    def _combo_column(self, table: pa.Table) -> npt.NDArray[np.int64]:
        """The global combination id of every row (one Python step per distinct combination)."""
        parts = [
            pc.fill_null(table.column(s.STEP), ""),
            pc.cast(pc.fill_null(table.column(s.OK), False), pa.string()),
            pc.fill_null(table.column(s.ERROR), _NULL),
            pc.fill_null(pc.cast(table.column(s.CLOSE_CODE), pa.string()), _NULL),
            pc.fill_null(table.column(s.CLOSE_INITIATOR), _NULL),
        ]
        keys = pc.binary_join_element_wise(*parts, _SEP).combine_chunks()
        encoded = pc.dictionary_encode(keys)
        lut = np.asarray([self._combo_id(k) for k in encoded.dictionary.to_pylist()], np.int64)
        ids: npt.NDArray[np.int64] = lut[np.asarray(encoded.indices.to_numpy(zero_copy_only=False))]
        return ids

    def _combo_id(self, key: str) -> int:
        found = self._combo_ids.get(key)
        if found is not None:
            return found
        step, ok, error, code, initiator = (None if p == _NULL else p for p in key.split(_SEP))
        self._combos.append(
            Combo(
                step or "",
                ok == "true",
                error,
                int(code) if code is not None else None,
                initiator,
            )
        )
        self._combo_ids[key] = len(self._combos) - 1
        return len(self._combos) - 1

    def _ingest_generator(self, table: pa.Table, source: str) -> None:
        src = self._sources.setdefault(source, len(self._sources))
        n = table.num_rows
        self._gen["ts"].extend(_ints(table.column(s.TS_NS)))
        self._gen["cpu"].extend(_floats(table.column(s.CPU_PCT)))
        self._gen["lag_ms"].extend(_floats(table.column(s.LATENCY_US)) / 1000.0)
        self._gen["active"].extend(_floats(table.column(s.ACTIVE_CONNECTIONS)))
        self._gen["source"].extend(np.full(n, src, np.int32))

    # --- reading ---------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        """Bytes held by the sample and log arrays (capacity, not only the used part)."""
        arrays = [*self._samples.values(), *self._sample_obs.values(), *self._gen.values()]
        return sum(a.nbytes for a in [*arrays, self._log_obs, self._log_id])

    def snapshot(self) -> LiveSnapshot:
        """Everything ingested since the last reset (cached until the next batch)."""
        if self._cache is not None and self._cache[0] == self.version:
            return self._cache[1]
        samples = {name: g.view() for name, g in self._samples.items()}
        gen = {k: g.view() for k, g in self._gen.items()}
        snap = self._summarise(self._totals, samples, gen, None)
        self._cache = (self.version, snap)
        return snap

    def window(self, start_ns: int, end_ns: int) -> LiveSnapshot:
        """The rows observed in [start_ns, end_ns): a latency sample when it completed
        (``ts_ns`` + latency), a row without latency at ``ts_ns``, a health sample at its
        time. Needs ``windowed=True``.

        Raises:
            ValueError: this instance keeps no per-row times.
        """
        if not self.windowed:
            raise ValueError("LiveStats(windowed=False) cannot count a time window")
        obs, ids = self._log_obs.view(), self._log_id.view()
        inside = (obs >= start_ns) & (obs < end_ns)
        counts = np.bincount(ids[inside], minlength=len(self._combos)).astype(np.int64)
        samples = {}
        for name, g in self._samples.items():
            at = self._sample_obs[name].view()
            samples[name] = g.view()[(at >= start_ns) & (at < end_ns)]
        ts = self._gen["ts"].view()
        in_gen = (ts >= start_ns) & (ts < end_ns)
        gen = {k: g.view()[in_gen] for k, g in self._gen.items()}
        return self._summarise(counts, samples, gen, (start_ns, end_ns))

    def generator_window(self, start_ns: int, end_ns: int) -> GeneratorStats:
        """Health samples taken in [start_ns, end_ns) (kept by every instance)."""
        ts = self._gen["ts"].view()
        inside = (ts >= start_ns) & (ts < end_ns)
        return _generator_stats({k: g.view()[inside] for k, g in self._gen.items()})

    def _summarise(
        self,
        counts: npt.NDArray[np.int64],
        samples: dict[str, npt.NDArray[np.float64]],
        gen: dict[str, npt.NDArray[Any]],
        window: tuple[int, int] | None,
    ) -> LiveSnapshot:
        per = [(c, int(n)) for c, n in zip(self._combos, counts, strict=False) if n]
        steps = tuple(
            _step_stats(name, per, samples.get(name, _EMPTY)) for name in self.latency_steps()
        )
        limited: dict[str, int] = {}
        for c, n in per:
            if c.rate_limited:
                limited[c.step] = limited.get(c.step, 0) + n
        return LiveSnapshot(
            steps=steps,
            connections=_connection_stats(per),
            closes=_close_stats(per),
            rate_limited=dict(sorted(limited.items())),
            integrity=_integrity(per),
            generator=_generator_stats(gen),
            rows=int(counts.sum()),
            window_ns=window,
            steps_by_name={st.step: st for st in steps},
        )

    def latency_steps(self) -> list[str]:
        """Known steps in schema order, then any other latency step by name."""
        known = [st for st in s.LATENCY_STEPS if st in self._latency_steps]
        return known + sorted(self._latency_steps - set(s.LATENCY_STEPS))


_GEN_COLUMNS: Final = {
    "ts": np.int64,
    "cpu": np.float64,
    "lag_ms": np.float64,
    "active": np.float64,
    "source": np.int32,
}
_EMPTY: Final = np.empty(0, np.float64)


def _floats(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.float64]:
    values = pc.fill_null(pc.cast(column, pa.float64()), math.nan)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _ints(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    return np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _add_counts(
    totals: npt.NDArray[np.int64], ids: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.int64]:
    grown = np.zeros(size, np.int64)
    grown[: totals.size] = totals
    return grown + np.bincount(ids, minlength=size).astype(np.int64)


def step_quantiles(values_ms: npt.NDArray[np.float64]) -> dict[str, float]:
    """Type-7 percentiles of raw samples (NaN for none): the definition of design.md."""
    if values_ms.size == 0:
        return {label: math.nan for label, _ in QUANTILES}
    qs = np.percentile(values_ms, [q * 100 for _, q in QUANTILES], method="linear")
    return {label: float(v) for (label, _), v in zip(QUANTILES, qs, strict=True)}


def _step_stats(
    name: str, per: list[tuple[Combo, int]], values: npt.NDArray[np.float64]
) -> StepStats:
    mine = [(c, n) for c, n in per if c.step == name]
    return StepStats(
        step=name,
        count=int(values.size),
        failures=sum(n for c, n in mine if not c.ok and not c.rate_limited),
        rate_limited=sum(n for c, n in mine if c.rate_limited),
        mean_ms=float(values.mean()) if values.size else math.nan,
        quantiles_ms=step_quantiles(values),
        max_ms=float(values.max()) if values.size else math.nan,
    )


def _connection_stats(per: list[tuple[Combo, int]]) -> ConnectionStats:
    conns = [(c, n) for c, n in per if c.step == s.STEP_CONNECT]
    attempted = sum(n for _, n in conns)
    succeeded = sum(n for c, n in conns if c.ok)
    limited = sum(n for c, n in conns if not c.ok and c.rate_limited)
    reasons: dict[str, int] = {}
    for c, n in conns:
        if not c.ok and not c.rate_limited:
            reason = c.error if c.error is not None else UNKNOWN_REASON
            reasons[reason] = reasons.get(reason, 0) + n
    denominator = attempted - limited
    return ConnectionStats(
        attempted=attempted,
        succeeded=succeeded,
        failed=attempted - succeeded - limited,
        rate_limited=limited,
        success_rate=succeeded / denominator if denominator else math.nan,
        failures_by_reason=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _close_stats(per: list[tuple[Combo, int]]) -> tuple[CloseStats, ...]:
    by_code: dict[int, dict[str, int]] = {}
    for c, n in per:
        if c.step != s.STEP_CLOSE:
            continue
        code = c.close_code if c.close_code is not None else 1006
        who = c.initiator if c.initiator is not None else s.INITIATOR_NONE
        row = by_code.setdefault(code, {})
        row[who] = row.get(who, 0) + n
    out = []
    for code, initiators in by_code.items():
        info = describe_close_code(code)
        out.append(CloseStats(code, info.name, info.meaning, sum(initiators.values()), initiators))
    return tuple(sorted(out, key=lambda c: (-c.count, c.code)))


def _integrity(per: list[tuple[Combo, int]]) -> dict[str, int]:
    """Integrity rows by category; ``lost`` falls back to onMessage timeouts (the report's
    rule, harness/report/metrics/integrity.py)."""
    found: dict[str, int] = {}
    for c, n in per:
        if c.step == s.STEP_INTEGRITY:
            key = c.error if c.error is not None else UNKNOWN_REASON
            found[key] = found.get(key, 0) + n
    if not found.get(s.INTEGRITY_LOST):
        found[s.INTEGRITY_LOST] = sum(
            n for c, n in per if c.step == s.STEP_ON_MESSAGE and c.error == s.ERR_TIMEOUT
        )
    return found


def _generator_stats(gen: dict[str, npt.NDArray[Any]]) -> GeneratorStats:
    n = int(gen["ts"].size)
    if n == 0:
        return GeneratorStats(0, math.nan, math.nan, math.nan)
    active, source = gen["active"], gen["source"]
    known = ~np.isnan(active)
    total = 0.0
    for src in np.unique(source[known]):
        total += float(active[known & (source == src)].mean())
    return GeneratorStats(
        samples=n,
        max_cpu_pct=float(np.nanmax(gen["cpu"])) if (~np.isnan(gen["cpu"])).any() else math.nan,
        max_lag_ms=float(np.nanmax(gen["lag_ms"]))
        if (~np.isnan(gen["lag_ms"])).any()
        else math.nan,
        active_connections=total if known.any() else math.nan,
    )
