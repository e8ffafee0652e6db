"""``harness bench report``: 10 million synthetic events → time ``harness report`` on them.

Target (issue): < 15 s wall time and < 2 GB peak RSS on a 2-core machine. The report runs in
a child process so its peak RSS (``ru_maxrss`` of children) is measured alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=10_000_000, help="events (default 10M)")
    parser.add_argument("--shards", type=int, default=10, help="Parquet shards (workers)")
    parser.add_argument("--duration", type=float, default=3600.0, help="simulated run length, s")
    parser.add_argument("--dir", type=Path, help="keep the run here (default: a temp dir)")
    parser.add_argument("--no-plots", action="store_true", help="pass --no-plots to the report")


def _measure(run_dir: Path, no_plots: bool) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MiB, exit code) of ``harness report`` in a child process.

    CPU time (user + system) is reported next to wall time because the machine is shared:
    wall time under contention says more about the neighbours than about the report.
    """
    cmd = [sys.executable, "-m", "harness", "report", str(run_dir)]
    cmd += ["--no-plots"] if no_plots else []
    started = time.perf_counter_ns()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    wall = (time.perf_counter_ns() - started) / 1e9
    if proc.returncode not in (0, 1, 2):
        print(proc.stderr, file=sys.stderr)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def run(args: argparse.Namespace) -> int:
    from harness.bench.synthetic import SyntheticSpec, write_run

    spec = SyntheticSpec(events=args.events, shards=args.shards, duration_s=args.duration)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        run_dir = args.dir or Path(tmp) / "bench-run"
        started = time.perf_counter_ns()
        write_run(run_dir, spec)
        gen_s = (time.perf_counter_ns() - started) / 1e9
        size_mib = sum(p.stat().st_size for p in run_dir.rglob("*.parquet")) / 2**20
        load_before = os.getloadavg()[0]
        wall, cpu, peak, code = _measure(run_dir, args.no_plots)
    ok = code in (0, 1, 2) and wall < 15 and peak < 2048
    print(f"host: {platform.node()} ({platform.machine()}, python {platform.python_version()})")
    print(
        f"generated {spec.events:,} events in {spec.shards} shards ({size_mib:.0f} MiB) "
        f"in {gen_s:.1f} s"
    )
    print("| events | shards | plots | wall s | CPU s | peak RSS MiB | load avg | target |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {spec.events:,} | {spec.shards} | {'no' if args.no_plots else 'yes'} | {wall:.2f} | "
        f"{cpu:.2f} | {peak:.0f} | {load_before:.1f} | "
        f"{'met' if ok else 'MISSED'} (< 15 s, < 2048 MiB) |"
    )
    return 0 if code in (0, 1, 2) else 1
