"""Open-model arrivals: conversations start on a fixed schedule, whether or not earlier ones
have finished.

Each worker owns the slots ``t0 + k / rate`` (its share of ``--arrival-rate``). A free user
claims the next slot and waits for it; when every user is busy the slots fall behind, and the
connect step records the slot as its ``intended_ns``, so the report sees the queueing delay
instead of hiding it (coordinated omission).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ArrivalSchedule:
    """Hands out intended start times (epoch ns) at ``rate_per_s`` per second."""

    def __init__(self, rate_per_s: float, *, now_ns: Callable[[], int] = time.time_ns) -> None:
        if rate_per_s <= 0:
            raise ValueError("arrival rate must be > 0")
        self.interval_ns = round(1e9 / rate_per_s)
        self._now_ns = now_ns
        self._t0_ns = now_ns()
        self._next = 0

    def claim(self) -> int:
        """The next slot's intended start time; slots are claimed exactly once, in order."""
        slot = self._t0_ns + self._next * self.interval_ns
        self._next += 1
        return slot

    def delay_s(self, slot_ns: int) -> float:
        """Seconds to wait until ``slot_ns`` (0 when the slot is already late)."""
        return max(0.0, (slot_ns - self._now_ns()) / 1e9)

    @property
    def claimed(self) -> int:
        return self._next
