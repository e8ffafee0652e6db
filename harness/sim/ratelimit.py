"""Sliding-window rate limits (protocol.md §5: windows are sliding, refusals not counted)."""

from __future__ import annotations

import math
from collections import deque


class SlidingWindow:
    """At most ``limit`` admissions in any ``window_s`` seconds.

    Times are monotonic seconds supplied by the caller, so the window is testable and cheap.
    """

    __slots__ = ("_times", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def acquire(self, now: float) -> int:
        """Admit and count one request, or refuse it without counting.

        Returns:
            0 when admitted, else ``retryAfter``: the whole seconds until the oldest admission
            leaves the window, at least 1 (protocol.md §8.4 items 14 and 26).
        """
        times = self._times
        horizon = now - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            return 0
        return max(1, math.ceil(times[0] + self.window_s - now))

    def __len__(self) -> int:
        return len(self._times)


def make_window(limit: int | None, window_s: float) -> SlidingWindow | None:
    """A window for an enabled limit, ``None`` for a limit switched off."""
    return None if limit is None else SlidingWindow(limit, window_s)
