"""protocol.md §8.1 item 1, §8.4 items 9, 14-18: the happy paths, checked against the text.

One simulator for the module (limits off, quick replies off, 10 ms bot latency).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest

from harness.sim.launcher import SimProcess

from .conftest import DEPLOYMENT

HEX32 = re.compile(r"^[0-9a-f]{32}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(["--no-limits", "--bot-latency", "10ms", "--quick-replies", "0"]) as proc:
        yield proc


def _is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def _ms(channel_time: str) -> float:
    return datetime.strptime(channel_time, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000


def test_first_line_is_the_url(sim: SimProcess) -> None:
    assert re.search(r"ws://127\.0\.0\.1:\d+/v1", sim.output[0])
    assert sim.port > 0


def test_configure_new_session_full_body(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.send(
        {
            "action": "configureSession",
            "deploymentId": DEPLOYMENT,
            "token": guest.token,
            "tracingId": "t-1",
        }
    )
    reply = guest.recv()
    assert reply["type"] == "response" and reply["class"] == "SessionResponse"
    assert reply["code"] == 200 and reply["tracingId"] == "t-1"
    body = reply["body"]
    assert body["connected"] is True and body["newSession"] is True
    assert body["readOnly"] is False and body["clearedExistingSession"] is False
    assert body["maxCustomDataBytes"] == 2048
    assert body["allowedMedia"] == {
        "inbound": {"fileTypes": [{"type": "*/*"}], "maxFileSizeKB": 10240}
    }
    assert body["blockedExtensions"] == [".ade", ".adp", ".bat", ".exe", ".js"]
    assert body["durationSeconds"] == 259200
    assert abs(body["expirationDate"] - (time.time() + 259200)) < 10


def test_same_token_on_new_socket_resumes(sim: SimProcess, guests) -> None:
    first = guests(sim.url)
    assert first.configure()["body"]["newSession"] is True
    second = guests(sim.url)
    assert second.configure(first.token)["body"]["newSession"] is False
    # a repeat configure on the same socket is a resume too
    assert second.configure(first.token)["body"]["newSession"] is False


def test_start_new_on_active_session_is_ignored(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    body = guest.configure(guest.token, startNew=True)["body"]
    assert body["newSession"] is False and body["readOnly"] is False


def test_on_message_echo_then_bot_reply(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    tracing_id = guest.on_message(
        message={
            "type": "Text",
            "text": "Where is my order?",
            "metadata": {"customMessageId": "c-1"},
        }
    )
    echo, reply = guest.recv(), guest.recv()
    assert echo["type"] == "message" and echo["class"] == "StructuredMessage"
    assert echo["code"] == 200 and echo["tracingId"] == tracing_id
    body = echo["body"]
    assert body["direction"] == "Inbound" and body["type"] == "Text"
    assert body["text"] == "Where is my order?" and body["originatingEntity"] == ""
    assert HEX32.match(body["id"]) and TIME.match(body["channel"]["time"])
    assert _is_uuid(body["channel"]["messageId"])
    assert body["metadata"]["customMessageId"] == "c-1"
    assert _is_uuid(body["metadata"]["correlationId"])
    assert "tracingId" not in reply and reply["type"] == "message"
    rbody = reply["body"]
    assert rbody["direction"] == "Outbound" and rbody["type"] == "Text"
    assert rbody["text"] == "You said: Where is my order?"
    assert rbody["originatingEntity"] == "Bot" and rbody["channel"]["type"] == "Private"
    assert "messageId" not in rbody["channel"] and HEX32.match(rbody["id"])
    assert _is_uuid(rbody["metadata"]["correlationId"])
    assert _ms(rbody["channel"]["time"]) > _ms(body["channel"]["time"])


def test_reply_text_is_cut_at_200_chars(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    _echo, reply = guest.say("x" * 300)
    assert reply["body"]["text"] == "You said: " + "x" * 200


def test_channel_time_strictly_increasing(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    for i in range(10):
        guest.on_message(f"m{i}")
    frames = guest.recv_many(20)
    times = [_ms(frame["body"]["channel"]["time"]) for frame in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    ids = {frame["body"]["id"] for frame in frames}
    assert len(ids) == 20


def test_echo_action_reply(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send({"action": "echo", "token": guest.token, "tracingId": "e-1"})
    reply = guest.recv()
    assert reply["type"] == "response" and reply["class"] == "StructuredMessage"
    assert reply["tracingId"] == "e-1" and reply["code"] == 200
    body = reply["body"]
    assert body["type"] == "Text" and body["direction"] == "Inbound" and body["text"] == "ping"
    assert set(body["metadata"]) == {"durationSeconds", "expirationDate"}
    assert body["metadata"]["durationSeconds"] == "259200"
    assert body["metadata"]["expirationDate"].isdigit()
    assert HEX32.match(body["id"]) and TIME.match(body["channel"]["time"])
    # with a text, and without a token on a configured socket
    guest.send({"action": "echo", "message": {"type": "Text", "text": "hb"}})
    assert guest.recv()["body"]["text"] == "hb"


def test_get_jwt(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send({"action": "getJwt", "token": guest.token, "tracingId": "j-1"})
    reply = guest.recv()
    assert reply["class"] == "JwtResponse" and reply["type"] == "response"
    assert reply["tracingId"] == "j-1"
    parts = reply["body"]["jwt"].split(".")
    assert len(parts) == 3

    def part(i: int) -> dict[str, object]:
        raw = parts[i] + "=" * (-len(parts[i]) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(raw))
        assert isinstance(data, dict)
        return data

    assert part(0) == {"alg": "HS256", "typ": "JWT"}
    payload = part(1)
    assert payload["sub"] == guest.token and payload["deploymentId"] == DEPLOYMENT
    assert payload["exp"] == reply["body"]["exp"]
    assert abs(reply["body"]["exp"] - (time.time() + 3600)) < 10


def test_get_configuration_needs_no_session(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.send({"action": "getConfiguration", "token": "x", "deploymentId": DEPLOYMENT})
    reply = guest.recv()
    assert reply["class"] == "GetConfigurationResponse" and reply["type"] == "response"
    body = reply["body"]
    assert body["messageRoutingEnabled"] is True and body["sessionDurationSeconds"] == 259200


def test_configure_authenticated_session_then_no_downgrade(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.send(
        {
            "action": "configureAuthenticatedSession",
            "deploymentId": DEPLOYMENT,
            "token": guest.token,
            "data": {"code": "auth-code"},
        }
    )
    assert guest.recv()["body"]["connected"] is True
    other = guests(sim.url)
    reply = other.configure(guest.token)
    assert reply["class"] == "string" and reply["code"] == 4017


def test_fragmented_message_is_assembled(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    frame = '{"action":"onMessage","token":"' + guest.token + '","message":{"text":"in parts"}}'
    guest.ws.send(iter([frame[:20], frame[20:40], frame[40:]]))
    assert guest.recv()["body"]["text"] == "in parts"
    assert guest.recv()["body"]["text"] == "You said: in parts"


def test_invalid_utf8_text_closes_1007(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.ws.send(b'{"action":"echo","x":"\xff\xfe"}', text=True)
    assert guest.closed()[0] == 1007
