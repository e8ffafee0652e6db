"""protocol.md §8.4 item 26: idle timeout and max connection age close with 1001; the session
survives. (The defaults, 600 s and 7200 s, are checked in test_config.py.)
"""

from __future__ import annotations

import contextlib
import time

from websockets.exceptions import ConnectionClosed

from .conftest import Guest


def _keep_busy(guest: Guest, seconds: float, *, ping: bool) -> None:
    """Send a frame (or a ping) every 0.25 s for ``seconds``; each wait is bounded."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ping:
            assert guest.ws.ping().wait(2)
        else:
            guest.send({"action": "echo", "token": guest.token})
            assert guest.recv()["class"] == "StructuredMessage"
        guest.expect_silence(0.25)


def test_idle_timeout_closes_1001_and_data_resets_it(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--idle-timeout", "800ms")
    guest = guests(sim.url)
    guest.configure()
    _keep_busy(guest, 1.2, ping=False)  # longer than the timeout: data frames reset it
    started = time.monotonic()
    code, reason = guest.closed(timeout=3)
    assert (code, reason) == (1001, "idle timeout")
    assert time.monotonic() - started >= 0.5
    resumed = guests(sim.url)
    assert resumed.configure(guest.token)["body"]["newSession"] is False  # session survives


def test_pings_do_not_reset_idle_by_default(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--idle-timeout", "800ms")
    guest = guests(sim.url)
    guest.configure()
    started = time.monotonic()
    with contextlib.suppress(ConnectionClosed):  # the close interrupts the pings
        _keep_busy(guest, 3.0, ping=True)
    assert guest.closed(timeout=3) == (1001, "idle timeout")
    assert time.monotonic() - started < 2.5


def test_idle_counts_pings(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--idle-timeout", "800ms", "--idle-counts-pings")
    guest = guests(sim.url)
    guest.configure()
    _keep_busy(guest, 1.5, ping=True)
    guest.send({"action": "echo", "token": guest.token})
    assert guest.recv()["class"] == "StructuredMessage"  # still open
    assert guest.closed(timeout=3) == (1001, "idle timeout")


def test_max_connection_age(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--max-age", "1s", "--idle-timeout", "0")
    guest = guests(sim.url)
    guest.configure()
    started = time.monotonic()
    with contextlib.suppress(ConnectionClosed):
        _keep_busy(guest, 3.0, ping=False)  # activity does not help
    assert guest.closed(timeout=3) == (1001, "max connection age")
    assert 0.5 <= time.monotonic() - started < 2.5
    resumed = guests(sim.url)
    assert resumed.configure(guest.token)["body"]["newSession"] is False


def test_idle_timeout_zero_is_off(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--idle-timeout", "0", "--max-age", "0")
    guest = guests(sim.url)
    guest.configure()
    guest.expect_silence(1.0)
    guest.send({"action": "echo", "token": guest.token})
    assert guest.recv()["class"] == "StructuredMessage"
