"""The embedded simulator: ``locust -f locustfiles/guest.py`` with no ``--host`` just works.

It is a child process (``harness sim --port 0``), started from the init hook of the master or
local runner, so it accepts connections before the first user spawns; it is stopped when Locust
quits, and its closing ``SUMMARY {json}`` line goes into run.json.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from harness.sim.launcher import SimProcess
from harness.sim.stats import parse_summary

logger = logging.getLogger(__name__)


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
            stats = parse_summary(output)
            self.summary = stats.to_dict() if stats is not None else None
            if self.summary is None:
                logger.warning("embedded simulator printed no SUMMARY line")
        return self.summary
