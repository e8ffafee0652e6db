"""protocol.md §8.2 items 7-8 and §8.3: every bad input gets its documented answer, the socket
stays open with its session configured, and no other session notices.

One simulator: rate limits off except the size limits, typing/clear/attachments disabled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.sim.launcher import SimProcess

from .conftest import DEPLOYMENT, Guest

ARGS = [
    "--bot-latency", "0",
    "--quick-replies", "0",
    "--limit", "msg-rate=off",
    "--limit", "req-rate=off",
    "--limit", "echo-rate=off",
    "--limit", "configure-rate=off",
    "--disable-feature", "typing",
    "--disable-feature", "clear",
    "--disable-feature", "attachments",
]  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with SimProcess(ARGS) as proc:
        yield proc


def assert_error(frame: dict[str, Any], code: int, tracing_id: str | None = None) -> None:
    assert frame["type"] == "response" and frame["class"] == "string", frame
    assert frame["code"] == code, frame
    assert isinstance(frame["body"], str) and frame["body"]
    assert frame.get("tracingId") == tracing_id, frame


def assert_still_configured(guest: Guest) -> None:
    """§8.2 item 8: the socket stays open with its session still configured."""
    tracing_id = guest.on_message("still here")
    echo = guest.recv()
    assert echo["tracingId"] == tracing_id and echo["body"]["text"] == "still here"
    assert guest.recv()["body"]["text"] == "You said: still here"


@pytest.mark.parametrize(
    "frame",
    [
        b'{"action":"echo"}',  # binary frame
        "this is not json",
        "[1, 2, 3]",
        '"a string"',
        "42",
        '{"token":"x"}',
        '{"action": 5}',
        '{"action":"connect"}',
        '{"action":"start","payload":{}}',
        '{"action":"disconnectCustomer","token":"x"}',
        '{"action":"resumeToken","token":"x"}',
    ],
    ids=lambda v: repr(v)[:30],
)
def test_unparseable_or_unknown_gets_400(sim: SimProcess, guests, frame: str | bytes) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send(frame)
    reply = guest.recv()
    assert_error(reply, 400)
    assert reply["body"] == "Request failed."
    assert_still_configured(guest)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"token": None}, 4020),
        ({"token": ""}, 4020),
        ({"token": 17}, 4020),
        ({"deploymentId": None}, 4020),
        ({"deploymentId": "another-deployment"}, 403),
        ({"startNew": "yes"}, 400),
        ({"journeyContext": "not an object"}, 400),
        ({"deploymentId": "another-deployment", "startNew": "yes"}, 403),
    ],
)
def test_bad_configure(sim: SimProcess, guests, extra: dict[str, Any], code: int) -> None:
    guest = guests(sim.url)
    frame = {"action": "configureSession", "deploymentId": DEPLOYMENT, "token": guest.token}
    frame["tracingId"] = "c-1"
    frame.update(extra)
    guest.send({k: v for k, v in frame.items() if v is not None})
    reply = guest.recv()
    assert_error(reply, code, "c-1")
    if code == 4020 and "token" in extra:
        assert reply["body"] == "Missing parameter: token"
    if code == 403:
        assert reply["body"] == "HTTP authorization error"
    guest.configure()  # the socket is still usable
    assert_still_configured(guest)


def test_configure_authenticated_without_code(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    frame = {"action": "configureAuthenticatedSession", "deploymentId": DEPLOYMENT}
    guest.send({**frame, "token": guest.token, "data": {}})
    assert_error(guest.recv(), 4020)


def test_another_deployments_token_is_not_found(sim: SimProcess, guests) -> None:
    owner = guests(sim.url)
    owner.configure()
    other = guests(sim.url, deployment="99999999-0000-0000-0000-000000000000")
    frame = {"action": "configureSession", "deploymentId": "99999999-0000-0000-0000-000000000000"}
    other.send({**frame, "token": owner.token})
    assert_error(other.recv(), 4007)


SESSION_ACTIONS = [
    {"action": "onMessage", "message": {"type": "Text", "text": "hi"}},
    {"action": "echo"},
    {"action": "getJwt"},
    {"action": "onAttachment", "fileName": "a.png", "fileType": "image/png", "fileSize": 5},
    {"action": "getAttachment", "attachmentId": "a"},
    {"action": "deleteAttachment", "attachmentId": "a"},
    {"action": "closeSession", "closeAllConnections": False},
]


@pytest.mark.parametrize("frame", SESSION_ACTIONS, ids=lambda f: f["action"])
def test_session_action_on_unconfigured_socket(sim: SimProcess, guests, frame) -> None:
    guest = guests(sim.url)
    guest.send({**frame, "token": guest.token, "tracingId": "u-1"})
    reply = guest.recv()
    assert_error(reply, 4007, "u-1")
    assert reply["body"] == "Session not found."


@pytest.mark.parametrize("frame", SESSION_ACTIONS, ids=lambda f: f["action"])
def test_session_action_with_another_token(sim: SimProcess, guests, frame) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send({**frame, "token": "someone-else", "tracingId": "o-1"})
    assert_error(guest.recv(), 4007, "o-1")
    assert_still_configured(guest)


@pytest.mark.parametrize("frame", SESSION_ACTIONS, ids=lambda f: f["action"])
def test_session_action_without_token(sim: SimProcess, guests, frame) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send({**frame, "tracingId": "n-1"})
    reply = guest.recv()
    if frame["action"] == "echo":  # §2.4: accepted without token on a configured socket
        assert reply["class"] == "StructuredMessage" and reply["tracingId"] == "n-1"
    else:
        assert_error(reply, 4020, "n-1")
        assert reply["body"] == "Missing parameter: token"
    assert_still_configured(guest)


@pytest.mark.parametrize(
    "message",
    [
        "not an object",
        {"type": "Video", "text": "x"},
        {"type": "Text", "text": 5},
        {"type": "Text", "text": "x", "content": {"not": "a list"}},
        {"type": "Text", "text": "x", "metadata": ["not", "an", "object"]},
        {"type": "Text"},
        {"type": "Structured", "text": ""},
        {"type": "Event"},
        {"type": "Event", "events": []},
        {"type": "Event", "events": ["Typing"]},
    ],
    ids=repr,
)
def test_bad_message_shape(sim: SimProcess, guests, message: Any) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send(
        {"action": "onMessage", "token": guest.token, "tracingId": "m-1", "message": message}
    )
    assert_error(guest.recv(), 400, "m-1")
    assert_still_configured(guest)


def test_missing_message_type_means_text(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.on_message(message={"text": "no type"})
    echo = guest.recv()
    assert echo["body"]["type"] == "Text" and echo["body"]["text"] == "no type"


def test_features_off(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    typing = {"eventType": "Typing", "typing": {"type": "On"}}
    tracing_id = guest.on_message(message={"type": "Event", "events": [typing]})
    reply = guest.recv()
    assert_error(reply, 403, tracing_id)
    assert reply["body"] == "Turn on the Feature Toggle or fix the configuration."
    clear = {"eventType": "Presence", "presence": {"type": "Clear"}}
    tracing_id = guest.on_message(message={"type": "Event", "events": [clear]})
    reply = guest.recv()
    assert_error(reply, 403, tracing_id)
    assert reply["body"] == "Presence events Conversation Clear are not supported"
    guest.send(
        {
            "action": "onAttachment",
            "token": guest.token,
            "fileName": "a.png",
            "fileType": "image/png",
            "fileSize": 10,
        }
    )
    assert_error(guest.recv(), 4000)
    assert_still_configured(guest)


def test_text_size_limit(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.on_message("a" * 4096)  # exactly 4096 bytes passes
    assert guest.recv()["body"]["direction"] == "Inbound"
    guest.recv()
    tracing_id = guest.on_message("€" * 1366)  # 4098 UTF-8 bytes, 1366 characters
    reply = guest.recv()
    assert_error(reply, 4011, tracing_id)
    assert reply["body"] == "Message length 4098 is larger than 4096"
    assert_still_configured(guest)


@pytest.mark.parametrize("placement", ["message", "top-level"])
def test_custom_attribute_size_limit(sim: SimProcess, guests, placement: str) -> None:
    guest = guests(sim.url)
    guest.configure()
    small = {"metadata": {"customAttributes": {"tier": "gold"}}}
    big = {"metadata": {"customAttributes": {"blob": "x" * 2100}}}
    for channel, ok in ((small, True), (big, False)):
        message: dict[str, Any] = {"type": "Text", "text": "hi"}
        extra: dict[str, Any] = {}
        if placement == "message":
            message["channel"] = channel
        else:
            extra["channel"] = channel
        tracing_id = guest.on_message(message=message, **extra)
        reply = guest.recv()
        if ok:
            assert reply["tracingId"] == tracing_id and reply["class"] == "StructuredMessage"
            assert "customAttributes" not in str(reply)  # stored, not echoed
            guest.recv()
        else:
            assert_error(reply, 4013, tracing_id)
            assert (
                reply["body"] == "Custom Attributes in channel metadata is larger than 2048 bytes"
            )


def test_content_naming_unknown_attachment(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    content = [{"contentType": "Attachment", "attachment": {"id": "never-uploaded"}}]
    tracing_id = guest.on_message(message={"type": "Text", "text": "see", "content": content})
    assert_error(guest.recv(), 4010, tracing_id)


@pytest.mark.parametrize(("value", "code"), [(None, 4020), ("yes", 400)])
def test_close_session_flag(sim: SimProcess, guests, value: Any, code: int) -> None:
    guest = guests(sim.url)
    guest.configure()
    frame: dict[str, Any] = {"action": "closeSession", "token": guest.token, "tracingId": "x"}
    if value is not None:
        frame["closeAllConnections"] = value
    guest.send(frame)
    assert_error(guest.recv(), code, "x")
    assert_still_configured(guest)


def test_frame_over_max_frame_bytes_gets_4011_unparsed(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    big = '{"action":"onMessage","tracingId":"big","pad":"' + "x" * 140_000 + '"}'
    guest.send(big)
    reply = guest.recv()
    assert_error(reply, 4011, None)  # unparsed: no tracingId
    assert reply["body"] == f"Message length {len(big)} is larger than 131072"
    assert_still_configured(guest)


def test_frame_over_hard_cap_closes_1009(sim: SimProcess, guests) -> None:
    guest = guests(sim.url)
    guest.configure()
    guest.send("x" * (1024 * 1024 + 1))
    code, _reason = guest.closed()
    assert code == 1009


def test_bad_input_never_touches_other_sessions(sim: SimProcess, guests) -> None:
    watcher = guests(sim.url)
    watcher.configure()
    noisy = guests(sim.url)
    noisy.configure()
    for frame in ("nope", "[]", '{"action":"connect"}', b"\x00\x01"):
        noisy.send(frame)
        assert_error(noisy.recv(), 400)
    noisy.send({"action": "onMessage", "token": noisy.token, "message": "x"})
    assert_error(noisy.recv(), 400)
    watcher.expect_silence()
    assert_still_configured(watcher)


def test_on_message_check_order(sim: SimProcess, guests) -> None:
    """§8.3: session, then (rate, read-only), then shape, then feature, then size."""
    stranger = guests(sim.url)
    stranger.send({"action": "onMessage", "token": "t", "tracingId": "a", "message": "bad"})
    assert_error(stranger.recv(), 4007, "a")  # session before shape
    guest = guests(sim.url)
    guest.configure()
    typing_with_bad_text = {"type": "Event", "text": 5, "events": [{"eventType": "Typing"}]}
    guest.send(
        {
            "action": "onMessage",
            "token": guest.token,
            "tracingId": "b",
            "message": typing_with_bad_text,
        }
    )
    assert_error(guest.recv(), 400, "b")  # shape before feature
    long_typing = {"type": "Event", "text": "x" * 5000, "events": [{"eventType": "Typing"}]}
    guest.send(
        {"action": "onMessage", "token": guest.token, "tracingId": "c", "message": long_typing}
    )
    assert_error(guest.recv(), 403, "c")  # feature before size
