"""One exit-code scheme for every subcommand: a mistake (3) is never read as a verdict (0-2)."""

from __future__ import annotations

import pytest

from harness.cli import EXIT_FATAL, main


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-command"],
        ["report"],
        ["report", "RUN", "--no-such-flag"],
        ["sim", "--bot-latency", "sometimes"],
        ["probe", "--region", "mars-1", "--deployment-id", "x"],
    ],
)
def test_mistakes_exit_3_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        code = main(argv)
        raise SystemExit(code)
    assert exited.value.code == EXIT_FATAL
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "error" in err[-1]


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for name in ("sim", "run", "report", "compare", "probe", "bench"):
        assert name in out
