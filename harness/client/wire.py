"""The client's hot path on the wire: building its frequent sends, decoding StructuredMessage.

``codec.encode`` walks dataclass field specs for any frame; a turn only needs a handful of
fixed shapes, so these build the JSON object directly and hand it to orjson (about 6x faster).
Likewise two of a turn's frames are StructuredMessages (echo and reply): :func:`decode` builds
those directly when they are well formed (about 40% cheaper) and hands everything else, or
anything odd, to ``codec.decode_server``, the reference. tests/client/test_wire.py checks that
every send equals ``codec.encode`` of the typed frame and, by property test, that
:func:`decode` gives exactly what ``codec.decode_server`` gives (the same frame, or the same
ProtocolViolation), so the two cannot drift apart.
"""

from __future__ import annotations

from random import getrandbits
from typing import Any, Final

import orjson

from harness.protocol import codec
from harness.protocol.frames import MESSAGE, RESPONSE, ServerFrame, StructuredMessage

_VARIANT: Final = "89ab"


def new_tracing_id() -> str:
    """A random UUID v4 string (§2: a fresh one per request), without uuid.UUID's overhead.

    Not for secrets: it only correlates replies (Mersenne Twister bits are fine here).
    """
    h = f"{getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class TracingIds:
    """Fresh tracing ids for one client: a random UUID v4 prefix and a 48-bit counter.

    Each id is a well-formed UUID v4 string and unique (74 random bits per client, then a
    counter), at a tenth of the cost of drawing 128 new bits per request.
    """

    __slots__ = ("_next", "_prefix")

    def __init__(self) -> None:
        self._prefix = new_tracing_id()[:24]
        self._next = getrandbits(32)

    def __call__(self) -> str:
        n = self._next = (self._next + 1) & 0xFFFFFFFFFFFF
        return f"{self._prefix}{n:012x}"


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


def decode(data: bytes) -> ServerFrame:
    """``codec.decode_server`` with a fast path for well-formed StructuredMessages (§3.4).

    Raises:
        ProtocolViolation: exactly when ``codec.decode_server`` raises it.
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return codec.decode_server(data)  # raises the reference error
    if type(obj) is dict and obj.get("class") == "StructuredMessage":
        frame = _structured(obj)
        if frame is not None:
            return frame
    return codec.decode_server_object(obj)  # parsed once: the reference checks the object


_BAD: Final = object()


def _objects(value: Any) -> Any:
    """A list of objects as a tuple (as the codec does); None when absent; _BAD otherwise."""
    if value is None:
        return None
    if type(value) is not list or any(type(item) is not dict for item in value):
        return _BAD
    return tuple(value)


def _structured(obj: dict[str, Any]) -> StructuredMessage | None:
    """The frame when every field has the type the codec accepts; None sends it to the codec."""
    kind, code, body = obj.get("type"), obj.get("code"), obj.get("body")
    if kind not in (RESPONSE, MESSAGE) or type(code) is not int or type(body) is not dict:
        return None
    tracing_id = obj.get("tracingId")
    if tracing_id is not None and type(tracing_id) is not str:
        return None
    get = body.get
    direction, mtype, msg_id, text = get("direction"), get("type"), get("id"), get("text")
    entity, channel, metadata = get("originatingEntity"), get("channel"), get("metadata")
    if type(direction) is not str or type(mtype) is not str:
        return None
    for value in (msg_id, text, entity):
        if value is not None and type(value) is not str:
            return None
    for value in (channel, metadata):
        if value is not None and type(value) is not dict:
            return None
    content, events = _objects(get("content")), _objects(get("events"))
    if content is _BAD or events is _BAD:
        return None
    # StructuredMessage(**fields) without the frozen __init__, which looks up
    # object.__setattr__ per field: the slot setters are a third cheaper. Every field is set
    # (the class has no __post_init__), so the frame is equal (test_wire checks both).
    frame: StructuredMessage = object.__new__(StructuredMessage)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11 = _SM_SET
    s0(frame, kind)
    s1(frame, code)
    s2(frame, tracing_id)
    s3(frame, direction)
    s4(frame, mtype)
    s5(frame, msg_id)
    s6(frame, text)
    s7(frame, channel)
    s8(frame, content)
    s9(frame, events)
    s10(frame, metadata)
    s11(frame, entity)
    return frame


_SM_FIELDS: Final = (
    "kind", "code", "tracing_id", "direction", "type", "id", "text", "channel", "content",
    "events", "metadata", "originating_entity",
)  # fmt: skip
#: The slot setters of StructuredMessage, in _SM_FIELDS order (test_wire checks the set).
_SM_SET: Final = tuple(StructuredMessage.__dict__[name].__set__ for name in _SM_FIELDS)
