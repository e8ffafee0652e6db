"""Decoder rules: §3.1 leniency for server frames, §8.3 answer codes for client actions."""

from __future__ import annotations

import orjson
import pytest

from harness.errors import ProtocolViolation
from harness.protocol import codec
from harness.protocol import frames as f

TOKEN = "c41e8b2d-7a09-4f36-9e5b-0d8a3c6f1b72"


def test_minimal_session_response_is_accepted() -> None:
    frame = codec.decode_server(
        b'{"type":"response","class":"SessionResponse","code":200,'
        b'"body":{"connected":true,"newSession":true}}'
    )
    assert frame == f.SessionResponse(connected=True, new_session=True)


def test_unknown_keys_are_ignored_and_minimal_messages_accepted() -> None:
    frame = codec.decode_server(
        b'{"type":"message","class":"StructuredMessage","code":200,"extra":1,'
        b'"body":{"direction":"Outbound","type":"Text","novel":{"a":1}}}'
    )
    assert isinstance(frame, f.StructuredMessage)
    assert frame.is_bot_reply and frame.id is None and frame.channel_time is None


def test_any_integer_error_code_is_accepted() -> None:
    frame = codec.decode_server(b'{"type":"response","class":"string","code":4999,"body":"x"}')
    assert frame == f.ErrorResponse(code=4999, body="x")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1,2]",
        b'{"type":"response","class":"Nope","code":200,"body":{}}',
        b'{"type":"response","class":"SessionResponse","code":"200","body":{"connected":true}}',
        b'{"type":"weird","class":"SessionResponse","code":200,"body":{"connected":true}}',
        b'{"type":"response","class":"SessionResponse","code":200}',
        b'{"type":"response","class":"SessionResponse","code":200,"body":{}}',
        b'{"type":"response","class":"SessionResponse","code":200,"body":{"connected":"yes"}}',
        b'{"type":"message","class":"StructuredMessage","code":200,"body":{"type":"Text"}}',
        b'{"type":"message","class":"StructuredMessage","code":200,"body":[]}',
        b'{"type":"response","class":"SessionResponse","code":200,"tracingId":5,'
        b'"body":{"connected":true}}',
    ],
)
def test_bad_server_frames_raise_protocol_violation(raw: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        codec.decode_server(raw)


def _client(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ("not json at all", 400),
        ([1], 400),
        ({"token": TOKEN}, 400),
        ({"action": 7, "token": TOKEN}, 400),
        ({"action": "connect"}, 400),
        ({"action": "start", "payload": {}}, 400),
        ({"action": "disconnectCustomer", "token": TOKEN}, 400),
        ({"action": "configureSession", "deploymentId": "d"}, 4020),
        ({"action": "configureSession", "deploymentId": "d", "token": ""}, 4020),
        ({"action": "configureSession", "deploymentId": "d", "token": 5}, 4020),
        ({"action": "configureSession", "token": TOKEN}, 4020),
        ({"action": "configureSession", "token": TOKEN, "deploymentId": "d", "startNew": 1}, 400),
        (
            {
                "action": "configureSession",
                "token": TOKEN,
                "deploymentId": "d",
                "journeyContext": 1,
            },
            400,
        ),
        ({"action": "configureAuthenticatedSession", "token": TOKEN, "deploymentId": "d"}, 4020),
        ({"action": "onMessage", "token": TOKEN}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": "hi"}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"type": "Video", "text": "x"}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"text": 5}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"text": "x", "content": {}}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"text": "x", "metadata": []}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"type": "Text"}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"type": "Event"}}, 400),
        ({"action": "onMessage", "token": TOKEN, "message": {"type": "Event", "events": []}}, 400),
        ({"action": "onMessage", "message": {"text": "hi"}}, 4020),
        ({"action": "closeSession", "token": TOKEN}, 4020),
        ({"action": "closeSession", "token": TOKEN, "closeAllConnections": "yes"}, 400),
        ({"action": "onAttachment", "token": TOKEN, "fileType": "a/b", "fileSize": 3}, 4020),
        (
            {
                "action": "onAttachment",
                "token": TOKEN,
                "fileName": "a",
                "fileType": 1,
                "fileSize": 3,
            },
            400,
        ),
        ({"action": "getAttachment", "token": TOKEN}, 4020),
    ],
)
def test_client_shape_errors_carry_the_documented_code(obj: object, code: int) -> None:
    raw = obj.encode() if isinstance(obj, str) else _client(obj)
    with pytest.raises(ProtocolViolation) as caught:
        codec.decode_client(raw)
    assert caught.value.code == code


def test_violation_keeps_action_token_and_tracing_id_for_check_order() -> None:
    raw = _client(
        {"action": "onMessage", "token": TOKEN, "tracingId": "t-1", "message": {"type": "Text"}}
    )
    with pytest.raises(ProtocolViolation) as caught:
        codec.decode_client(raw)
    assert (caught.value.action, caught.value.token, caught.value.tracing_id) == (
        "onMessage",
        TOKEN,
        "t-1",
    )


def test_echo_without_token_is_accepted() -> None:
    assert codec.decode_client(b'{"action":"echo"}') == f.Echo()


def test_quick_reply_shapes_are_all_accepted() -> None:
    button = {
        "contentType": "ButtonResponse",
        "buttonResponse": {"type": "QuickReply", "text": "Yes", "payload": "cookie1"},
    }
    for message in (
        {"type": "Structured", "text": "Yes", "content": [button]},
        {"type": "Text", "text": "", "content": [button]},
        {"type": "Text", "content": [button]},
    ):
        frame = codec.decode_client(
            _client({"action": "onMessage", "token": TOKEN, "message": message})
        )
        assert isinstance(frame, f.OnMessage) and frame.message.content == (button,)


def test_custom_attribute_size_reads_both_placements() -> None:
    attrs = {"customerTier": "gold", "ünï": "ç"}
    expected = len(orjson.dumps(attrs))
    inner = f.OnMessage(
        token=TOKEN,
        message=f.Message(text="x", channel={"metadata": {"customAttributes": attrs}}),
    )
    top = f.OnMessage(
        token=TOKEN, message=f.Message(text="x"), channel={"metadata": {"customAttributes": attrs}}
    )
    assert codec.custom_attributes_size(inner) == expected == codec.custom_attributes_size(top)
    assert codec.custom_attributes_size(f.OnMessage(token=TOKEN, message=f.Message(text="x"))) == 0


def test_channel_time_format_and_parse() -> None:
    assert codec.format_channel_time(1_748_873_012_418) == "2025-06-02T14:03:32.418Z"
    assert codec.parse_channel_time("2025-06-02T14:03:32.418Z") == 1_748_873_012_418
    assert codec.parse_channel_time("yesterday") is None
    assert codec.parse_channel_time("2025-06-02T14:03:32.418123Z") is None
