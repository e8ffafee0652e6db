"""``harness bench client``: Locust client throughput, scale and recording overhead.

Every figure comes from a real run against the real simulator on loopback:

- throughput: full-flow correlated onMessage round trips/s in one Locust process (zero bot
  latency, limits off) divided by a naive gevent + websocket-client loop
  (``benchmarks/naive_ws_loop.py``) against the same simulator in the same run. The generator
  is pinned to CPU 0 and the simulator to CPU 1, and both CPU shares are printed: when the
  simulator's core is saturated the raw ratio says nothing about the client, so the ratio of
  round trips per generator CPU-second is printed beside it;
- scale: configured sessions held by one Locust process with heartbeats running, RSS each;
- recording overhead: generator CPU per round trip with the recorder on vs off;
- wsaccel: the same full-flow run with and without wsaccel importable.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.client.sources import local_port_range, ports_per_address

ROOT = Path(__file__).resolve().parents[2]
NAIVE = ROOT / "benchmarks" / "naive_ws_loop.py"
LOCUSTFILE = ROOT / "locustfiles" / "guest.py"
SIM_ARGS = ("--no-limits", "--bot-latency", "fixed:0ms", "--quick-replies", "0")
GEN_CPU, SIM_CPU = 0, 1
SATURATED_PCT = 90.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=50, help="concurrent users (throughput)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--repeat", type=int, default=3, help="A/B pairs per comparison")
    parser.add_argument("--sessions", type=int, default=50_000, help="scale: sessions to hold")
    parser.add_argument("--spawn-rate", type=float, default=400.0, help="scale: users/s")
    parser.add_argument(
        "--only",
        choices=("throughput", "scale", "overhead", "wsaccel"),
        action="append",
        help="run only these parts (repeatable; default all)",
    )


@dataclass(frozen=True, slots=True)
class Measure:
    """Round trips in a window plus the CPU seconds both processes used in it."""

    round_trips: int
    seconds: float
    gen_cpu_s: float
    sim_cpu_s: float

    @property
    def rate(self) -> float:
        return self.round_trips / self.seconds if self.seconds else 0.0

    @property
    def gen_pct(self) -> float:
        return 100.0 * self.gen_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def sim_pct(self) -> float:
        return 100.0 * self.sim_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float:
        """Round trips per generator CPU-second: the client's cost, whoever was the bottleneck."""
        return self.round_trips / self.gen_cpu_s if self.gen_cpu_s else 0.0

    def line(self, label: str) -> str:
        flag = " (simulator saturated)" if self.sim_pct >= SATURATED_PCT else ""
        return (
            f"{label}: {self.rate:,.0f} round trips/s; generator CPU {self.gen_pct:.0f}%, "
            f"simulator CPU {self.sim_pct:.0f}%{flag}; {self.per_cpu_s:,.0f} per generator CPU-s"
        )


def _cpu_s(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(t.user + t.system)


def _pin(pid: int, cpu: int) -> None:
    """Keep a process on one core (its threads and later children inherit it)."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


def _raise_nofile(wanted: int) -> int:
    """Raise the open-files limit (soft, and hard when allowed) for us and our children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            wanted = hard
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


def locust_cmd(host: str, run_dir: Path, run_s: float, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "-t",
        f"{run_s:.0f}s",
        "--run-dir",
        str(run_dir),
        "--stop-timeout",
        "0",
        "--typing",
        "off",
        "--heartbeat-interval",
        "0",
        "--think-time",
        "0",
        "--session-mode",
        "keep",
        "--messages-per-session",
        "100000000",
        # the simulator answers with one message: the first is the whole answer, so a turn
        # ends at the reply (with the default 500 ms quiet window it would idle per turn)
        "--answer-quiet",
        "0",
        *extra,
    ]


def _replies_in(stats_json: str, t0_s: int, t1_s: int) -> int:
    """Bot replies Locust counted in whole seconds [t0_s, t1_s) (its per-second counts work
    with the recorder off too, so on/off are measured the same way)."""
    for entry in json.loads(stats_json):
        if entry["name"] == "botReply" and entry["method"] == "WS":
            per_s = entry["num_reqs_per_sec"]
            return sum(int(n) for sec, n in per_s.items() if t0_s <= int(sec) < t1_s)
    return 0


def _sleep_until(epoch_s: float) -> None:
    time.sleep(max(0.0, epoch_s - time.time()))


def full_flow(
    sim: Any,
    users: int,
    warmup: float,
    seconds: float,
    *extra: str,
    env: dict[str, str] | None = None,
) -> Measure:
    """One Locust process running the full GuestUser flow; replies counted by Locust."""
    window = max(1, round(seconds))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = locust_cmd(
            sim.url.removesuffix("/v1"),
            run_dir,
            warmup + window + 3,
            "--json",
            "-u",
            str(users),
            "-r",
            str(users),
            *extra,
        )
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _pin(proc.pid, GEN_CPU)
        t0 = math.ceil(time.time() + warmup)
        _sleep_until(t0)
        g0, s0 = _cpu_s(proc.pid), _cpu_s(sim.proc.pid)
        _sleep_until(t0 + window)
        g1, s1 = _cpu_s(proc.pid), _cpu_s(sim.proc.pid)
        out, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"locust failed ({proc.returncode}): {err.decode()[-2000:]}")
    return Measure(_replies_in(out.decode(), t0, t0 + window), window, g1 - g0, s1 - s0)


