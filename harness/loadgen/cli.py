"""``harness run``: a headless Locust run, then ``harness report`` with SLO gates, one command.

With no ``--host`` the embedded simulator is used (loopback). Locust runs as a child process:
it monkey-patches at import, which must not happen in the ``harness`` process (this module and
``harness.loadgen.config`` import neither locust nor gevent).

Exit codes:
- 0 / 1 / 2: the report's verdict on the gates (pass, a gate failed, inconclusive only);
- 1 also when the run itself failed, gates or not: Locust crashed or did not finish, no
  connection succeeded, or no step produced a sample (one line says which);
- 3: a bad flag, gate, gate file or option, or a refused target, found before any load starts;
  or Locust refused to start (its own line says why);
- 128 + N when stopped by a signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP): Locust stops its users
  and flushes every event, and the report covers what ran.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from harness.childproc import StopSignals, exit_code_for
from harness.errors import UsageError
from harness.loadgen import config

#: users, spawn rate, run time, extra locust arguments
PROFILES: dict[str, tuple[int, float, str, tuple[str, ...]]] = {
    # short conversations: enough connections and turns in 15 s for the README's gates
    "smoke": (20, 10.0, "15s", ("--think-time", "1s,2s", "--messages-per-session", "3")),
    "ci": (50, 10.0, "60s", ()),
    "soak": (
        200,
        5.0,
        "70m",
        ("--shape", "soak", "--ramp-time", "5m", "--hold-time", "1h", "--session-mode", "keep"),
    ),
    # -u is the peak; each level adds 20 users for 60 s until a --slo gate fails or the
    # generator saturates (harness.loadgen.capacity); -t only bounds it
    "capacity": (
        1000,
        100.0,
        "2h",
        (
            *("--shape", "capacity", "--step-users", "20", "--step-time", "60s"),
            *("--session-mode", "keep", "--messages-per-session", "100000"),
        ),
    ),
}
LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfiles" / "guest.py"
FATAL_EXIT = 3
RUN_FAILED_EXIT = 1


class _Forwarded:
    """Receives the locustfile's own ``add_arguments`` (one definition, never a copy) and
    registers each option without a default: only what the user typed is forwarded."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.options: list[tuple[str, str, bool]] = []  # dest, option string, is a flag

    def add_argument(self, *names: str, **kwargs: Any) -> Any:
        kwargs["default"] = argparse.SUPPRESS
        action = self.group.add_argument(*names, **kwargs)
        self.options.append((action.dest, max(names, key=len), action.nargs == 0))
        return action


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "%(prog)s [--profile {capacity,ci,smoke,soak}] [--host URL] [-u N] [-r RATE] [-t TIME]\n"
        "       [--slo GATE]... [--slo-file FILE] [LOCUSTFILE ARGUMENTS] [-- LOCUST ARGUMENTS]"
    )
    presets = ", ".join(f"{name} ({p[0]} users, {p[2]})" for name, p in PROFILES.items())
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="ci", help=f"load preset: {presets}"
    )
    parser.add_argument("--host", default="", help="target (default: embedded simulator)")
    parser.add_argument("-u", "--users", type=int, help="override the profile's users")
    parser.add_argument("-r", "--spawn-rate", type=float, help="override the spawn rate")
    parser.add_argument("-t", "--run-time", help="override the run time (e.g. 30s, 5m)")
    parser.add_argument("--slo", action="append", default=[], metavar="GATE", help="SLO gate")
    parser.add_argument("--slo-file", type=Path, help="TOML file with SLO gates")
    group = parser.add_argument_group(
        "locustfile arguments", "passed on to locustfiles/guest.py (see the README)"
    )
    forwarded = _Forwarded(group)
    config.add_arguments(forwarded)
    parser.set_defaults(locustfile_options=tuple(forwarded.options))
    parser.add_argument(
        "locust_args",
        nargs=argparse.REMAINDER,
        metavar="-- LOCUST ARGUMENTS",
        help="after --: passed to locust unchanged (e.g. -- --processes 2)",
    )


def _passthrough(args: argparse.Namespace) -> list[str]:
    extra = list(args.locust_args)
    return extra[1:] if extra[:1] == ["--"] else extra


def _locustfile_tokens(args: argparse.Namespace) -> list[str]:
    """The locustfile arguments the user gave, as command-line tokens (run dir excluded)."""
    tokens: list[str] = []
    for dest, option, is_flag in args.locustfile_options:
        if dest == "run_dir" or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        tokens += [option] if is_flag else [option, str(value)]
    return tokens


def locust_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    """The ``locust --headless`` command line for a profile plus overrides."""
    users, rate, run_time, extra = PROFILES[args.profile]
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary"]
    cmd += ["-u", str(args.users if args.users is not None else users)]
    cmd += ["-r", str(args.spawn_rate or rate), "-t", args.run_time or run_time]
    cmd += ["--run-dir", str(run_dir), *extra, *_locustfile_tokens(args)]
    if args.host:
        cmd += ["--host", args.host]
    for gate in args.slo:  # the capacity shape judges every level by the same gates
        cmd += ["--slo", gate]
    if args.slo_file:
        cmd += ["--slo-file", str(args.slo_file)]
    return cmd + _passthrough(args)


def report_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "harness", "report", str(run_dir)]
    for gate in args.slo:
        cmd += ["--slo", gate]
    if args.slo_file:
        cmd += ["--slo-file", str(args.slo_file)]
    return cmd


