"""Hot-path encoders for the two frames of every guest round trip (protocol.md §3.4, §8.4).

Building a frozen ``frames.StructuredMessage`` and walking it with ``codec.encode`` costs
about ten times more than the JSON itself, and a round trip sends two of them (the inbound
echo and the bot reply). These functions emit the same bytes as
``codec.encode(frames.StructuredMessage(...))`` (same keys, same order, ``None`` left out);
tests/sim/test_wire.py holds them to that, so the codec stays the single definition of the
wire format. Every other frame goes through the codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

_DUMPS = orjson.dumps


def inbound_echo(
    *,
    tracing_id: str | None,
    type: str,
    id: str,
    text: str | None,
    content: tuple[Any, ...] | None,
    events: tuple[Any, ...] | None,
    time: str,
    message_id: str,
    metadata: Mapping[str, str],
) -> bytes:
    """The §3.4 inbound echo of an ``onMessage`` (``type:"message"``, item 17)."""
    body: dict[str, Any] = {"direction": "Inbound", "type": type, "id": id}
    if text is not None:
        body["text"] = text
    body["channel"] = {"time": time, "messageId": message_id}
    if content is not None:
        body["content"] = content
    if events is not None:
        body["events"] = events
    body["metadata"] = metadata
    body["originatingEntity"] = ""
    if tracing_id is None:
        return _DUMPS({"type": "message", "class": "StructuredMessage", "code": 200, "body": body})
    return _DUMPS(
        {
            "type": "message",
            "class": "StructuredMessage",
            "code": 200,
            "tracingId": tracing_id,
            "body": body,
        }
    )


def bot_text(
    *,
    id: str,
    text: str,
    time: str,
    correlation_id: str,
    quick_replies: tuple[Any, ...] | None,
) -> bytes:
    """A §3.4 bot text (``Text``), or ``Structured`` with quick replies (item 20)."""
    body: dict[str, Any] = {
        "direction": "Outbound",
        "type": "Text" if quick_replies is None else "Structured",
        "id": id,
        "text": text,
        "channel": {"time": time, "type": "Private"},
    }
    if quick_replies is not None:
        body["content"] = quick_replies
    body["metadata"] = {"correlationId": correlation_id}
    body["originatingEntity"] = "Bot"
    return _DUMPS({"type": "message", "class": "StructuredMessage", "code": 200, "body": body})