def naive(sim: Any, users: int, warmup: float, seconds: float) -> Measure:
    """The baseline loop (plain send/recv, nothing parsed) against the same simulator."""
    url = f"{sim.url}?deploymentId=00000000-0000-4000-8000-000000000000"
    cmd = [sys.executable, str(NAIVE), url, str(users), str(warmup), str(seconds)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)
    _pin(proc.pid, GEN_CPU)
    time.sleep(warmup + 0.3)  # the script's own imports take a moment
    s0 = _cpu_s(sim.proc.pid)
    time.sleep(seconds)
    s1 = _cpu_s(sim.proc.pid)
    out, _ = proc.communicate(timeout=60)
    data = json.loads(out.decode().strip().splitlines()[-1])
    return Measure(data["round_trips"], data["seconds"], data["cpu_s"], s1 - s0)


def _start_sim(*extra: str) -> Any:
    from harness.sim.launcher import SimProcess

    sim = SimProcess([*SIM_ARGS, *extra])
    _pin(sim.proc.pid, SIM_CPU)
    return sim


def _pairs(
    a: argparse.Namespace, first: Callable[[], Measure], second: Callable[[], Measure]
) -> tuple[list[Measure], list[Measure]]:
    """Run A/B ``--repeat`` times, alternating the order, so drift and neighbours' load hit
    both sides alike."""
    xs: list[Measure] = []
    ys: list[Measure] = []
    for i in range(a.repeat):
        if i % 2:
            ys.append(second())
            xs.append(first())
        else:
            xs.append(first())
            ys.append(second())
    return xs, ys


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _report_pairs(
    out: list[str], label_x: str, xs: list[Measure], label_y: str, ys: list[Measure]
) -> float:
    """Print every run; return the median ratio of round trips per generator CPU-second."""
    for i, (x, y) in enumerate(zip(xs, ys, strict=True), 1):
        out.append(x.line(f"[{i}] {label_x}"))
        out.append(y.line(f"[{i}] {label_y}"))
    return _median([x.per_cpu_s / y.per_cpu_s for x, y in zip(xs, ys, strict=True) if y.per_cpu_s])


def bench_throughput(a: argparse.Namespace, out: list[str]) -> None:
    with _start_sim() as sim:
        fulls, bases = _pairs(
            a,
            lambda: full_flow(sim, a.users, a.warmup, a.seconds),
            lambda: naive(sim, a.users, a.warmup, a.seconds),
        )
    per_cpu = _report_pairs(out, "full GuestUser flow (Locust)", fulls, "naive loop", bases)
    raw = _median([f.rate / b.rate for f, b in zip(fulls, bases, strict=True) if b.rate])
    saturated = any(m.sim_pct >= SATURATED_PCT for m in (*fulls, *bases))
    note = " -- simulator saturated: NOT a client result" if saturated else ""
    out.append(f"throughput ratio, round trips/s (median of {a.repeat}): {raw:.2f}{note}")
    out.append(f"throughput ratio per generator CPU-second (median): {per_cpu:.2f} (target >= 1.0)")


