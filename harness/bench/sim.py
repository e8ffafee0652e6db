"""``harness bench sim``: simulator round trips per second vs a bare websockets echo server.

One run measures guest round trips (``onMessage`` → echo + bot reply at zero bot latency,
limits off) with 50 and 500 concurrent clients against the simulator with 1 and 2 processes,
and against a bare ``websockets`` echo server under the same driver. Targets: one simulator
process >= 0.5x the echo server; two processes >= 1.6x one. CPU use of every process is
measured over the same window, because on a small machine the driver and the servers share
the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness.errors import UsageError

SECTION = "## harness bench sim"
TARGET_ONE_VS_ECHO = 0.5
TARGET_TWO_VS_ONE = 1.6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", default="4s", help="measured seconds per cell (4s)")
    parser.add_argument("--warmup", default="1s", help="unmeasured seconds per cell (1s)")
    parser.add_argument(
        "--clients", default="50,500", help="concurrent clients, comma-separated (50,500)"
    )
    parser.add_argument(
        "--targets", default="echo,sim1,sim2", help="echo, sim1, sim2 (comma-separated)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds over all cells; the median is kept (3)"
    )
    parser.add_argument(
        "--write-results",
        nargs="?",
        const="benchmarks/RESULTS.md",
        default=None,
        metavar="PATH",
        help="write the section of benchmarks/RESULTS.md (or PATH)",
    )


@dataclass(slots=True)
class Cell:
    """One measured cell: target x clients."""

    target: str
    clients: int
    trips_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    server_cpu: list[float]
    driver_cpu: float
    total_trips: int = 0
    #: (lowest, highest) round trips/s over the repeats this cell stands for.
    spread: tuple[float, float] | None = None

    @property
    def trips_per_cpu_s(self) -> float | None:
        """Round trips per CPU-second of the server processes: robust to a shared machine."""
        used = sum(self.server_cpu)
        return self.trips_per_s / used if used > 0 else None


@dataclass(slots=True)
class Server:
    """A running benchmark target and how to stop it."""

    port: int
    pids: Callable[[], list[int]]
    stop: Callable[[], str]
    counted: Callable[[str], int | None] = field(default=lambda _out: None)


# -- targets -------------------------------------------------------------------------------


def _echo_main(pipe: Connection) -> None:
    """A bare websockets echo server (the baseline), run in its own process."""
    import asyncio
    import signal

    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):  # the driver hangs up without a close
            async for message in ws:
                await ws.send(message)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with serve(
            handler,
            "127.0.0.1",
            0,
            compression=None,
            ping_interval=None,
            max_size=2**20,
            backlog=4096,
        ) as server:
            pipe.send(server.sockets[0].getsockname()[1])
            await stop.wait()

    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        runner.run(main())


def _start_echo() -> Server:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    proc = context.Process(target=_echo_main, args=(theirs,), daemon=True)
    proc.start()
    if not ours.poll(30):
        proc.kill()
        raise UsageError("echo server did not start")
    port = int(ours.recv())

    def stop() -> str:
        proc.terminate()
        proc.join(10)
        return ""

    assert proc.pid is not None
    pid = proc.pid
    return Server(port, lambda: [pid], stop)


def _start_sim(processes: int) -> Server:
    import psutil

    from harness.sim.launcher import SimProcess
    from harness.sim.stats import parse_summary

    args = ["--no-limits", "--bot-latency", "0", "--quick-replies", "0"]
    args += ["--idle-timeout", "0", "--max-age", "0", "--processes", str(processes)]
    sim = SimProcess(args)

    def pids() -> list[int]:
        root = psutil.Process(sim.proc.pid)
        children = [c.pid for c in root.children(recursive=True)]
        return children if processes > 1 else [root.pid]

    def counted(output: str) -> int | None:
        stats = parse_summary(output)
        return stats.messages if stats is not None else None

    return Server(sim.port, pids, sim.stop, counted)


# -- one cell ------------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> list[float]:
    import psutil

    seconds = []
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            seconds.append(0.0)
            continue
        seconds.append(times.user + times.system)
    return seconds


def _run_cell(target: str, server: Server, clients: int, warmup: float, duration: float) -> Cell:
    from harness.bench.sim_driver import DriverPlan, driver_process

    plan = DriverPlan(
        host="127.0.0.1",
        port=server.port,
        clients=clients,
        frames_per_trip=1 if target == "echo" else 2,
        warmup_s=warmup,
        duration_s=duration,
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    driver = context.Process(target=driver_process, args=(plan, theirs), daemon=True)
    driver.start()
    assert driver.pid is not None
    server_pids = server.pids()
    before: list[float] = []
    started = 0.0
    deadline = time.monotonic() + warmup + duration + 120
    result: dict[str, Any] | None = None
    cpu: list[float] = []
    while result is None:
        if time.monotonic() > deadline or (not ours.poll(1.0) and not driver.is_alive()):
            driver.kill()
            raise UsageError(f"bench driver failed for {target} x {clients}")
        if not ours.poll(0):
            continue
        kind, value = ours.recv()
        if kind == "measure-start":
            before, started = _cpu_seconds([*server_pids, driver.pid]), time.monotonic()
        elif kind == "measure-end":
            after, elapsed = _cpu_seconds([*server_pids, driver.pid]), time.monotonic() - started
            cpu = [(a - b) / elapsed for a, b in zip(after, before, strict=True)]
        elif kind == "error":
            raise UsageError(f"bench driver: {value}")
        else:
            result = value
    driver.join(10)
    return Cell(
        target=target,
        clients=clients,
        trips_per_s=float(result["trips_per_s"]),
        p50_ms=result["p50_us"] / 1000 if result["p50_us"] is not None else None,
        p99_ms=result["p99_us"] / 1000 if result["p99_us"] is not None else None,
        server_cpu=cpu[:-1],
        driver_cpu=cpu[-1] if cpu else 0.0,
        total_trips=int(result["total_trips"]),
    )


# -- the run -------------------------------------------------------------------------------


def _parse_list(text: str, allowed: set[str] | None = None) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if allowed is not None and not set(items) <= allowed:
        raise UsageError(f"unknown target in {text!r}; use {', '.join(sorted(allowed))}")
    return items


def run(args: argparse.Namespace) -> int:
    from harness.protocol.units import parse_duration

    duration, warmup = parse_duration(args.duration), parse_duration(args.warmup)
    try:
        client_counts = [int(n) for n in _parse_list(args.clients)]
    except ValueError:
        raise UsageError(f"--clients {args.clients!r}: use e.g. 50,500") from None
    targets = _parse_list(args.targets, {"echo", "sim1", "sim2"})
    if args.repeat < 1:
        raise UsageError("--repeat must be >= 1")
    machine = describe_machine()
    print(machine, flush=True)
    servers: dict[str, Server] = {}
    runs: dict[str, list[Cell]] = {target: [] for target in targets}
    try:
        for target in targets:
            servers[target] = _start_echo() if target == "echo" else _start_sim(int(target[-1]))
        for _round in range(args.repeat):  # rounds interleave the targets: load drift is shared
            for target in targets:
                for clients in client_counts:
                    cell = _run_cell(target, servers[target], clients, warmup, duration)
                    runs[target].append(cell)
                    print(format_row(cell), flush=True)
    finally:
        outputs = {target: server.stop() for target, server in servers.items()}
    notes = [
        note
        for target in targets
        for note in _accounting(target, servers[target].counted(outputs[target]), runs[target])
    ]
    cells = [
        _median([c for c in runs[target] if c.clients == clients])
        for target in targets
        for clients in client_counts
    ]
    report = render(cells, machine, notes, duration, warmup, repeat=args.repeat)
    print(report)
    if args.write_results:
        write_section(Path(args.write_results), report)
        print(f"wrote {args.write_results}")
    return 0


def _median(cells: list[Cell]) -> Cell:
    """The run with the median throughput, with the range of all runs attached."""
    ordered = sorted(cells, key=lambda c: c.trips_per_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.spread = (ordered[0].trips_per_s, ordered[-1].trips_per_s)
    return chosen


def _accounting(target: str, counted: int | None, cells: list[Cell]) -> list[str]:
    """Cross-check the driver's count against the simulator's SUMMARY (in flight allowed)."""
    if counted is None:
        return []
    completed = sum(c.total_trips for c in cells)
    in_flight = sum(c.clients for c in cells)
    ok = completed <= counted <= completed + in_flight
    verdict = "consistent" if ok else "MISMATCH"
    return [
        f"{target}: the simulator counted {counted} onMessage, the driver completed "
        f"{completed} round trips (at most {in_flight} in flight at the end): {verdict}"
    ]


# -- output --------------------------------------------------------------------------------

LABELS = {"echo": "bare echo (1 proc)", "sim1": "simulator (1 proc)", "sim2": "simulator (2 procs)"}


def format_row(cell: Cell) -> str:
    p50 = f"{cell.p50_ms:.2f}" if cell.p50_ms is not None else "-"
    p99 = f"{cell.p99_ms:.2f}" if cell.p99_ms is not None else "-"
    server_cpu = " + ".join(f"{c:.0%}" for c in cell.server_cpu if c >= 0.005) or "-"
    per_cpu = f"{cell.trips_per_cpu_s:,.0f}" if cell.trips_per_cpu_s else "-"
    spread = f"{cell.spread[0]:,.0f} to {cell.spread[1]:,.0f}" if cell.spread else "-"
    return (
        f"| {LABELS.get(cell.target, cell.target)} | {cell.clients} | {cell.trips_per_s:,.0f} "
        f"| {spread} | {p50} | {p99} | {server_cpu} | {cell.driver_cpu:.0%} | {per_cpu} |"
    )


def ratios(cells: list[Cell], *, per_cpu: bool = False) -> list[tuple[str, int, float, float]]:
    """(name, clients, ratio, target) for every pair that was measured.

    With ``per_cpu`` the ratio of round trips per server CPU-second; for 2 processes vs 1
    that is the scaling efficiency (1.0 = throughput grows with the cores they get).
    """
    by: dict[tuple[str, int], float | None] = {
        (c.target, c.clients): c.trips_per_cpu_s if per_cpu else c.trips_per_s for c in cells
    }
    out = []
    for clients in sorted({c.clients for c in cells}):
        echo, one, two = (by.get((t, clients)) for t in ("echo", "sim1", "sim2"))
        if echo and one is not None:
            out.append(("1 sim process / bare echo", clients, one / echo, TARGET_ONE_VS_ECHO))
        if one and two is not None:
            out.append(("2 sim processes / 1", clients, two / one, TARGET_TWO_VS_ONE))
    return out


def render(
    cells: list[Cell],
    machine: str,
    notes: list[str],
    duration: float,
    warmup: float,
    *,
    repeat: int = 1,
) -> str:
    lines = [
        SECTION,
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{duration:g} s per cell after {warmup:g} s warm-up, {repeat} interleaved rounds "
        "(each row is the median round; the range covers all rounds). "
        "A round trip is `onMessage` → "
        "echo + bot reply (simulator, bot latency 0, limits off) or → the echoed frame "
        "(bare `websockets` echo server); one closed-loop driver process on raw sockets.",
        "",
        machine,
        "",
        "| target | clients | round trips/s | range | p50 ms | p99 ms | server CPU "
        "| driver CPU | trips per server CPU-s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(format_row(cell) for cell in cells),
        "",
        "CPU is the share of one core used during the measured window (100% = one core); "
        "a server below 100% was starved (by the driver, the other server process or other "
        "load on the machine), so the last column is the fairer efficiency measure. For 2 "
        "processes vs 1 it is the scaling efficiency: 1.0 means throughput grows in step "
        "with the CPU the processes get.",
        "",
        "| ratio | clients | round trips/s | target | | per server CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    efficiency = {
        (name, clients): value for name, clients, value, _t in ratios(cells, per_cpu=True)
    }
    for name, clients, value, target in ratios(cells):
        verdict = "met" if value >= target else "NOT met"
        cpu_ratio = efficiency.get((name, clients))
        cpu_text = f"{cpu_ratio:.2f}x" if cpu_ratio is not None else "-"
        lines.append(
            f"| {name} | {clients} | {value:.2f}x | >= {target}x | {verdict} | {cpu_text} |"
        )
    lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def describe_machine() -> str:
    """CPU model, cores, load, Python and library versions (for RESULTS.md)."""
    import orjson

    model = platform.processor() or "unknown CPU"
    try:
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", text)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        uv = version("uvloop")
    except PackageNotFoundError:  # pragma: no cover
        uv = "absent"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Machine: {model}, {os.cpu_count()} cores, load average {load} at start; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"websockets {version('websockets')}, uvloop {uv}, orjson {orjson.__version__}."
    )


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the ``## harness bench sim`` section; other sections stay."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(SECTION))
        end = len(text) if following < 0 else following + 1
        text = text[:start] + section + ("\n" + text[end:] if following >= 0 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
