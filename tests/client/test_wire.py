"""The client's hot-path frame builders equal the codec and the golden client fixtures."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.client import wire
from harness.errors import ProtocolViolation
from harness.protocol import codec
from harness.protocol.frames import StructuredMessage

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


# --- decode: the StructuredMessage fast path equals the reference codec -----------------------

STRUCTURED = [
    g
    for g in (golden(p.name) for p in sorted(FIXTURES.glob("server-*.json")))
    if g.get("class") == "StructuredMessage"
]
BODY_KEYS = [
    "id",
    "type",
    "text",
    "direction",
    "channel",
    "content",
    "events",
    "metadata",
    "originatingEntity",
]
ENVELOPE = ["type", "class", "code", "tracingId", "body"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def structured_variants(draw: st.DrawFn) -> bytes:
    frame = orjson.loads(orjson.dumps(draw(st.sampled_from(STRUCTURED))))
    for _ in range(draw(st.integers(0, 3))):
        body = frame.get("body")
        if isinstance(body, dict) and draw(st.booleans()):
            target, key = body, draw(st.sampled_from(BODY_KEYS))
        else:
            target, key = frame, draw(st.sampled_from(ENVELOPE))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values | st.lists(json_values | st.just({}), max_size=3))
    return orjson.dumps(frame)


def _result(decode: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "frame", decode(data)
    except ProtocolViolation as exc:
        return "error", str(exc)


@settings(max_examples=600, deadline=None)
@given(st.one_of(structured_variants(), st.binary(max_size=40), json_values.map(orjson.dumps)))
def test_fast_decode_equals_the_codec(data: bytes) -> None:
    assert _result(wire.decode, data) == _result(codec.decode_server, data)


def test_fast_decode_takes_the_fast_path_for_golden_frames() -> None:
    for frame in STRUCTURED:
        data = orjson.dumps(frame)
        assert wire._structured(frame) is not None  # not silently falling back
        assert wire.decode(data) == codec.decode_server(data)


def test_fast_structured_constructor_sets_every_field() -> None:
    """The slot-setter constructor covers exactly the dataclass's fields (none left unset)."""
    names = {f.name for f in dataclasses.fields(StructuredMessage)}
    assert set(wire._SM_FIELDS) == names and len(wire._SM_FIELDS) == len(names)
    assert not hasattr(StructuredMessage, "__post_init__")
    for frame in STRUCTURED:
        data = orjson.dumps(frame)
        fast, ref = wire.decode(data), codec.decode_server(data)
        assert type(fast) is StructuredMessage
        assert [getattr(fast, n) for n in names] == [getattr(ref, n) for n in names]
        assert repr(fast) == repr(ref) and hash(fast.kind) == hash(ref.kind)


def test_per_client_tracing_ids_are_unique_uuid4() -> None:
    first, second = wire.TracingIds(), wire.TracingIds()
    ids = [first() for _ in range(5000)] + [second() for _ in range(5000)]
    assert len(set(ids)) == 10_000
    for value in ids[::500]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value
