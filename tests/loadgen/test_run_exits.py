"""``harness run``'s exit codes and one-line messages: a run that produced nothing fails (1),
mistakes are found before any load starts (3), a Locust refusal is reported once (Locust's own
line), the locustfile's arguments are ``harness run``'s own, and the smoke profile makes the
README's gates conclusive."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import EXIT_FATAL, build_parser, main, parse
from harness.loadgen import cli, config

from .conftest import ROOT, free_port
from .run_helpers import run_info, run_to_end

README_GATES = (
    "botReply.p95 < 800ms",
    "connections.success_rate >= 99.5%",
    "close_codes.1006 == 0",
)


def _harness_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("harness")]


def test_no_connection_succeeded_exits_1(tmp_path: Path) -> None:
    """Nothing listens on the port: every connect is refused; Locust exits 1, so do we."""
    host = f"ws://127.0.0.1:{free_port()}"
    args = ("--host", host, "-u", "2", "-r", "2", "-t", "3s", "--reply-timeout", "5s")
    run = run_to_end(tmp_path, *args)
    assert run.proc.returncode == 1, run.err_lines()[-10:]
    ours = _harness_lines(run.err_lines())
    assert len(ours) == 1 and "no connection succeeded" in ours[0] and "refused" in ours[0]
    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["connections"]["attempted"] > 0 == report["connections"]["succeeded"]
    assert run_info(run.run_dir)["options"]["reply_timeout"] == "5s"  # forwarded to Locust


@pytest.mark.parametrize(
    "args",
    [
        ["--slo", "x < banana"],
        ["--slo", "botReply.p95 < 800ms", "--slo", "nosuch.metric < 1"],
        ["--slo-file", "{tmp}/missing.toml"],
        ["--slo-file", "{tmp}/bad.toml"],
        ["--think-time", "banana"],
        ["--profile", "soak", "--hold-time", "forever"],
        ["--", "--session-mode", "sometimes"],
        ["-u", "0"],
        ["--no-record"],
        ["--host", "ws://example.com"],  # the safety rail, before Locust or any traffic
    ],
)
def test_mistakes_exit_3_before_any_load(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "bad.toml").write_text('gates = ["botReply.p95 <"]\n')
    argv = [a.format(tmp=tmp_path) for a in args]
    run = run_to_end(tmp_path, *argv, timeout_s=60)
    assert run.proc.returncode == EXIT_FATAL
    lines = run.err_lines()
    assert len(lines) == 1 and lines[0].startswith("harness run: error: "), lines
    assert not run.run_dir.exists(), "Locust was started"


@pytest.mark.parametrize("args", [["--", "--no-such-locust-flag"], ["-t", "banana"]])
def test_a_locust_refusal_is_its_own_line_only(tmp_path: Path, args: list[str]) -> None:
    run = run_to_end(tmp_path, *args, timeout_s=60)
    assert run.proc.returncode == EXIT_FATAL
    text = run.stderr.read_text()
    assert "error" in text and not _harness_lines(run.err_lines()), text
    assert not (run.run_dir / "report.json").exists()


def test_smoke_profile_makes_the_readme_gates_conclusive(tmp_path: Path) -> None:
    slo = [arg for gate in README_GATES for arg in ("--slo", gate)]
    run = run_to_end(tmp_path, "--profile", "smoke", *slo, timeout_s=180)
    report = json.loads((run.run_dir / "report.json").read_text())
    results = {gate["name"]: (gate["verdict"], gate["samples"]) for gate in report["slo"]}
    assert run.proc.returncode == 0, (results, run.err_lines()[-5:])
    assert {name: verdict for name, (verdict, _) in results.items()} == dict.fromkeys(
        README_GATES, "pass"
    )


# --- the command line, in-process (no load) ----------------------------------------------------


def _run_args(*argv: str) -> argparse.Namespace:
    return parse(build_parser(), ["run", *argv])


@pytest.mark.parametrize(
    ("argv", "usage", "named"),
    [
        (["run", "--bogus"], "usage: harness run", "--bogus"),
        (["--bogus"], "usage: harness", "--bogus"),
    ],
)
def test_unknown_flag_is_named_with_its_commands_usage(
    argv: list[str], usage: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_FATAL
    err = capsys.readouterr().err
    assert err.startswith(usage) and named in err.strip().splitlines()[-1]


def test_every_locustfile_argument_is_a_harness_run_argument(tmp_path: Path) -> None:
    """One definition (config.add_arguments): each option, given to ``harness run``, reaches
    the Locust command line exactly as typed, after the profile's own."""
    reference = argparse.ArgumentParser(add_help=False)
    config.add_arguments(reference)
    for action in reference._actions:
        option = max(action.option_strings, key=len)
        typed = [option] if action.nargs == 0 else [option, str(action.default)]
        args = _run_args("--profile", "soak", *typed)
        cmd = cli.locust_command(args, tmp_path)
        if option == "--run-dir":
            assert cmd[cmd.index("--run-dir") + 1] == str(tmp_path)
            continue
        at = [i for i, token in enumerate(cmd) if token == option]
        assert at and cmd[at[-1] : at[-1] + len(typed)] == typed, (option, cmd)


