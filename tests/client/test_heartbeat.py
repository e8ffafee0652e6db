"""The heartbeat timer: one beat at a time, and a client-side close lets a beat in flight end."""

from __future__ import annotations

import gevent
import gevent.event

from harness.client.heartbeat import Heartbeat


def test_stop_drains_the_beat_in_flight_and_beats_never_overlap() -> None:
    started, release = gevent.event.Event(), gevent.event.Event()
    calls: list[str] = []

    def beat() -> None:
        calls.append("start")
        started.set()
        release.wait(5)
        calls.append("end")

    hb = Heartbeat(0.01, beat, lambda: True)
    assert started.wait(5)
    gevent.sleep(0.1)  # ~10 more ticks while the first beat is blocked: none may start
    assert calls == ["start"]
    gevent.spawn_later(0.05, release.set)
    hb.stop(drain_s=5)
    assert calls == ["start", "end"]


def test_stop_without_drain_returns_at_once() -> None:
    started, release = gevent.event.Event(), gevent.event.Event()

    def beat() -> None:
        started.set()
        release.wait(5)

    hb = Heartbeat(0.01, beat, lambda: True)
    assert started.wait(5)
    hb.stop()
    assert not release.is_set()
    release.set()
