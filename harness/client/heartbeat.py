"""The heartbeat: an ``echo`` every interval on a hub timer (protocol.md §2.4, §9 pitfall 8).

A libev timer costs a few hundred bytes and no greenlet while idle, which matters at 20,000
sessions per worker; each tick spawns a short-lived greenlet for the echo round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent


class Heartbeat:
    """Calls ``beat`` in a fresh greenlet every ``interval_s`` while ``alive()`` holds."""

    __slots__ = ("_alive", "_beat", "_timer")

    def __init__(self, interval_s: float, beat: Callable[[], None], alive: Callable[[], bool]):
        self._beat = beat
        self._alive = alive
        self._timer: Any = gevent.get_hub().loop.timer(interval_s, interval_s)
        self._timer.start(self._tick)

    def _tick(self) -> None:  # runs in the hub: must not block
        if self._alive():
            gevent.spawn(self._beat)

    def stop(self) -> None:
        """Stop and release the timer (idempotent)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.close()
