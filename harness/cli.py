"""The ``harness`` console script: one subcommand per job, each owned by its package.

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Load and soak testing for Genesys Cloud Web Messaging guest chat.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        child = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(child)
        child.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Exit codes: 0 ok, 1 a check failed, 2 usage or fatal error, 130 Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args._module.run(args)
    except HarnessError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
