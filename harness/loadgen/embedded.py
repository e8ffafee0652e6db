"""The embedded simulator: ``locust -f locustfiles/guest.py`` with no ``--host`` just works.

It is a child process (``harness sim --port 0``), started from the init hook of the master or
local runner, so it accepts connections before the first user spawns; it is stopped when Locust
quits, and its closing ``SUMMARY {json}`` line goes into run.json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from harness.sim.launcher import SimProcess

logger = logging.getLogger(__name__)

SUMMARY_PREFIX = "SUMMARY "


def parse_summary(output: str) -> dict[str, Any] | None:
    """The JSON of the last ``SUMMARY {json}`` line, or None when there is none."""
    for line in reversed(output.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                value = json.loads(line[len(SUMMARY_PREFIX) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


class EmbeddedSimulator:
    """Start on construction; :meth:`stop` is idempotent and returns the summary."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self._proc = SimProcess(list(extra_args))
        self.url = self._proc.url
        self.summary: dict[str, Any] | None = None
        self._stopped = False
        logger.info("embedded simulator ready at %s", self.url)

    @property
    def host(self) -> str:
        """The value for Locust's ``host``: the URL without its ``/v1`` path."""
        return self.url.removesuffix("/v1")

    def stop(self) -> dict[str, Any] | None:
        if not self._stopped:
            self._stopped = True
            output = self._proc.stop()
            self.summary = parse_summary(output)
            if self.summary is None:
                logger.warning("embedded simulator printed no SUMMARY line")
        return self.summary
