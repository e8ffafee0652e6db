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

    __slots__ = ("_alive", "_beat", "_inflight", "_timer")

    def __init__(self, interval_s: float, beat: Callable[[], None], alive: Callable[[], bool]):
        self._beat = beat
        self._alive = alive
        self._inflight: gevent.Greenlet[[], None] | None = None
        self._timer: Any = gevent.get_hub().loop.timer(interval_s, interval_s)
        self._timer.start(self._tick)

    def _tick(self) -> None:  # runs in the hub: must not block
        inflight = self._inflight
        if self._alive() and (inflight is None or inflight.dead):  # never two beats at once
            self._inflight = gevent.spawn(self._beat)

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop and release the timer (idempotent).

        ``drain_s`` > 0 lets an echo already on the wire finish first (bounded), so a close
        that we start ourselves never turns an answered heartbeat into a failure.
        """
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.close()
        inflight, self._inflight = self._inflight, None
        if inflight is not None and drain_s > 0 and gevent.getcurrent() is not inflight:
            inflight.join(drain_s)
