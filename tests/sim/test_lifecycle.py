"""protocol.md §7 and §8.4 items 10-13, 17, 19-24: sessions, fan-out, the bot and presence.

One simulator: limits off except 3 sockets per session, disconnect text "goodbye".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.sim.launcher import SimProcess

ARGS = [
    "--no-limits",
    "--limit", "sockets=3",
    "--disconnect-text", "goodbye",
    "--bot-latency", "20ms",
    "--quick-replies", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(ARGS) as proc:
        yield proc


def event_message(kind: str, value: str) -> dict[str, Any]:
    key = kind.lower()
    return {"type": "Event", "events": [{"eventType": kind, key: {"type": value}}]}


def is_readonly_disconnect(frame: dict[str, Any]) -> bool:
    body = frame["body"]
    return (
        frame["type"] == "message"
        and body["direction"] == "Outbound"
        and body["type"] == "Event"
        and body["events"] == [{"eventType": "Presence", "presence": {"type": "Disconnect"}}]
        and body["metadata"]["readOnly"] == "true"
        and "messageId" in body["channel"]
    )


def test_fan_out_echo_and_reply_to_every_socket(sim: SimProcess, guests) -> None:
    first = guests(sim.url)
    first.configure()
    second = guests(sim.url)
    second.configure(first.token)
    tracing_id = first.on_message("hello both")
    for guest in (first, second):
        echo, reply = guest.recv(), guest.recv()
        assert echo["tracingId"] == tracing_id and echo["body"]["direction"] == "Inbound"
        assert reply["body"]["text"] == "You said: hello both"


def test_direct_replies_and_errors_go_to_the_requester_only(sim: SimProcess, guests) -> None:
    first = guests(sim.url)
    first.configure()
    second = guests(sim.url)
    second.configure(first.token)
    first.send({"action": "getJwt", "token": first.token})
    assert first.recv()["class"] == "JwtResponse"
    first.send("not json")
    assert first.recv()["code"] == 400
    second.expect_silence()


def test_other_sessions_see_nothing(sim: SimProcess, guests) -> None:
    talker = guests(sim.url)
    talker.configure()
    bystander = guests(sim.url)
    bystander.configure()
    talker.say("private")
    bystander.expect_silence()


def test_socket_limit_closes_the_oldest(sim: SimProcess, guests) -> None:
    sockets = [guests(sim.url) for _ in range(4)]
    token = sockets[0].token
    for guest in sockets:
        assert guest.configure(token)["body"]["connected"] is True
    event = sockets[0].recv()
    assert event["class"] == "ConnectionClosedEvent" and event["type"] == "message"
    assert event["code"] == 200 and event["body"] == {}
    started = time.monotonic()
    code, _reason = sockets[0].closed(timeout=5)
    assert code == 1000 and time.monotonic() - started >= 0.5  # after the 1 s grace
    for guest in sockets[1:]:
        guest.expect_silence(0.1)
    # the detached socket is no longer in the session
    tracing_id = sockets[1].on_message("after")
    assert sockets[3].recv()["tracingId"] == tracing_id


def test_repeat_configure_is_not_counted_twice(sim: SimProcess, guests) -> None:
    first, second = guests(sim.url), guests(sim.url)
    first.configure()
    second.configure(first.token)
    for _ in range(3):  # 5 configures from 2 sockets: still 2 sockets, under the limit of 3
        assert second.configure(first.token)["body"]["newSession"] is False
    first.expect_silence(0.2)


def test_echo_metadata_keeps_string_values_and_a_fresh_correlation_id(
    sim: SimProcess, guests
) -> None:
    guest = guests(sim.url)
    guest.configure()
    metadata = {"customMessageId": "c-9", "count": 3, "correlationId": "mine"}
    guest.on_message(message={"type": "Text", "text": "meta", "metadata": metadata})
    echoed = guest.recv()["body"]["metadata"]
    assert echoed["customMessageId"] == "c-9" and "count" not in echoed
    assert echoed["correlationId"] != "mine"  # the server's value wins
    guest.recv()


def test_close_session_all_connections(sim: SimProcess, guests) -> None:
    caller = guests(sim.url)
    caller.configure()
    other = guests(sim.url)
    other.configure(caller.token)
    caller.send(
        {
            "action": "closeSession",
            "token": caller.token,
            "tracingId": "cs",
            "closeAllConnections": True,
        }
    )
    reply = caller.recv()
    assert reply["class"] == "SessionResponse" and reply["tracingId"] == "cs"
    assert reply["body"] == {"connected": False, "readOnly": False}
    assert other.recv()["class"] == "ConnectionClosedEvent"
    assert other.closed()[0] == 1000
    # the caller is detached but open: session actions get 4007, configure works again
    caller.on_message("detached?")
    assert caller.recv()["code"] == 4007
    assert caller.configure(caller.token)["body"]["newSession"] is False


def test_close_session_keeps_other_connections(sim: SimProcess, guests) -> None:
    caller = guests(sim.url)
    caller.configure()
    other = guests(sim.url)
    other.configure(caller.token)
    caller.send({"action": "closeSession", "token": caller.token, "closeAllConnections": False})
    assert caller.recv()["body"]["connected"] is False
    other.expect_silence()
    other.say("still on")


def test_presence_disconnect_makes_the_session_read_only(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    tracing_id = guest.on_message(message=event_message("Presence", "Disconnect"))
    assert guest.recv()["tracingId"] == tracing_id
    assert is_readonly_disconnect(guest.recv())
    tracing_id = guest.on_message("anyone?")
    reply = guest.recv()
    assert reply["code"] == 409 and reply["tracingId"] == tracing_id
    assert reply["body"] == "Conversation is read-only; start a new one with startNew."
    # §8.3 check order: read-only comes before shape
    guest.send({"action": "onMessage", "token": guest.token, "message": "bad"})
    assert guest.recv()["code"] == 409
    # a resume reports readOnly; startNew starts a new conversation
    other = guests(sim.url)
    body = other.configure(guest.token)["body"]
    assert body["readOnly"] is True and body["newSession"] is False
    guest.send({"action": "closeSession", "token": guest.token, "closeAllConnections": False})
    assert guest.recv()["body"] == {"connected": False, "readOnly": True}
    body = guest.configure(guest.token, startNew=True)["body"]
    assert body["newSession"] is True and body["readOnly"] is False
    guest.say("new conversation")


def test_disconnect_text_ends_after_a_latency_draw(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    tracing_id = guest.on_message("goodbye")
    assert guest.recv()["tracingId"] == tracing_id
    assert is_readonly_disconnect(guest.recv())  # instead of a reply
    guest.on_message("more")
    assert guest.recv()["code"] == 409


def test_pending_reply_is_dropped_when_read_only(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "300ms")
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("will the reply come?")
    assert guest.recv()["body"]["direction"] == "Inbound"
    guest.on_message(message=event_message("Presence", "Disconnect"))
    assert guest.recv()["body"]["direction"] == "Inbound"
    assert is_readonly_disconnect(guest.recv())
    guest.expect_silence(0.6)  # the pending reply was dropped, not replayed


def test_presence_clear(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    other = guests(sim.url)
    other.configure(guest.token)
    tracing_id = guest.on_message(message=event_message("Presence", "Clear"))
    for sock in (guest, other):
        echo = sock.recv()
        assert echo["tracingId"] == tracing_id and echo["body"]["type"] == "Event"
        assert sock.recv()["class"] == "SessionClearedEvent"
        assert sock.recv()["class"] == "ConnectionClosedEvent"
        assert sock.closed()[0] == 1000
    fresh = guests(sim.url)
    assert fresh.configure(guest.token)["body"]["newSession"] is True  # token forgotten


def test_join_gets_the_welcome(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    tracing_id = guest.on_message(message=event_message("Presence", "Join"))
    echo = guest.recv()
    assert echo["tracingId"] == tracing_id and echo["body"]["events"][0]["eventType"] == "Presence"
    assert guest.recv()["body"]["text"] == "Welcome! How can I help you today?"


def test_typing_gets_the_echo_only(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    tracing_id = guest.on_message(message=event_message("Typing", "On"))
    assert guest.recv()["tracingId"] == tracing_id
    guest.expect_silence(0.2)


@pytest.mark.parametrize(
    "message",
    [
        {
            "type": "Structured",
            "text": "Track an order",
            "content": [
                {
                    "contentType": "ButtonResponse",
                    "buttonResponse": {
                        "type": "QuickReply",
                        "text": "Track an order",
                        "payload": "track_order",
                    },
                }
            ],
        },
        {
            "type": "Text",
            "text": "",
            "content": [
                {
                    "contentType": "ButtonResponse",
                    "buttonResponse": {"type": "QuickReply", "text": "Y", "payload": "track_order"},
                }
            ],
        },
        {
            "type": "Text",
            "content": [
                {
                    "contentType": "ButtonResponse",
                    "buttonResponse": {"type": "QuickReply", "text": "Y", "payload": "track_order"},
                }
            ],
        },
    ],
    ids=["official", "empty-text", "no-text"],
)
def test_button_response(sim: SimProcess, guests, message: dict[str, Any]) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.on_message(message=message)
    echo = guest.recv()
    assert echo["body"]["content"] == message["content"]
    assert guest.recv()["body"]["text"] == "You chose: track_order"


def test_expired_session(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--session-ttl", "1s", "--bot-latency", "0")
    guest = guests(sim.url)
    guest.configure()
    event = guest.recv(timeout=4)  # the sweep pushes it
    assert event["class"] == "SessionExpiredEvent" and event["type"] == "message"
    assert event["body"] == {}
    guest.on_message("late")
    assert guest.recv()["code"] == 4007  # detached
    reply = guest.configure(guest.token)
    assert reply["class"] == "string" and reply["code"] == 4006


def test_echo_does_not_extend_the_ttl(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--session-ttl", "1s", "--bot-latency", "0")
    guest = guests(sim.url)
    guest.configure()
    started = time.monotonic()
    classes: list[str] = []
    for _ in range(40):  # echo every ~0.1 s until the session is gone (bounded: 4 s)
        guest.send({"action": "echo", "token": guest.token})
        frame = guest.recv()
        classes.append(frame["class"])
        if frame["class"] != "StructuredMessage":
            break
        try:
            pushed = guest.recv(timeout=0.1)
        except TimeoutError:
            continue
        classes.append(pushed["class"])
        break
    # the echoes did not keep it alive: it expired about one TTL after the configure
    assert classes[-1] in ("SessionExpiredEvent", "string"), classes
    assert time.monotonic() - started < 3.0


def test_multiple_replies_typing_and_quick_replies(start_sim, guests) -> None:
    sim = start_sim(
        "--no-limits", "--bot-replies", "2", "--bot-typing", "--quick-replies", "every:2",
        "--bot-latency", "10ms",
    )  # fmt: skip
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("hi")
    frames = guest.recv_many(5)
    kinds = [(f["body"]["direction"], f["body"]["type"]) for f in frames]
    assert kinds == [
        ("Inbound", "Text"),
        ("Outbound", "Event"),
        ("Outbound", "Text"),
        ("Outbound", "Event"),
        ("Outbound", "Structured"),
    ]
    assert frames[1]["body"]["events"] == [
        {"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}
    ]
    quick = frames[4]["body"]
    assert quick["text"] == "You said: hi"
    offered = [
        (item["contentType"], item["quickReply"]["text"], item["quickReply"]["payload"])
        for item in quick["content"]
    ]
    assert offered == [
        ("QuickReply", "Track an order", "track_order"),
        ("QuickReply", "Talk to a person", "handoff"),
    ]
    assert {item["quickReply"]["action"] for item in quick["content"]} == {"Message"}


def test_replies_in_order_never_before_their_echo(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "uniform:0ms,80ms", "--seed", "3")
    guest = guests(sim.url)
    guest.configure()
    texts = [f"m{i}" for i in range(20)]
    for text in texts:
        guest.on_message(text)
    frames = guest.recv_many(40)
    seen_echoes: set[str] = set()
    replies = []
    for frame in frames:
        body = frame["body"]
        if body["direction"] == "Inbound":
            seen_echoes.add(body["text"])
        else:
            said = body["text"].removeprefix("You said: ")
            assert said in seen_echoes  # never before its echo
            replies.append(said)
    assert replies == texts  # in order


def test_reply_dropped_when_no_socket_is_attached(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "300ms")
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("are you there?")
    assert guest.recv()["body"]["direction"] == "Inbound"
    guest.ws.close()
    bystander = guests(sim.url)
    bystander.configure()
    bystander.expect_silence(0.6)  # let the reply fall due while no socket is attached
    resumed = guests(sim.url)
    assert resumed.configure(guest.token)["body"]["newSession"] is False
    resumed.expect_silence(0.3)  # dropped, no replay


def test_reply_reaches_a_socket_that_resumed_in_time(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "500ms")
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("still there?")
    assert guest.recv()["body"]["direction"] == "Inbound"
    guest.ws.close()
    resumed = guests(sim.url)
    resumed.configure(guest.token)
    assert resumed.recv()["body"]["text"] == "You said: still there?"


def test_bot_latency_is_applied(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "fixed:300ms", "--quick-replies", "0")
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("slow bot")
    guest.recv()
    echoed = time.monotonic()
    assert guest.recv()["body"]["text"] == "You said: slow bot"
    assert time.monotonic() - echoed >= 0.25  # a lower bound only: no speed is asserted
