"""The ``harness`` console script: one subcommand per job, each owned by its package.

Exit codes are the same for every subcommand, so CI can tell a verdict from a mistake:
0 ok / every gate passed, 1 a check failed (a gate, a regression, a probe step, a run that
produced nothing), 2 inconclusive gates only, 3 usage or fatal error (bad flag, unreadable run,
unreachable host), 130 Ctrl-C (``harness run``: 128 + the signal, so 143 for SIGTERM).

Each subcommand lives in a module with ``add_arguments(parser)`` and ``run(args) -> int``.
Those modules keep heavy imports (pandas, gevent, websockets) inside ``run`` so that
``harness --help`` and a typo stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from harness import __version__
from harness.errors import HarnessError

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("harness.sim.cli", "run the local Guest API simulator"),
    "run": ("harness.loadgen.cli", "headless Locust run + report + SLO gates in one command"),
    "report": ("harness.report.cli", "turn a run directory into report.json/md/html"),
    "compare": ("harness.report.compare_cli", "compare two runs with confidence intervals"),
    "probe": ("harness.loadgen.probe", "one guest, one turn: explain each step (silent 1006s)"),
    "bench": ("harness.bench.cli", "benchmarks (sim, client, report)"),
}


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not written yet; any other missing module is a bug
            return None
        raise


#: Usage or fatal error; 2 is taken by "inconclusive" (``harness report``).
EXIT_FATAL = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a bad flag; here 2 means "inconclusive", so a bad flag exits 3."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FATAL, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Load and soak testing for Genesys Cloud Web Messaging guest chat.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # not required=True: argparse would then report a missing COMMAND before an unknown flag
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        child = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(child)
        child.set_defaults(_module=module, _parser=child)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, naming an unknown flag with the usage of the (sub)command it was given to."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(tokens)
    if unknown:
        at = tokens.index(args.command) if args.command in tokens else len(tokens)
        before_command = any(token in tokens[:at] for token in unknown)
        owner = parser if before_command else getattr(args, "_parser", parser)
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("the following arguments are required: COMMAND")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit codes are in the module docstring."""
    parser = build_parser()
    args = parse(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args._module.run(args)
    except HarnessError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