def bench_wsaccel(a: argparse.Namespace, out: list[str]) -> None:
    """Same fixed offered load with and without wsaccel importable."""
    if importlib.util.find_spec("wsaccel") is None:
        out.append("wsaccel: not installed here; `pip install wsaccel` to measure it")
        return
    paced = ("--think-time", "0.02s")
    with tempfile.TemporaryDirectory() as shim:
        pkg = Path(shim) / "wsaccel"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("raise ImportError('hidden by harness bench')\n")
        env = {**os.environ, "PYTHONPATH": shim}
        with _start_sim() as sim:
            ons, offs = _pairs(
                a,
                lambda: full_flow(sim, a.users, a.warmup, a.seconds, *paced),
                lambda: full_flow(sim, a.users, a.warmup, a.seconds, *paced, env=env),
            )
    gain = _report_pairs(out, "with wsaccel", ons, "without wsaccel", offs)
    out.append(f"wsaccel: {gain - 1:+.1%} round trips per generator CPU-second (median)")


def bench_overhead(a: argparse.Namespace, out: list[str]) -> None:
    """Same fixed offered load with the recorder on and off; generator CPU per round trip."""
    paced = ("--think-time", "0.02s")
    with _start_sim() as sim:
        ons, offs = _pairs(
            a,
            lambda: full_flow(sim, a.users, a.warmup, a.seconds, *paced),
            lambda: full_flow(sim, a.users, a.warmup, a.seconds, *paced, "--no-record"),
        )
    ratio = _report_pairs(out, "recorder on", ons, "recorder off", offs)
    overhead = 1 / ratio - 1 if ratio else 0.0
    out.append(f"recording overhead, A/B: {overhead:+.1%} generator CPU per round trip (median)")
    add, arrow, parquet = recorder_cost_us()
    per_rt_us = 1e6 / _median([m.per_cpu_s for m in ons]) if ons else 0.0
    share = 2 * (add + arrow + parquet) / per_rt_us if per_rt_us else 0.0
    out.append(
        f"recorder CPU per row: add {add:.2f} us + Arrow {arrow:.2f} us + Parquet {parquet:.2f}"
        f" us; 2 rows per round trip = {share:.1%} of the {per_rt_us:.0f} us generator CPU per"
        " round trip (target < 5%)"
    )


def recorder_cost_us(rows: int = 100_000, *, warm: bool = True) -> tuple[float, float, float]:
    """CPU per row of the recorder's three stages on realistic rows (no sockets, no noise
    from the load): append, Arrow conversion, Parquet shard write (after a warm-up pass:
    pyarrow's first conversions pay one-off set-up costs)."""
    if warm:
        recorder_cost_us(2000, warm=False)
    import uuid

    from harness.record.recorder import Recorder
    from harness.record.shards import complete_table, write_shard

    tokens = [str(uuid.uuid4()) for _ in range(1000)]
    now = time.time_ns()
    rec = Recorder()
    c0 = time.process_time()
    for i in range(rows):
        step = "onMessage" if i % 2 else "botReply"
        row = (i % 1000, tokens[i % 1000], 1, step, now + i, 812.5 + i % 97, None, True)
        rec.add((*row, None, None, None, None, None, None, 120, 310, None, None, None))
    c1 = time.process_time()
    table = rec.take_batch()
    c2 = time.process_time()
    assert table is not None
    with tempfile.TemporaryDirectory() as tmp:
        write_shard(complete_table(table, "bench", "local"), Path(tmp), "local-1.parquet")
    c3 = time.process_time()
    per = 1e6 / rows
    return (c1 - c0) * per, (c2 - c1) * per, (c3 - c2) * per


def _health(run_dir: Path) -> list[tuple[int, int, int]]:
    """(ts_ns, active_connections, rss_bytes) of every generator sample so far, in order."""
    from harness.record import schema as s
    from harness.record.shards import read_events

    try:
        table = read_events(run_dir)
    except OSError:
        return []
    rows = [
        (int(r[s.TS_NS]), int(r[s.ACTIVE_CONNECTIONS] or 0), int(r[s.RSS_BYTES] or 0))
        for r in table.to_pylist()
        if r[s.STEP] == s.STEP_GENERATOR
    ]
    return sorted(rows)


def _held(run_dir: Path) -> tuple[int, int]:
    """Latest (active_connections, rss_bytes) generator sample of a run, or (0, 0)."""
    rows = _health(run_dir)
    return (rows[-1][1], rows[-1][2]) if rows else (0, 0)


