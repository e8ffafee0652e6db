"""``harness run``: a headless Locust run, then ``harness report`` with SLO gates, one command.

With no ``--host`` the embedded simulator is used (loopback). The exit code is the report's:
0 pass, 1 a gate failed, 2 inconclusive (see ``harness report``); a Locust crash or bad
arguments exit 3, with a one-line reason. Locust itself is run as a child process:
it monkey-patches at import, which must not happen in the ``harness`` process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

#: users, spawn rate, run time, extra locust arguments
PROFILES: dict[str, tuple[int, float, str, tuple[str, ...]]] = {
    "smoke": (5, 5.0, "15s", ()),
    "ci": (50, 10.0, "60s", ()),
    "soak": (
        200,
        5.0,
        "70m",
        ("--shape", "soak", "--ramp-time", "5m", "--hold-time", "1h", "--session-mode", "keep"),
    ),
}
LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfiles" / "guest.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="ci", help="load preset")
    parser.add_argument("--host", default="", help="target (default: embedded simulator)")
    parser.add_argument("-u", "--users", type=int, help="override the profile's users")
    parser.add_argument("-r", "--spawn-rate", type=float, help="override the spawn rate")
    parser.add_argument("-t", "--run-time", help="override the run time (e.g. 30s, 5m)")
    parser.add_argument("--run-dir", type=Path, help="run directory (default reports/<time>-<id>)")
    parser.add_argument("--slo", action="append", default=[], metavar="GATE", help="SLO gate")
    parser.add_argument("--slo-file", type=Path, help="TOML file with SLO gates")
    parser.add_argument("--allow-remote-target", action="store_true", help="see locustfile")
    parser.add_argument(
        "locust_args", nargs=argparse.REMAINDER, help="after --: passed to locust unchanged"
    )


def locust_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """The ``locust --headless`` command line for a profile plus overrides."""
    users, rate, run_time, extra = PROFILES[args.profile]
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    cmd += ["-u", str(args.users or users), "-r", str(args.spawn_rate or rate)]
    cmd += ["-t", args.run_time or run_time, "--run-dir", str(run_dir), *extra]
    if args.host:
        cmd += ["--host", args.host]
    if args.allow_remote_target:
        cmd.append("--allow-remote-target")
    passthrough = [a for a in args.locust_args if a != "--"]
    return cmd + passthrough


def report_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "harness", "report", str(run_dir)]
    for gate in args.slo:
        cmd += ["--slo", gate]
    if args.slo_file:
        cmd += ["--slo-file", str(args.slo_file)]
    return cmd


def run(args: argparse.Namespace) -> int:
    from harness.record.runinfo import default_run_dir

    if not LOCUSTFILE.exists():
        print(f"harness run: error: {LOCUSTFILE} not found (run from a checkout)", file=sys.stderr)
        return 3
    run_dir: Path = args.run_dir or default_run_dir()
    load = subprocess.run(locust_command(args, run_dir), check=False)
    if load.returncode not in (0, 1):  # 1 = some requests failed: the report judges that
        print(f"harness run: error: locust exited with {load.returncode}", file=sys.stderr)
        return 3
    print(f"harness run: events in {run_dir}", file=sys.stderr)
    report = subprocess.run(report_command(args, run_dir), check=False)
    return report.returncode
