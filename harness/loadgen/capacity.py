"""Capacity search (``--shape capacity``): step concurrency up until a gate breaks or the
generator saturates, then stop and say where and why.

Level k holds ``min(peak, k x --step-users)`` users (peak = ``--peak-users`` or ``-u``) for
``--step-time``. Its window is [level start, level start + step time): every row observed in
it (a latency sample when it completed, see harness.loadgen.live) counts. Once every source
(this process, or every running worker) has flushed past the window's end, the window is
complete and the level is judged (the level's users keep running meanwhile, at most
``wait`` more seconds; a window judged without every flush is marked incomplete):

- every ``--slo`` / ``--slo-file`` gate (the report's grammar, harness.gates) is evaluated
  on the window's statistics; a gate with fewer samples than its minimum is inconclusive;
- the generator is *saturated* when any health sample in the window reached
  ``--cpu-threshold`` (90 %) or ``--lag-threshold`` (50 ms): its latencies include the load
  side's own queueing. Samples of the level's first SPAWN_SETTLE_S are not judged: a level
  change itself stalls each distributed worker for tens of ms (Locust 2.47's worker rebuilds
  its argument parser once per option on every spawn message), which is not saturation;
  they are reported apart (``generator_during_spawn``), and the report's own health windows
  still flag them.

Then: saturated → stop, the generator (not the server) limited the search; a failed gate →
stop, the server broke; the last level → stop, no limit below the peak; otherwise the next
level. Inconclusive levels continue but never count as meeting every gate. The outcome
(every level, the highest that met every gate, the first that did not and why, what
stopped it) goes to run.json ``capacity_search`` and from there into the report.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.errors import UsageError
from harness.gates import (
    GENERATOR_CPU_PCT_MAX,
    GENERATOR_LAG_MS_MAX,
    Gate,
    GateResult,
    evaluate,
    load_slo_file,
    parse_gate,
)
from harness.loadgen.config import ShapeConfig
from harness.loadgen.live import LiveSnapshot, LiveStats, StepStats
from harness.protocol.units import parse_duration
from harness.record import schema as s

Tick = tuple[int, float] | None
#: Spawn rate of a level change (per second, all workers), as the step shape's.
LEVEL_RATE_PER_S: Final = 100.0
#: Health samples this soon after a level starts are not judged (module docstring).
SPAWN_SETTLE_S: Final = 1.5
#: Gates about the whole run, not one level (the report evaluates them).
RUN_ONLY_METRICS: Final = frozenset({"capacity.max_sustainable_concurrency"})
STOP_GATE: Final = "gate"
STOP_GENERATOR: Final = "generator"
STOP_PEAK: Final = "peak"
STOP_INTERRUPTED: Final = "interrupted"


def add_arguments(parser: Any) -> None:
    """The capacity search's own arguments on Locust's parser (shown in the web UI)."""
    add = parser.add_argument
    # default None, not []: the web UI would parse a typed gate as a list of ints (Locust 2.47
    # takes an empty list for a list of ints); None makes it keep the text
    add("--slo", action="append", default=None, metavar="GATE",
        help="capacity shape: a gate every level must meet, e.g. 'botReply.p95 < 800ms' "
        "(repeatable; harness report grammar)")  # fmt: skip
    add("--slo-file", default="", help="capacity shape: TOML file with gates")
    add("--cpu-threshold", type=float, default=GENERATOR_CPU_PCT_MAX,
        help="capacity shape: generator cpu_pct that counts as saturated (default 90)")  # fmt: skip
    add("--lag-threshold", default=f"{GENERATOR_LAG_MS_MAX:g}ms",
        help="capacity shape: event-loop lag that counts as saturated (default 50ms)")  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchConfig:
    gates: tuple[Gate, ...] = ()
    cpu_pct_max: float = GENERATOR_CPU_PCT_MAX
    lag_ms_max: float = GENERATOR_LAG_MS_MAX

    @property
    def level_gates(self) -> tuple[Gate, ...]:
        return tuple(g for g in self.gates if g.metric not in RUN_ONLY_METRICS)


def search_config(o: Mapping[str, Any]) -> SearchConfig:
    """Gates and saturation thresholds from parsed options (web UI strings too).

    Raises:
        UsageError: a bad gate, gate file or threshold (one line).
    """
    raw = o.get("slo") or []
    texts = [raw] if isinstance(raw, str) else list(raw)
    gates = [parse_gate(str(t)) for t in texts if str(t).strip()]
    slo_file = str(o.get("slo_file") or "").strip()
    if slo_file:
        gates += load_slo_file(Path(slo_file))
    try:
        cpu = float(o.get("cpu_threshold", GENERATOR_CPU_PCT_MAX))
    except (TypeError, ValueError):
        raise UsageError(f"--cpu-threshold must be a number: {o.get('cpu_threshold')!r}") from None
    lag_text = str(o.get("lag_threshold") or f"{GENERATOR_LAG_MS_MAX:g}ms")
    try:
        lag_ms = parse_duration(lag_text) * 1000.0
    except UsageError as exc:
        raise UsageError(f"--lag-threshold: {exc}") from None
    return SearchConfig(tuple(gates), cpu, lag_ms)


# --- one gate's value in a live window (harness/report/observe.py's rules) -------------------
def _step_value(st: StepStats | None, stat: str) -> tuple[float, int]:
    count = st.count if st else 0
    failures = st.failures if st else 0
    if stat in ("count", "failures", "rate_limited"):
        value = {"count": count, "failures": failures}.get(stat, st.rate_limited if st else 0)
        return float(value), count + failures
    if stat == "failure_rate":
        n = count + failures
        return (failures / n if n else math.nan), n
    if st is None:
        return math.nan, 0
    if stat == "mean":
        return st.mean_ms, count
    if stat == "max":
        return st.max_ms, count
    label = "p999" if stat in ("p999", "p99.9") else stat
    return st.quantiles_ms.get(label, math.nan), count


def observe(snap: LiveSnapshot, metric: str, config: SearchConfig) -> tuple[float, int]:
    """(observed value in the metric's unit, samples behind it) for one gate metric: the
    report's lookup (harness/report/observe.py) on a live window. ``generator.*`` count
    health samples, not the report's 5-s windows; ``generator.saturated_windows`` is 1 when
    the window was saturated, else 0."""
    head, _, rest = metric.partition(".")
    steps = {st.lower(): st for st in s.LATENCY_STEPS}
    conns = snap.connections
    if head.lower() in steps:
        return _step_value(snap.step(steps[head.lower()]), rest)
    if head == "connections":
        if rest.startswith("failures."):
            return float(conns.failures_by_reason.get(rest[9:], 0)), conns.attempted
        if rest == "success_rate":
            return conns.success_rate, conns.attempted - conns.rate_limited
        return float(getattr(conns, rest)), conns.attempted
    if head == "close_codes":
        code, _, tail = rest.partition(".")
        total = sum(c.count for c in snap.closes)
        n = sum(c.count for c in snap.closes if c.code == int(code))
        if tail == "share":
            return (n / total if total else math.nan), total
        return float(n), max(conns.succeeded, total)
    if head == "errors":
        known = [snap.step(st) for st in s.LATENCY_STEPS]
        fails = sum(st.failures for st in known if st)
        n = fails + sum(st.count for st in known if st)
        return ((fails / n if n else math.nan) if rest == "rate" else float(fails)), n
    if head == "integrity":
        on_msg = snap.step(s.STEP_ON_MESSAGE)
        n = (on_msg.count + on_msg.failures) if on_msg else 0
        return float(snap.integrity.get(rest, 0)), n
    gen = snap.generator
    value = {
        "saturated_windows": float(_saturated(gen.max_cpu_pct, gen.max_lag_ms, config)),
        "max_cpu_pct": gen.max_cpu_pct,
        "max_lag_ms": gen.max_lag_ms,
    }[rest]
    return value, gen.samples


def _saturated(cpu: float, lag_ms: float, config: SearchConfig) -> bool:
    """NaN (no health sample) never counts as saturated."""
    return cpu >= config.cpu_pct_max or lag_ms >= config.lag_ms_max


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _shown(r: GateResult) -> str:
    """A gate result as a reader wants it: ``botReply.p95 < 800ms: observed 912.4 ms``."""
    v, kind = r.observed, r.gate.kind
    if math.isnan(v):
        text = "no value"
    elif kind == "latency":
        text = f"{v:.3f} ms"
    elif kind == "rate":
        text = f"{v * 100:.3f}%"
    else:
        text = f"{v:g}"
    return f"{r.gate.text}: observed {text} ({r.samples} samples, {r.verdict})"


# --- the search ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Level:
    index: int  # 1-based
    users: int
    start_ns: int


def level_users(shape: ShapeConfig) -> list[int]:
    """Users of each level: step, 2 x step, ... up to the peak (the last one may be smaller)."""
    peak = shape.peak_users or shape.users
    step = max(1, shape.step_users)
    levels = list(range(step, peak + 1, step))
    if not levels or levels[-1] != peak:
        levels.append(peak)
    return [u for u in levels if u > 0]


class CapacitySearch:
    """Drives the levels from the shape's ticks and judges each on the live statistics."""

    def __init__(
        self,
        shape: ShapeConfig,
        config: SearchConfig,
        stats: LiveStats,
        *,
        sources: Callable[[], list[str]],
        clock_ns: Callable[[], int] = time.time_ns,
        wait_s: float = 10.0,
        on_done: Callable[[dict[str, Any]], None] = lambda _summary: None,
    ) -> None:
        if shape.step_s <= 0:
            raise UsageError("--shape capacity needs --step-time > 0")
        self.shape, self.config, self.stats = shape, config, stats
        self.users = level_users(shape)
        self._sources, self._clock, self._on_done = sources, clock_ns, on_done
        self._step_ns = round(shape.step_s * 1e9)
        self._wait_ns = round(wait_s * 1e9)
        self._level: _Level | None = None
        self.levels: list[dict[str, Any]] = []
        self.stopped_by: str | None = None

    @property
    def rate(self) -> float:
        return max(float(self.shape.step_users), LEVEL_RATE_PER_S)

    def tick(self) -> Tick:
        """The users to run now, or None once the search is over."""
        if self.stopped_by is not None:
            return None
        now = self._clock()
        level = self._level
        if level is None:
            return self._start(1, now)
        end = level.start_ns + self._step_ns
        if now < end:
            return level.users, self.rate
        covered = self.stats.covered_ns(self._sources())
        complete = covered is not None and covered >= end
        if not complete and now < end + self._wait_ns:
            return level.users, self.rate  # hold the level until its window is all in
        result = self._judge(level, end, complete)
        self.levels.append(result)
        stop = self._stop_reason(result, level)
        if stop is not None:
            self._finish(stop)
            return None
        return self._start(level.index + 1, now)

    def interrupt(self) -> None:
        """The test ended before the search decided (run time, a stop, Ctrl-C)."""
        if self.stopped_by is None:
            self._finish(STOP_INTERRUPTED)

    def _start(self, index: int, now: int) -> Tick:
        self._level = _Level(index, self.users[index - 1], now)
        return self._level.users, self.rate

    def _judge(self, level: _Level, end_ns: int, complete: bool) -> dict[str, Any]:
        snap = self.stats.window(level.start_ns, end_ns)
        results = [
            evaluate(g, *observe(snap, g.metric, self.config)) for g in self.config.level_gates
        ]
        settled = level.start_ns + round(min(SPAWN_SETTLE_S, self.shape.step_s / 2) * 1e9)
        gen = self.stats.generator_window(settled, end_ns)
        spawn = self.stats.generator_window(level.start_ns, settled)
        saturated = _saturated(gen.max_cpu_pct, gen.max_lag_ms, self.config)
        verdicts = {r.verdict for r in results}
        verdict = (
            "saturated"
            if saturated
            else "fail"
            if "fail" in verdicts
            else "inconclusive"
            if "inconclusive" in verdicts
            else "pass"
        )
        bot = snap.step(s.STEP_BOT_REPLY)
        return {
            "level": level.index,
            "users": level.users,
            "started": _iso(level.start_ns),
            "window_s": self.shape.step_s,
            "complete": complete,
            "active_connections": _number(gen.active_connections),
            "turns_per_s": (bot.count if bot else 0) / self.shape.step_s,
            "generator": {
                "samples": gen.samples,
                "max_cpu_pct": _number(gen.max_cpu_pct),
                "max_lag_ms": _number(gen.max_lag_ms),
                "saturated": saturated,
            },
            "generator_during_spawn": {
                "samples": spawn.samples,
                "max_cpu_pct": _number(spawn.max_cpu_pct),
                "max_lag_ms": _number(spawn.max_lag_ms),
            },
            "gates": [
                {
                    "gate": r.gate.text,
                    "observed": _number(r.observed),
                    "threshold": r.gate.threshold,
                    "samples": r.samples,
                    "verdict": r.verdict,
                    "shown": _shown(r),
                }
                for r in results
            ],
            "verdict": verdict,
        }

    def _stop_reason(self, result: dict[str, Any], level: _Level) -> str | None:
        if result["verdict"] == "saturated":
            return STOP_GENERATOR
        if result["verdict"] == "fail":
            return STOP_GATE
        return STOP_PEAK if level.index == len(self.users) else None

    def _finish(self, stop: str) -> None:
        self.stopped_by = stop
        self._on_done(self.summary())

    def summary(self) -> dict[str, Any]:
        """run.json ``capacity_search``."""
        passing = [lv["users"] for lv in self.levels if lv["verdict"] == "pass"]
        last = self.levels[-1] if self.levels else None
        failing = last if last is not None and last["verdict"] in ("fail", "saturated") else None
        out = {
            "step_users": self.shape.step_users,
            "step_time_s": self.shape.step_s,
            "peak_users": self.users[-1] if self.users else 0,
            "gates": [g.text for g in self.config.level_gates],
            "run_only_gates": [g.text for g in self.config.gates if g.metric in RUN_ONLY_METRICS],
            "cpu_threshold_pct": self.config.cpu_pct_max,
            "lag_threshold_ms": self.config.lag_ms_max,
            "levels": self.levels,
            "highest_passing_users": max(passing) if passing else None,
            "first_failing": _failing(failing) if failing is not None else None,
            "stopped_by": self.stopped_by,
        }
        out["verdict"] = verdict_text(out)
        return out


def _failing(level: dict[str, Any]) -> dict[str, Any]:
    return {
        "level": level["level"],
        "users": level["users"],
        "failed_gates": [g for g in level["gates"] if g["verdict"] == "fail"],
        "generator": level["generator"],
        "saturated": level["verdict"] == "saturated",
    }


def verdict_text(summary: Mapping[str, Any]) -> str:
    """One paragraph: the highest level meeting every gate, the first that did not and why,
    and whether the generator or the server stopped the search."""
    best = summary.get("highest_passing_users")
    head = (
        f"highest level meeting every gate: {best} users"
        if best is not None
        else "no level met every gate"
    )
    fail, stop = summary.get("first_failing"), summary.get("stopped_by")
    if not summary.get("gates"):
        head += " (no per-level gates were given: only generator saturation could stop it)"
    if stop == STOP_GENERATOR and fail is not None:
        gen = fail["generator"]
        return (
            f"Capacity search: {head}. It stopped at {fail['users']} users because the load "
            f"generator saturated (max CPU {_pct(gen['max_cpu_pct'])}, max event-loop lag "
            f"{_ms(gen['max_lag_ms'])}; thresholds {summary.get('cpu_threshold_pct'):g}% / "
            f"{summary.get('lag_threshold_ms'):g} ms): the limit found is the generator's, not "
            "the server's; add workers (--processes N) and run it again."
        )
    if stop == STOP_GATE and fail is not None:
        why = "; ".join(g["shown"] for g in fail["failed_gates"])
        return (
            f"Capacity search: {head}. The first level that did not: {fail['users']} users, "
            f"{why}. The generator was healthy there: the server side broke."
        )
    if stop == STOP_PEAK:
        return (
            f"Capacity search: {head}; no level up to the peak of {summary.get('peak_users')} "
            "users failed a gate: raise -u / --peak-users to find the limit."
        )
    return f"Capacity search: {head}; the test ended before any level failed a gate."


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _iso(ns: int) -> str:
    stamp = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