def marginal_kib(samples: list[tuple[int, int, int]], sessions: int) -> float | None:
    """Least-squares slope of RSS over open connections during the ramp (25%-100% of the
    target), in KiB per session: the cost of one more session, without the process's
    one-off growth. None with too few samples."""
    pts = [(a, r) for _, a, r in samples if a >= sessions // 4]
    if len(pts) < 3 or len({a for a, _ in pts}) < 2:
        return None
    mean_a = sum(a for a, _ in pts) / len(pts)
    mean_r = sum(r for _, r in pts) / len(pts)
    cov = sum((a - mean_a) * (r - mean_r) for a, r in pts)
    var = sum((a - mean_a) ** 2 for a, _ in pts)
    return cov / var / 1024


def hold(
    sim: Any, sessions: int, spawn_rate: float, limit_s: float
) -> tuple[int, int, float, float | None]:
    """Hold ``sessions`` configured sessions with heartbeats; (held, RSS at the plateau,
    CPU % at the plateau, marginal KiB per session during the ramp)."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = locust_cmd(
            sim.url.removesuffix("/v1"),
            run_dir,
            limit_s,
            "-u",
            str(sessions),
            "-r",
            str(spawn_rate),
            "--messages-per-session",
            "0",
            "--heartbeat-interval",
            "60s",
            "--reply-timeout",
            "60s",
            *_spread(sessions),
        )
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _pin(proc.pid, GEN_CPU)
        deadline = time.monotonic() + limit_s - 10
        held = 0
        while time.monotonic() < deadline and held < sessions:
            time.sleep(2)
            held, _ = _held(run_dir)
        time.sleep(5)  # a few heartbeats and samples at the plateau
        c0 = _cpu_s(proc.pid)
        time.sleep(5)
        cpu_pct = (_cpu_s(proc.pid) - c0) / 5 * 100
        rss = psutil.Process(proc.pid).memory_info().rss
        samples = _health(run_dir)
        held = samples[-1][1] if samples else 0
        proc.terminate()
        proc.wait(timeout=120)
    return held, rss, cpu_pct, marginal_kib(samples, sessions)


def _spread(sessions: int) -> tuple[str, ...]:
    """``--source-addresses`` on loopback when one address has too few ephemeral ports."""
    ports = ports_per_address(local_port_range())
    if ports is None or sessions <= ports - 1000:
        return ()
    needed = -(-sessions // (ports - 1000))
    return ("--source-addresses", f"127.0.0.2-127.0.0.{needed + 1}")


def _stopped_by(asked: int, sessions: int, nofile: int) -> str:
    if sessions >= asked:
        return ""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return (
        f"; target {asked:,} not reachable here: stopped by the open-files hard limit "
        f"({hard:,}; a process cannot raise it without CAP_SYS_RESOURCE), so at most "
        f"{sessions:,} were asked"
    )


def bench_scale(a: argparse.Namespace, out: list[str]) -> None:
    nofile = _raise_nofile(a.sessions + 1000)
    sessions = min(a.sessions, nofile - 500)
    limit = sessions / a.spawn_rate + 90
    processes = str(max(1, math.ceil(sessions / 15_000)))  # each simulator process: 1 fd each
    with _start_sim("--idle-timeout", "0", "--max-age", "0", "--processes", processes) as sim:
        _, base_rss, _, _ = hold(sim, 1, 1, 40)
        held, rss, cpu, slope = hold(sim, sessions, a.spawn_rate, limit)
    each = (rss - base_rss) / max(1, held - 1)
    marginal = f"{slope:.1f} KiB" if slope is not None else "n/a"
    out.append(
        f"scale: {held:,} configured sessions held (asked {sessions:,}, open-files limit "
        f"{nofile:,}); RSS {rss / 2**20:,.0f} MiB vs {base_rss / 2**20:,.0f} MiB with one "
        f"session = {each / 1024:.1f} KiB per session (target <= 25 KiB); marginal cost "
        f"during the ramp {marginal} per session; generator CPU at the plateau {cpu:.0f}%"
        + _stopped_by(a.sessions, sessions, nofile)
    )


PARTS = {
    "throughput": bench_throughput,
    "wsaccel": bench_wsaccel,
    "overhead": bench_overhead,
    "scale": bench_scale,
}


def run(args: argparse.Namespace) -> int:
    """Run the selected parts and print one line per figure."""
    if not NAIVE.exists() or not LOCUSTFILE.exists():
        print("harness bench client: run it from a source checkout", file=sys.stderr)
        return 2
    out: list[str] = [
        f"cores: {os.cpu_count()}; generator on CPU {GEN_CPU}, simulator on CPU {SIM_CPU}"
    ]
    for name in args.only or list(PARTS):
        print(f"== {name}", flush=True)
        before = len(out)
        PARTS[name](args, out)
        for line in out[before:]:
            print(line, flush=True)
    print("\n".join(["", "summary:", *out]))
    return 0
