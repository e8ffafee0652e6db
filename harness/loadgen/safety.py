"""The safety rail: loopback by default, and pacing within the documented limits otherwise.

Load goes to a non-loopback host only when the user opts in with ``--allow-remote-target``;
then new connections pass a token bucket (1000/min per deployment, protocol.md §5, split across
workers), each session sends at most 5 onMessage per second and 60 requests per minute, and
heartbeats are at least 30 s apart. The pacers take a clock and a sleep function so they are
tested without gevent and without sleeping.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.errors import UsageError
from harness.loadgen.config import FlowConfig
from harness.protocol import limits

#: Requests per minute a conversation may send itself; two are left for heartbeats.
REQ_BUDGET_PER_MINUTE = limits.REQ_RATE_PER_CONNECTION - limits.ECHO_RATE_PER_CONNECTION


def target_hostname(host: str) -> str:
    """The host name of a Locust ``--host`` value (``ws://h:1/v1`` → ``h``).

    Raises:
        UsageError: the value has no host name.
    """
    text = host.strip()
    if "://" not in text:
        text = "ws://" + text
    name = urlsplit(text).hostname
    if not name:
        raise UsageError(f"--host has no host name: {host!r}")
    return name


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (the only traffic allowed without opt-in)."""
    name = target_hostname(host)
    if name.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Whether a host may be loaded, and the pacing that applies to it."""

    remote: bool
    conn_per_minute: float | None  # per worker process; None = unpaced
    msg_per_second: int | None
    req_per_minute: int | None

    def banner(self, host: str, workers: int) -> str:
        """The line printed at start so nobody is surprised by where the load goes."""
        if not self.remote:
            return f"target {host} is loopback: no pacing (the simulator enforces the limits)"
        total = (self.conn_per_minute or 0) * workers
        return (
            f"REMOTE TARGET {host}: new connections <= {total:g}/min in total "
            f"({self.conn_per_minute:g}/min in each of {workers} worker(s)), onMessage <= "
            f"{self.msg_per_second}/s per session, requests <= {self.req_per_minute}/min per "
            f"connection, heartbeat >= {limits.MIN_HEARTBEAT_INTERVAL_S:g} s"
        )


def check_target(
    host: str, flow: FlowConfig, *, allow_remote: bool, conn_rate_override: int, workers: int
) -> TargetPolicy:
    """Refuse a non-loopback host without opt-in; otherwise return the pacing policy.

    Raises:
        UsageError: a remote host without ``--allow-remote-target``, or settings that would
            exceed the documented limits against it.
    """
    if is_loopback(host):
        return TargetPolicy(False, None, None, None)
    if not allow_remote:
        raise UsageError(
            f"refusing to load non-loopback host {target_hostname(host)!r}: "
            "pass --allow-remote-target to opt in (load is then paced within the limits in "
            "docs/guest-api.md#limits)"
        )
    if flow.deployment_id.startswith("00000000-"):
        raise UsageError("--deployment-id is required for a remote target")
    hb = flow.heartbeat_interval_s
    if 0 < hb < limits.MIN_HEARTBEAT_INTERVAL_S:
        raise UsageError(
            f"--heartbeat-interval {hb:g}s exceeds the echo limit (2/min): use >= 30s or 0"
        )
    per_minute = conn_rate_override or limits.CONN_RATE_PER_DEPLOYMENT
    return TargetPolicy(
        True,
        per_minute / max(1, workers),
        limits.MSG_RATE_PER_SESSION,
        REQ_BUDGET_PER_MINUTE,
    )


class TokenBucket:
    """New-connection pacing: ``rate_per_s`` tokens per second, burst of one second's worth."""

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise UsageError("connection rate must be > 0")
        self.rate = rate_per_s
        self.capacity = max(1.0, rate_per_s)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds waited."""
        waited = 0.0
        while True:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return waited
            pause = (1.0 - self._tokens) / self.rate
            self._sleep(pause)
            waited += pause


class SlidingWindow:
    """At most ``limit`` events in any ``window_s`` (the simulator's window shape, §5)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> float:
        """Wait until one more event fits in the window, record it, return the seconds waited."""
        waited = 0.0
        while True:
            now = self._clock()
            while self._times and self._times[0] <= now - self.window_s:
                self._times.popleft()
            if len(self._times) < self.limit:
                self._times.append(now)
                return waited
            pause = self._times[0] + self.window_s - now
            self._sleep(pause)
            waited += pause
