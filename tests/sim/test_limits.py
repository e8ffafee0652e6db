"""protocol.md §5 and §8.4 items 10, 14, 26: every limit is on by default, settable, and off
with ``--no-limits`` or ``--limit NAME=off``; over-limit answers are exactly as documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from harness.sim.launcher import SimProcess

from .conftest import DEPLOYMENT, Guest, open_guest

SMALL = [
    "--bot-latency", "0",
    "--quick-replies", "0",
    "--limit", "msg-rate=2",
    "--limit", "echo-rate=2",
    "--limit", "configure-rate=3",
    "--limit", "text-bytes=10",
    "--limit", "attr-bytes=20",
    "--limit", "sockets=2",
    "--limit", "req-rate=off",
]  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(SMALL) as proc:
        yield proc


def assert_429(frame: dict[str, Any], tracing_id: str | None, retry: int | None = None) -> int:
    assert frame["type"] == "response" and frame["class"] == "TooManyRequestsErrorMessage"
    assert frame["code"] == 429 and frame.get("tracingId") == tracing_id
    body = frame["body"]
    assert body["errorCode"] == 4029 and isinstance(body["retryAfter"], int)
    assert body["retryAfter"] >= 1
    if retry is not None:
        assert body["retryAfter"] == retry
    return int(body["retryAfter"])


def echo(guest: Guest, tracing_id: str) -> dict[str, Any]:
    guest.send({"action": "echo", "token": guest.token, "tracingId": tracing_id})
    return guest.recv()


def test_msg_rate_per_session(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    other = guests(sim.url)
    other.configure(guest.token)  # the limit is per session, not per socket
    guest.on_message("one")
    other.on_message("two")
    for sock in (guest, other):
        sock.recv_many(4)
    tracing_id = guest.on_message("three")
    frame = guest.recv()
    assert_429(frame, tracing_id, retry=1)
    assert frame["body"]["errorMessage"] == "Message rate too high for this session"
    other.expect_silence(0.1)  # refused: not echoed anywhere
    # refusals are not counted: once the window slides, messages pass again
    guest.expect_silence(1.05)
    guest.say("four")


def test_msg_rate_comes_before_read_only(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    disconnect = {"eventType": "Presence", "presence": {"type": "Disconnect"}}
    guest.on_message(message={"type": "Event", "events": [disconnect]})  # 1st message
    guest.recv_many(2)  # echo + the ReadOnly disconnect
    guest.on_message("read only?")  # 2nd: reaches the rate check, counted, then 409
    assert guest.recv()["code"] == 409
    tracing_id = guest.on_message("third")
    assert_429(guest.recv(), tracing_id, retry=1)


def test_echo_rate_per_connection(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    assert echo(guest, "e1")["class"] == "StructuredMessage"
    assert echo(guest, "e2")["class"] == "StructuredMessage"
    retry = assert_429(echo(guest, "e3"), "e3")
    assert 55 <= retry <= 60  # whole seconds until the oldest echo leaves the 60 s window
    # echoes count toward neither msg-rate nor another connection's echo budget
    guest.say("ok")
    other = guests(sim.url)
    other.configure(guest.token)
    assert echo(other, "e4")["class"] == "StructuredMessage"


def test_configure_rate_per_session(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    for _ in range(3):
        assert guest.configure(guest.token)["class"] == "SessionResponse"
    frame = guest.configure(guest.token, tracingId="c4")
    assert_429(frame, "c4")


def test_text_bytes_limit(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.say("0123456789")  # exactly the limit passes
    guest.expect_silence(1.05)  # stay under msg-rate
    tracing_id = guest.on_message("0123456789a")
    frame = guest.recv()
    assert frame["code"] == 4011 and frame["tracingId"] == tracing_id
    assert frame["body"] == "Message length 11 is larger than 10"


def test_attr_bytes_limit(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    channel = {"metadata": {"customAttributes": {"k": "x" * 20}}}
    tracing_id = guest.on_message(message={"type": "Text", "text": "hi", "channel": channel})
    frame = guest.recv()
    assert frame["code"] == 4013 and frame["tracingId"] == tracing_id
    assert frame["body"] == "Custom Attributes in channel metadata is larger than 20 bytes"


def test_sockets_limit(sim: SimProcess, guests) -> None:
    first, second, third = (guests(sim.url) for _ in range(3))
    first.configure()
    second.configure(first.token)
    third.configure(first.token)
    assert first.recv()["class"] == "ConnectionClosedEvent"
    assert first.closed()[0] == 1000
    second.expect_silence(0.1)


def test_req_rate_per_connection(start_sim, guests) -> None:
    sim = start_sim("--limit", "req-rate=3", "--bot-latency", "0")
    guest = guests(sim.url)
    guest.configure()  # 1
    guest.send({"action": "getJwt", "token": guest.token})  # 2
    assert guest.recv()["class"] == "JwtResponse"
    guest.send({"action": "getJwt", "token": guest.token})  # 3
    assert guest.recv()["class"] == "JwtResponse"
    guest.send({"action": "getJwt", "token": guest.token, "tracingId": "r4"})
    retry = assert_429(guest.recv(), "r4")
    assert 55 <= retry <= 60
    guest.send("not even json")  # every data frame counts, and is refused before parsing
    assert_429(guest.recv(), None)
    guest.send("x" * 200_000)  # req-rate comes before the frame size check (§8.2 item 7)
    assert_429(guest.recv(), None)
    fresh = guests(sim.url)  # another connection has its own budget
    assert fresh.configure(guest.token)["class"] == "SessionResponse"


def test_conn_rate_per_deployment(start_sim, guests) -> None:
    sim = start_sim("--limit", "conn-rate=2")
    guests(sim.url)
    guests(sim.url)
    with pytest.raises(InvalidStatus) as info:
        open_guest(sim.url)
    response = info.value.response
    assert response.status_code == 429
    assert 55 <= int(response.headers["Retry-After"]) <= 60
    assert response.body.decode().count("\n") == 1  # one line naming the reason
    guests(sim.url, deployment="another-deployment")  # per deployment


def test_limits_on_by_default(start_sim, guests) -> None:
    sim = start_sim("--bot-latency", "0", "--quick-replies", "0")
    guest = guests(sim.url)
    guest.configure()
    for i in range(5):  # msg-rate 5/s
        guest.on_message(f"m{i}")
    guest.recv_many(10)
    tracing_id = guest.on_message("m5")
    assert_429(guest.recv(), tracing_id, retry=1)
    assert echo(guest, "e1")["class"] == "StructuredMessage"
    assert echo(guest, "e2")["class"] == "StructuredMessage"
    assert_429(echo(guest, "e3"), "e3")  # echo-rate 2/min
    tracing_id = guest.on_message("x" * 4097)
    assert guest.recv()["code"] in (429, 4011)


def test_no_limits_switches_all_off(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "0", "--quick-replies", "0")
    guest = guests(sim.url)
    guest.configure()
    for i in range(8):
        assert echo(guest, f"e{i}")["class"] == "StructuredMessage"
    for i in range(8):
        guest.on_message(f"m{i}")
    frames = guest.recv_many(16)
    assert all(frame["class"] == "StructuredMessage" for frame in frames)
    guest.on_message("x" * 5000)
    assert guest.recv()["body"]["text"] == "x" * 5000
    guest.recv()  # its reply
    sockets = [guests(sim.url) for _ in range(5)]
    for sock in sockets:
        sock.configure(guest.token)
    guest.expect_silence(0.2)  # no socket limit either


def test_one_limit_off(start_sim, guests) -> None:
    sim = start_sim("--limit", "echo-rate=off", "--bot-latency", "0")
    guest = guests(sim.url)
    guest.configure()
    for i in range(5):
        assert echo(guest, f"e{i}")["class"] == "StructuredMessage"


def test_bad_limit_switch_is_a_usage_error() -> None:
    from harness.errors import UsageError

    with pytest.raises(UsageError):
        SimProcess(["--limit", "bogus=3"], ready_timeout_s=20)


def test_deployment_is_required_in_the_frame(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.send({"action": "configureSession", "token": guest.token})
    assert guest.recv()["code"] == 4020
    guest.send({"action": "configureSession", "token": guest.token, "deploymentId": DEPLOYMENT})
    assert guest.recv()["class"] == "SessionResponse"
