"""Hot-path frame building for the client's frequent sends (protocol.md §2.3, §2.4).

``codec.encode`` walks dataclass field specs for any frame; a turn only needs a handful of
fixed shapes, so these build the JSON object directly and hand it to orjson (about 6x faster).
tests/client/test_wire.py checks that every shape equals ``codec.encode`` of the typed frame,
so the two cannot drift apart.
"""

from __future__ import annotations

from random import getrandbits
from typing import Any, Final

import orjson

_VARIANT: Final = "89ab"


def new_tracing_id() -> str:
    """A random UUID v4 string (§2: a fresh one per request), without uuid.UUID's overhead.

    Not for secrets: it only correlates replies (Mersenne Twister bits are fine here).
    """
    h = f"{getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def text_message(text: str) -> dict[str, Any]:
    """``message`` of a guest text (§2.3)."""
    return {"type": "Text", "text": text}


def quick_reply_message(text: str, payload: str) -> dict[str, Any]:
    """``message`` answering a quick reply: the official web client's ButtonResponse (§2.3)."""
    button = {"type": "QuickReply", "text": text, "payload": payload}
    return {
        "type": "Structured",
        "text": text,
        "content": [{"contentType": "ButtonResponse", "buttonResponse": button}],
    }


def event_message(event: dict[str, Any]) -> dict[str, Any]:
    """``message`` carrying one event: Typing or Presence (§2.3)."""
    return {"type": "Event", "events": [event]}


def tagged(message: dict[str, Any], custom_message_id: str) -> dict[str, Any]:
    """``message`` with ``metadata.customMessageId`` (§2.3; echoed back, §7.3 rule 2)."""
    return {**message, "metadata": {"customMessageId": custom_message_id}}


TYPING_ON: Final = {"eventType": "Typing", "typing": {"type": "On"}}


def presence(kind: str) -> dict[str, Any]:
    """A Presence event: Join, Clear or Disconnect (§2.3)."""
    return {"eventType": "Presence", "presence": {"type": kind}}


def on_message(token: str, tracing_id: str, message: dict[str, Any]) -> bytes:
    """An ``onMessage`` action (§2.3)."""
    return orjson.dumps(
        {"action": "onMessage", "token": token, "tracingId": tracing_id, "message": message}
    )


def echo(token: str, tracing_id: str, text: str = "ping") -> bytes:
    """An ``echo`` action (§2.4)."""
    return orjson.dumps(
        {
            "action": "echo",
            "token": token,
            "tracingId": tracing_id,
            "message": {"type": "Text", "text": text},
        }
    )
