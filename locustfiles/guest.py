"""Guest chat load test: ``locust -f locustfiles/guest.py`` (web UI) or add ``--headless``.

With no ``--host`` an embedded local simulator is started, so this works with zero setup.
Everything lives in harness.loadgen; this file only picks the user class and the shape and
hooks the harness into Locust's events (nothing runs at import beyond defining them).
"""

from __future__ import annotations

import sys
from typing import Any

from locust import events

from harness.errors import UsageError
from harness.loadgen.capacity import add_arguments as add_capacity_arguments
from harness.loadgen.config import add_arguments
from harness.loadgen.plugin import install
from harness.loadgen.shapes import HarnessShape
from harness.loadgen.user import GuestUser

__all__ = ["GuestUser", "HarnessShape"]


@events.init_command_line_parser.add_listener
def _arguments(parser: Any, **_: Any) -> None:
    add_arguments(parser)
    add_capacity_arguments(parser)


@events.init.add_listener
def _install(environment: Any, **_: Any) -> None:
    try:
        install(environment)
    except UsageError as exc:  # one line, exit 3 (usage or fatal), as every harness command
        print(f"locust: error: {exc}", file=sys.stderr)
        sys.exit(3)
