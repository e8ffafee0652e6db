"""The hot-path encoders emit exactly what the codec emits for the same frame (§3.4)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.protocol import codec
from harness.protocol import frames as f
from harness.sim import wire
from harness.sim.bot import QUICK_REPLY_CONTENT

CHANNEL = {"time": "2025-06-02T14:03:12.418Z", "messageId": "4b8e2f6a-9c1d-4a35-b7e0-3d5f8a2c6e19"}


@pytest.mark.parametrize("tracing_id", [None, "6e2b9c41"])
@pytest.mark.parametrize(
    "message",
    [
        {"type": "Text", "text": "Where is my order?"},
        {"type": "Text", "text": "ünïcode €", "metadata": {"customMessageId": "c-1"}},
        {"type": "Structured", "text": "Y", "content": ({"contentType": "ButtonResponse"},)},
        {"type": "Text", "content": ({"contentType": "Attachment", "attachment": {"id": "a"}},)},
        {"type": "Event", "events": ({"eventType": "Typing", "typing": {"type": "On"}},)},
    ],
)
def test_inbound_echo_matches_codec(tracing_id: str | None, message: dict[str, Any]) -> None:
    metadata = {**message.get("metadata", {}), "correlationId": "e2c9a7f4"}
    expected = codec.encode(
        f.StructuredMessage(
            tracing_id=tracing_id,
            direction="Inbound",
            type=message["type"],
            id="d7fedcbd5fd1af5013e62ea1f4e9e9be",
            text=message.get("text"),
            channel=CHANNEL,
            content=message.get("content"),
            events=message.get("events"),
            metadata=metadata,
            originating_entity="",
        )
    )
    got = wire.inbound_echo(
        tracing_id=tracing_id,
        type=message["type"],
        id="d7fedcbd5fd1af5013e62ea1f4e9e9be",
        text=message.get("text"),
        content=message.get("content"),
        events=message.get("events"),
        time=CHANNEL["time"],
        message_id=CHANNEL["messageId"],
        metadata=metadata,
    )
    assert got == expected


@pytest.mark.parametrize("quick", [False, True])
def test_bot_text_matches_codec(quick: bool) -> None:
    expected = codec.encode(
        f.StructuredMessage(
            direction="Outbound",
            type="Structured" if quick else "Text",
            id="0a725c2fab50dcc2a805c09e067cb8cd",
            text="You said: hi",
            channel={"time": CHANNEL["time"], "type": "Private"},
            content=QUICK_REPLY_CONTENT if quick else None,
            metadata={"correlationId": "9d2e5b8c"},
            originating_entity="Bot",
        )
    )
    got = wire.bot_text(
        id="0a725c2fab50dcc2a805c09e067cb8cd",
        text="You said: hi",
        time=CHANNEL["time"],
        correlation_id="9d2e5b8c",
        quick_replies=QUICK_REPLY_CONTENT if quick else None,
    )
    assert got == expected
    decoded = codec.decode_server(got)  # and the client side accepts it
    assert isinstance(decoded, f.StructuredMessage) and decoded.is_bot_reply