class _Strict(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def locustfile_options(args: argparse.Namespace) -> argparse.Namespace:
    """Every locustfile option as Locust will see it: defaults, profile, the user's own.

    Raises:
        UsageError: a value Locust's parser would refuse.
    """
    parser = _Strict(prog="harness run", add_help=False, allow_abbrev=False)
    config.add_arguments(parser)
    tokens = [*PROFILES[args.profile][3], *_locustfile_tokens(args), *_passthrough(args)]
    options, _ = parser.parse_known_args(tokens)  # Locust's own arguments are Locust's to check
    users, rate, _, _ = PROFILES[args.profile]
    options.num_users = args.users if args.users is not None else users
    options.spawn_rate = args.spawn_rate or rate
    return options


def check_before_load(args: argparse.Namespace) -> None:
    """Everything that can be wrong with the command line, found before any load starts:
    the gates and gate file (the report's own parser), the locustfile options (its own
    validation), the target (its safety rail).

    Raises:
        UsageError: one line saying what is wrong.
    """
    from harness.loadgen.safety import check_target
    from harness.report.slo import load_slo_file, parse_gate

    if args.locust_args and args.locust_args[0] != "--":
        raise UsageError(f"unexpected argument {args.locust_args[0]!r} (Locust's own go after --)")
    for text in args.slo:
        parse_gate(text)
    if args.slo_file is not None:
        load_slo_file(args.slo_file)
    if args.users is not None and args.users < 1:
        raise UsageError(f"-u/--users must be >= 1: {args.users}")
    if args.spawn_rate is not None and not args.spawn_rate > 0:
        raise UsageError(f"-r/--spawn-rate must be > 0: {args.spawn_rate:g}")
    loaded = config.load_config(locustfile_options(args))
    if not loaded.record:
        raise UsageError("--no-record: harness run reports on the raw events it records")
    if args.host:
        check_target(
            args.host,
            loaded.flow,
            allow_remote=loaded.allow_remote,
            conn_rate_override=loaded.conn_rate_override,
            workers=1,
        )


def run_failure(report: Mapping[str, Any]) -> str | None:
    """Why a run that ended failed whatever its gates say; None when it really ran."""
    conns = report.get("connections") or {}
    attempted, succeeded = int(conns.get("attempted") or 0), int(conns.get("succeeded") or 0)
    if attempted == 0:
        return "no connection was attempted"
    if succeeded == 0:
        reasons = sorted((conns.get("failures_by_reason") or {}).items(), key=lambda kv: -kv[1])
        why = ", ".join(f"{reason} {n}" for reason, n in reasons)
        return f"no connection succeeded (0 of {attempted}{': ' + why if why else ''})"
    steps = report.get("steps") or {}
    if not any(int(st.get("count") or 0) for name, st in steps.items() if name != "connect"):
        return f"no step produced a sample ({succeeded} connections, no successful step after)"
    return None


def locust_failure(code: int, info: Mapping[str, Any]) -> str | None:
    """Locust's exit 1 means "some requests failed": that is the report's to judge."""
    if code < 0:
        return f"locust was killed by {signal.Signals(-code).name}"
    if code not in (0, 1):
        return f"locust exited with {code} (see its log above)"
    if not info.get("ended"):
        return "locust did not finish the run (run.json has no end time)"
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _say(text: str) -> None:
    print(f"harness run: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from harness.record.runinfo import default_run_dir

    if not LOCUSTFILE.exists():
        raise UsageError(f"{LOCUSTFILE} not found (run from a checkout)")
    check_before_load(args)
    run_dir = Path(getattr(args, "run_dir", "") or default_run_dir())
    with StopSignals() as stops:
        code = stops.run(locust_command(args, run_dir), death_signal=signal.SIGINT)
        return _after_load(args, run_dir, code, stops)


def _after_load(args: argparse.Namespace, run_dir: Path, code: int, stops: StopSignals) -> int:
    from harness.record.schema import EVENTS_DIR, RUN_JSON

    stopped = stops.received
    info = _read_json(run_dir / RUN_JSON)
    if info is None:  # Locust never started the run
        if stopped is not None:
            _say(f"stopped by {stopped.name} before the load started")
            return exit_code_for(stopped)
        if code < 0:
            _say(f"error: locust was killed by {signal.Signals(-code).name} before the run")
        elif code == 0:
            _say(f"error: locust wrote no {RUN_JSON} in {run_dir}")
        return FATAL_EXIT  # otherwise Locust has printed why it refused
    failure = locust_failure(code, info)
    if not any((run_dir / EVENTS_DIR).glob("*.parquet")):
        if stopped is not None:
            _say(f"stopped by {stopped.name} before any event was recorded ({run_dir})")
            return exit_code_for(stopped)
        _say(f"failed: no events recorded in {run_dir}{f'; {failure}' if failure else ''}")
        return RUN_FAILED_EXIT
    verdict = stops.run(report_command(args, run_dir), death_signal=signal.SIGTERM, new_group=True)
    if stopped is not None:
        note = f" ({failure})" if failure else ""
        _say(f"stopped by {stopped.name}: the report covers what ran, in {run_dir}{note}")
        return exit_code_for(stopped)
    if stops.received is not None:
        _say(f"stopped by {stops.received.name} while writing the report; events in {run_dir}")
        return exit_code_for(stops.received)
    if failure is None and verdict != FATAL_EXIT:  # FATAL: the report has said why
        failure = run_failure(_read_json(run_dir / "report.json") or {})
    if failure:
        _say(f"failed: {failure}")
        return RUN_FAILED_EXIT
    return verdict
