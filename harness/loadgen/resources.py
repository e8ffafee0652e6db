"""What one generator process can hold: open files and local ports, raised and checked at start.

Each guest holds one socket, so a process's open-files limit caps its users. Locust raises
the soft limit to 10,000 at most; the harness raises it to the hard limit (the most a process
may set itself) so a worker can hold 50k sessions where the machine allows it. What stays
below the plan is said once, at start, in the banner, not found out as ``EMFILE`` failures an
hour in.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from harness.client.sources import local_port_range, ports_per_address

#: Files a process needs besides its users' sockets: Locust, the recorder, logs, the web UI.
RESERVED_FILES: Final = 200


@dataclass(frozen=True, slots=True)
class OpenFiles:
    """The soft limit before and after raising it, and the hard limit."""

    before: int
    soft: int
    hard: int

    def describe(self) -> str:
        if self.soft == self.before:
            return f"open files: limit {self.soft} (hard {_limit(self.hard)})"
        return f"open files: soft limit raised {self.before} -> {self.soft} (the hard limit)"


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def raise_open_files() -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard one (never lowers it; a refusal is kept)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return OpenFiles(soft, soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # e.g. above fs.nr_open: keep what we have
        return OpenFiles(soft, soft, hard)
    return OpenFiles(soft, target, hard)


def capacity_warnings(
    planned_users: int, files: OpenFiles, sources: Sequence[str] = ()
) -> list[str]:
    """Why this process cannot hold ``planned_users`` connections, one line per limit."""
    lines: list[str] = []
    usable = files.soft - RESERVED_FILES
    if files.soft != resource.RLIM_INFINITY and planned_users > usable:
        lines.append(
            f"this process is planned to hold {planned_users} connections but may open "
            f"{files.soft} files (hard limit {_limit(files.hard)}): users beyond ~{usable} will "
            "fail with 'Too many open files'; raise the hard limit (ulimit -Hn, systemd "
            "LimitNOFILE=, docker --ulimit nofile=N:N) or add workers (docs/scaling.md)"
        )
    ports = ports_per_address(local_port_range())
    addresses = max(1, len(sources))
    if ports is not None and planned_users > ports * addresses:
        needed = math.ceil(planned_users / ports)
        lines.append(
            f"local ports are the limit: {planned_users} connections to one host:port need "
            f"{needed} source addresses ({ports} ephemeral ports each), this process has "
            f"{addresses}: use --source-addresses (e.g. 127.0.0.2-127.0.0.{needed + 1} on "
            "loopback; docs/scaling.md#local-ports)"
        )
    return lines
