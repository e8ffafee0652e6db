"""``harness bench``: dispatch to one benchmark module per target."""

from __future__ import annotations

import argparse
import importlib

#: target -> (module, one-line help); each module has add_arguments(parser) and run(args).
BENCHES: dict[str, tuple[str, str]] = {
    "sim": ("harness.bench.sim", "simulator round trips/s vs a bare websockets echo server"),
    "client": ("harness.bench.client", "Locust client throughput, scale, recorder overhead"),
    "soak": ("harness.bench.soak", "RSS and open-fd drift of both sides over a long run"),
    "report": ("harness.bench.report", "harness report on 10 million synthetic events"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="TARGET", required=True)
    for name, (module_name, help_text) in BENCHES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        child = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(child)
        child.set_defaults(_bench_module=module)


def run(args: argparse.Namespace) -> int:
    code: int = args._bench_module.run(args)
    return code
