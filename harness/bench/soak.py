"""``harness bench soak``: does either side leak over a long steady run?

One Locust process holds ``--users`` sessions in keep mode with heartbeats and a message
every ``--think-time`` each, paced within Genesys' limits, against a simulator with its
default limits. Every ``--sample`` seconds this process samples both sides' RSS and open
file descriptors from outside (psutil). After the run:

- drift per side: least-squares slope of RSS after the warm-up, in MiB per 10 minutes
  (target < 1 MiB), and the open-fd range;
- agreement: the run's own report (``harness report``) judges ``generator.rss`` drift from
  the generator's health rows; the same rule applied to the samples taken here must give
  the same verdict, and the two slopes are printed side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.client import LOCUSTFILE, ROOT, locust_cmd

TARGET_MIB_PER_10MIN = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="run length (default 30)")
    parser.add_argument("--users", type=int, default=200, help="sessions held (default 200)")
    parser.add_argument("--think-time", default="2s", help="pause between messages (default 2s)")
    parser.add_argument(
        "--heartbeat-interval", default="60s", help="client heartbeat interval (default 60s)"
    )
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--warmup",
        type=float,
        help="minutes left out of the drift fit (default: a tenth of the run, at most 3)",
    )
    parser.add_argument(
        "--run-dir", type=Path, help="keep the run directory here (default: a temporary one)"
    )


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float  # since the load generator started
    rss: int
    fds: int


def _sample(pid: int, t_s: float) -> Sample | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        return Sample(t_s, proc.memory_info().rss, proc.num_fds())
    except psutil.Error:
        return None


def slope_mib_per_10min(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS over time; None with fewer than 3 samples."""
    if len(samples) < 3:
        return None
    t = np.array([s.t_s for s in samples])
    y = np.array([s.rss for s in samples], dtype=float) / 2**20
    slope_per_s = float(np.polyfit(t, y, 1)[0])
    return slope_per_s * 600.0


def same_rule_verdict(samples: list[Sample], window_s: float) -> tuple[str, str]:
    """The report's generator.rss rule applied to our own samples, windowed like the report
    (mean RSS per window of ``window_s`` since the start): (verdict, evidence)."""
    from harness.report.metrics.soak import DriftRule, drift

    t = np.array([s.t_s for s in samples])
    y = np.array([s.rss for s in samples], dtype=float) / 2**20
    index = np.floor(t / window_s)
    keys = np.unique(index)
    t_w = keys * window_s
    y_w = np.array([y[index == k].mean() for k in keys])
    row = drift(t_w, y_w, "generator.rss", "MiB", DriftRule())
    return str(row["verdict"]), str(row["evidence"])


def side_line(label: str, samples: list[Sample], warmup_s: float) -> tuple[str, bool]:
    """One line per side and whether it is within the target."""
    steady = [s for s in samples if s.t_s >= warmup_s]
    slope = slope_mib_per_10min(steady)
    if slope is None or not steady:
        return f"{label}: too few samples after the warm-up ({len(steady)})", False
    ok = abs(slope) < TARGET_MIB_PER_10MIN
    rss = [s.rss / 2**20 for s in steady]
    fds = [s.fds for s in steady]
    return (
        f"{label}: RSS {rss[0]:.1f} -> {rss[-1]:.1f} MiB (min {min(rss):.1f}, max "
        f"{max(rss):.1f}) over {(steady[-1].t_s - steady[0].t_s) / 60:.1f} min after the "
        f"warm-up; drift {slope:+.3f} MiB per 10 min (target < {TARGET_MIB_PER_10MIN:g}: "
        f"{'met' if ok else 'NOT met'}); open fds {fds[0]} -> {fds[-1]} (range "
        f"{min(fds)}-{max(fds)})",
        ok,
    )


def _report_rss(run_dir: Path) -> tuple[dict[str, Any] | None, float]:
    """The report's generator.rss soak row and its window, after ``harness report``."""
    subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run_dir), "--no-plots"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    path = run_dir / "report.json"
    if not path.exists():
        return None, 0.0
    soak = json.loads(path.read_text())["soak"]
    rows = [m for m in soak["metrics"] if m["metric"] == "generator.rss"]
    return (rows[0] if rows else None), float(soak["window_s"])


def soak(a: argparse.Namespace, run_dir: Path) -> tuple[list[str], bool]:
    from harness.sim.launcher import SimProcess

    seconds = a.minutes * 60
    warmup_s = 60 * (a.warmup if a.warmup is not None else min(3.0, a.minutes / 10))
    gen: list[Sample] = []
    sim_side: list[Sample] = []
    with SimProcess(["--quick-replies", "0"]) as sim:
        cmd = locust_cmd(
            sim.url.removesuffix("/v1"),
            run_dir,
            seconds,
            *("-u", str(a.users), "-r", str(max(1, a.users // 10))),
            *("--think-time", a.think_time, "--heartbeat-interval", a.heartbeat_interval),
            "--reply-timeout",
            "30s",
        )
        # paced within the documented limits: drop the throughput bench's "no pacing" parts
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start = time.monotonic()
        next_at = start
        while proc.poll() is None:
            now = time.monotonic() - start
            for pid, into in ((proc.pid, gen), (sim.proc.pid, sim_side)):
                sample = _sample(pid, now)
                if sample is not None:
                    into.append(sample)
            next_at += a.sample
            try:
                proc.wait(timeout=max(0.0, next_at - time.monotonic()))
            except subprocess.TimeoutExpired:
                continue
        err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"locust failed ({proc.returncode}): {err[-2000:]}")
    gen = [s for s in gen if s.t_s <= seconds]  # the stop and final flush are not the soak
    out = [
        f"soak: {a.users} users in keep mode, a message every {a.think_time} each, heartbeats "
        f"every {a.heartbeat_interval}, {a.minutes:g} min, {len(gen)} samples every "
        f"{a.sample:g} s; drift fitted after a {warmup_s / 60:g} min warm-up"
    ]
    gen_line, gen_ok = side_line("load generator", gen, warmup_s)
    sim_line, sim_ok = side_line("simulator", sim_side, warmup_s)
    out += [gen_line, sim_line]
    row, window_s = _report_rss(run_dir)
    agree = False
    if row is None:
        out.append("report: no generator.rss soak row (report.json missing or no health rows)")
    else:
        mine, evidence = same_rule_verdict(gen, window_s)
        agree = mine == row["verdict"]
        per_10 = (row["slope_per_hour"] or 0.0) / 6
        out.append(
            f"report drift verdict for generator.rss: {row['verdict']} ({row['evidence']}); "
            f"its slope {per_10:+.3f} MiB per 10 min; the same rule on this bench's samples: "
            f"{mine} ({evidence}) -> {'agree' if agree else 'DISAGREE'}"
        )
    return out, gen_ok and sim_ok and agree


def run(args: argparse.Namespace) -> int:
    if not LOCUSTFILE.exists():
        print("harness bench soak: run it from a source checkout", file=sys.stderr)
        return 2
    if args.run_dir is not None:
        lines, ok = soak(args, args.run_dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            lines, ok = soak(args, Path(tmp) / "run")
    print("\n".join(lines))
    return 0 if ok else 1
