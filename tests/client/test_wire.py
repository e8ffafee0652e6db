"""The client's hot-path frame builders equal the codec and the golden client fixtures."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.client import wire
from harness.protocol import codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "guest-api"


def golden(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return obj


@pytest.mark.parametrize(
    ("fixture", "build"),
    [
        (
            "client-onMessage-text.json",
            lambda t, i, g: wire.on_message(t, i, wire.text_message(g["message"]["text"])),
        ),
        (
            "client-onMessage-quickReply.json",
            lambda t, i, g: wire.on_message(
                t, i, wire.quick_reply_message("Track an order", "track_order")
            ),
        ),
        (
            "client-onMessage-typing.json",
            lambda t, i, g: wire.on_message(t, i, wire.event_message(wire.TYPING_ON)),
        ),
        (
            "client-onMessage-presence-join.json",
            lambda t, i, g: wire.on_message(t, i, wire.event_message(wire.presence("Join"))),
        ),
        (
            "client-onMessage-presence-clear.json",
            lambda t, i, g: wire.on_message(t, i, wire.event_message(wire.presence("Clear"))),
        ),
        ("client-echo.json", lambda t, i, g: wire.echo(t, i)),
    ],
)
def test_builders_match_golden_frames_and_the_codec(fixture: str, build: Any) -> None:
    expected = golden(fixture)
    expected.setdefault("tracingId", "6e2b9c41-0d7a-4b53-8f16-a3c5e7d9b024")  # we always send one
    data = build(expected["token"], expected["tracingId"], expected)
    assert orjson.loads(data) == expected
    # and the server-side decoder / encoder agree on the same frame
    assert orjson.loads(codec.encode(codec.decode_client(data))) == expected


def test_tracing_ids_are_fresh_uuid4() -> None:
    ids = {wire.new_tracing_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value


def test_tagged_message_carries_the_custom_message_id() -> None:
    data = wire.on_message("tok", "tid", wire.tagged(wire.text_message("hi"), "cm-1"))
    action = codec.decode_client(data)
    assert action.message.metadata == {"customMessageId": "cm-1"}  # type: ignore[union-attr]
