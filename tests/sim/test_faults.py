"""protocol.md §8.1 items 2-3 and §8.4 item 27: fault injection, deterministic under --seed."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness.sim.launcher import SimProcess

from .conftest import open_guest

FAST = ["--no-limits", "--bot-latency", "0", "--quick-replies", "0"]


def test_fault_close_after_n_replies(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-close", "every:1", "--fault-close-code", "4001",
                    "--fault-after", "2")  # fmt: skip
    guest = guests(sim.url)
    guest.configure()
    other = guests(sim.url)
    other.configure(guest.token)
    guest.say("one")
    other.recv_many(2)
    guest.say("two")
    for sock in (guest, other):
        assert sock.closed() == (4001, "injected fault")
    resumed = guests(sim.url)
    assert resumed.configure(guest.token)["body"]["newSession"] is False  # session survives
    resumed.say("three")  # not faulted again
    resumed.expect_silence(0.2)


def test_fault_drop_gives_1006(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-drop", "every:1")
    guest = guests(sim.url)
    guest.configure()
    guest.say("one")
    assert guest.closed() == (1006, None)  # no close frame at all


def test_drop_beats_close(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-drop", "every:1", "--fault-close", "every:1")
    guest = guests(sim.url)
    guest.configure()
    guest.say("one")
    assert guest.closed()[0] == 1006


def test_fault_close_every_second_session(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-close", "every:2")
    first, second = guests(sim.url), guests(sim.url)
    first.configure()
    second.configure()
    first.say("a")
    second.say("b")
    assert second.closed()[0] == 1011  # the default code
    first.say("still fine")


def _session_faults(sim: SimProcess, guests, n: int) -> list[bool]:
    """Which of ``n`` sessions (created in order) are closed after their first reply."""
    closed = []
    for _ in range(n):
        guest = guests(sim.url)
        guest.configure()
        guest.say("x")
        try:
            guest.send({"action": "echo", "token": guest.token})
            guest.recv(timeout=2)
            closed.append(False)
        except ConnectionClosed:  # closed by the fault
            closed.append(True)
    return closed


def test_fraction_picks_are_deterministic_under_seed(start_sim, guests) -> None:
    args = (*FAST, "--fault-drop", "0.5", "--seed", "42")
    first = _session_faults(start_sim(*args), guests, 12)
    second = _session_faults(start_sim(*args), guests, 12)
    assert first == second and any(first) and not all(first)


def _upgrade_pattern(url: str, n: int) -> list[int]:
    statuses = []
    for _ in range(n):
        try:
            guest = open_guest(url)
        except InvalidStatus as exc:
            statuses.append(exc.response.status_code)
        else:
            guest.ws.close()
            statuses.append(101)
    return statuses


def test_fault_reject_every_n(start_sim) -> None:
    sim = start_sim("--fault-reject", "every:2", "--fault-reject-status", "403")
    assert _upgrade_pattern(sim.url, 4) == [101, 403, 101, 403]


def test_fault_reject_fraction_is_deterministic(start_sim) -> None:
    args = ("--fault-reject", "0.5", "--seed", "7")
    first = _upgrade_pattern(start_sim(*args).url, 12)
    second = _upgrade_pattern(start_sim(*args).url, 12)
    assert first == second and set(first) == {101, 503}


def test_fault_slow_upgrade(start_sim) -> None:
    sim = start_sim("--fault-slow-upgrade", "every:1", "--fault-slow-delay", "400ms")
    started = time.monotonic()
    guest = open_guest(sim.url)
    assert time.monotonic() - started >= 0.35
    assert guest.configure()["class"] == "SessionResponse"
    guest.ws.close()


def test_fault_reorder_swaps_echo_and_reply(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-reorder", "every:2", "--bot-latency", "20ms")
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("one")
    first = guest.recv_many(2)
    assert [f["body"]["direction"] for f in first] == ["Inbound", "Outbound"]
    guest.on_message("two")  # the 2nd turn is picked: the echo is held back
    second = guest.recv_many(2)
    assert [f["body"]["direction"] for f in second] == ["Outbound", "Inbound"]
    reply_time, echo_time = (f["body"]["channel"]["time"] for f in second)
    assert echo_time < reply_time  # frames keep their channel.time: time runs backwards


@pytest.mark.parametrize("switch", ["--fault-close", "--fault-reject", "--fault-reorder"])
def test_bad_share_is_a_usage_error(switch: str) -> None:
    from harness.errors import UsageError

    with pytest.raises(UsageError):
        SimProcess([switch, "every:0"], ready_timeout_s=20)


def test_fault_reorder_with_two_replies_holds_the_first_reply(start_sim, guests) -> None:
    sim = start_sim(*FAST, "--fault-reorder", "every:1", "--bot-replies", "2",
                    "--bot-latency", "20ms")  # fmt: skip
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("hi")
    frames = guest.recv_many(3)
    directions = [f["body"]["direction"] for f in frames]
    assert directions == ["Inbound", "Outbound", "Outbound"]
    first_written, held = frames[1]["body"], frames[2]["body"]
    assert held["channel"]["time"] < first_written["channel"]["time"]  # written later, older