def test_user_values_come_after_the_profiles(tmp_path: Path) -> None:
    args = _run_args("--profile", "soak", "--session-mode", "close", "--think-time", "1s")
    cmd = cli.locust_command(args, tmp_path)
    modes = [cmd[i + 1] for i, token in enumerate(cmd) if token == "--session-mode"]
    assert modes == ["keep", "close"]  # argparse keeps the last one: the user's
    options = cli.locustfile_options(args)
    assert (options.session_mode, options.think_time, options.shape) == ("close", "1s", "soak")


def test_harness_run_imports_neither_locust_nor_gevent(tmp_path: Path) -> None:
    code = f"""
import sys
from harness.cli import build_parser, parse
from harness.loadgen import cli
args = parse(build_parser(), ["run", "--think-time", "1s", "--slo", "botReply.p95 < 1s"])
cli.check_before_load(args)
cli.locust_command(args, __import__("pathlib").Path({str(tmp_path)!r}))
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("locust", "gevent"))
assert not bad, bad
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("report", "why"),
    [
        ({"connections": {"attempted": 0, "succeeded": 0}}, "no connection was attempted"),
        (
            {
                "connections": {
                    "attempted": 5,
                    "succeeded": 0,
                    "failures_by_reason": {"http_403": 5},
                }
            },
            "no connection succeeded (0 of 5: http_403 5)",
        ),
        (
            {
                "connections": {"attempted": 3, "succeeded": 3},
                "steps": {"connect": {"count": 3}, "configureSession": {"count": 0}},
            },
            "no step produced a sample",
        ),
        (
            {
                "connections": {"attempted": 3, "succeeded": 1},
                "steps": {"connect": {"count": 1}, "configureSession": {"count": 1}},
            },
            None,
        ),
    ],
)
def test_run_failure(report: dict[str, object], why: str | None) -> None:
    found = cli.run_failure(report)
    assert (found is None) if why is None else (found is not None and found.startswith(why))


@pytest.mark.parametrize(
    ("code", "ended", "why"),
    [
        (0, "2026-01-01T00:00:00Z", None),
        (1, "2026-01-01T00:00:00Z", None),  # requests failed: the report judges that
        (2, "2026-01-01T00:00:00Z", "locust exited with 2"),
        (-9, "2026-01-01T00:00:00Z", "locust was killed by SIGKILL"),
        (0, None, "locust did not finish the run"),
    ],
)
def test_locust_failure(code: int, ended: str | None, why: str | None) -> None:
    found = cli.locust_failure(code, {"ended": ended})
    assert (found is None) if why is None else (found is not None and found.startswith(why))
