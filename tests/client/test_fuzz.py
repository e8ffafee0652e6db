"""Fuzz: random and malformed server frames never escape the reader (protocol.md §3.1, §9 #19).

Each bad frame becomes exactly one recorded protocol error (counter + an ``error`` report with
category ``protocol``); good frames record none. Part one drives the client's frame handler
directly (many examples, no I/O); part two sends frames over a real socket through the reader
greenlet.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.client.guest import GuestClient
from harness.client.transport import OP_BINARY, OP_TEXT
from harness.errors import ProtocolViolation
from harness.protocol import codec
from harness.protocol.session import GuestSession, Kind

from .conftest import Reports, ScriptServer, options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "guest-api"
GOLDEN = [orjson.loads(p.read_bytes()) for p in sorted(FIXTURES.glob("server-*.json"))]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ENVELOPE_KEYS = ["type", "class", "code", "tracingId", "body"]


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A golden server frame with an envelope or body field removed or replaced."""
    frame: dict[str, Any] = orjson.loads(orjson.dumps(draw(st.sampled_from(GOLDEN))))
    body = frame.get("body")
    target = frame
    if isinstance(body, dict) and body and draw(st.booleans()):
        target = body
        key = draw(st.sampled_from(sorted(body)))
    else:
        key = draw(st.sampled_from(ENVELOPE_KEYS))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    return orjson.dumps(frame)


frames = st.one_of(
    st.binary(max_size=64).map(lambda b: (OP_TEXT, b)),
    json_values.map(lambda v: (OP_TEXT, orjson.dumps(v))),
    mutated_frames().map(lambda b: (OP_TEXT, b)),
    st.sampled_from(GOLDEN).map(lambda g: (OP_TEXT, orjson.dumps(g))),
    st.binary(max_size=16).map(lambda b: (OP_BINARY, b)),
)
# Frames that are bad by construction, whatever the decoder thinks.
known_bad = st.one_of(
    st.binary(max_size=32)
    .filter(lambda b: not b.strip().startswith(b"{"))
    .map(lambda b: (OP_TEXT, b)),
    st.lists(json_values, max_size=3).map(lambda v: (OP_TEXT, orjson.dumps(v))),
    st.text(max_size=10).map(
        lambda c: (
            OP_TEXT,
            orjson.dumps({"type": "message", "class": "X" + c, "code": 200, "body": {}}),
        )
    ),
    st.binary(min_size=1, max_size=16).map(lambda b: (OP_BINARY, b)),
)


def is_bad(opcode: int, data: bytes) -> bool:
    if opcode != OP_TEXT:
        return True
    try:
        codec.decode_server(data)
    except ProtocolViolation:
        return True
    return False


def _handler() -> tuple[Callable[[int, bytes], None], GuestClient, GuestSession, Reports]:
    reports = Reports()
    client = GuestClient("ws://127.0.0.1:9/v1", options(), reports.append)
    session = GuestSession(10**9, client.counters)
    session.upgraded()
    session.begin(Kind.CONFIGURE, "cfg", 0)  # something pending, so frames can settle it
    return (lambda op, data: client._on_data(session, op, data)), client, session, reports


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=8))
def test_random_frames_never_raise_and_bad_ones_are_recorded(
    batch: list[tuple[int, bytes]],
) -> None:
    handle, client, _, reports = _handler()
    expected = 0
    for opcode, data in batch:
        before = client.counters.protocol_errors
        handle(opcode, data)  # must not raise
        bad = is_bad(opcode, data)
        expected += bad
        assert client.counters.protocol_errors - before == int(bad)
    protocol_rows = [o for o in reports if o.step == "error" and o.error == "protocol"]
    assert len(protocol_rows) == expected == client.counters.protocol_errors


@settings(max_examples=200, deadline=None)
@given(known_bad)
def test_frames_bad_by_construction_are_one_protocol_error_each(frame: tuple[int, bytes]) -> None:
    handle, client, _, reports = _handler()
    handle(*frame)
    assert client.counters.protocol_errors == 1
    assert [o.error for o in reports] == ["protocol"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_frames_through_the_real_reader(
    batch: list[tuple[int, bytes]], fuzz_client: tuple[GuestClient, Reports]
) -> None:
    """Over a socket: the scripted server sends each frame back; a marker closes each batch."""
    client, reports = fuzz_client
    transport = client._transport
    assert transport is not None
    before = client.counters.protocol_errors
    for opcode, data in batch:
        word = "text" if opcode == OP_TEXT else "binary"
        transport.send_text(f"{word} {data.hex()}".encode())
    marker = uuid.uuid4().hex  # an unsolicited bot text with a fresh id: reported as integrity
    frame = {
        "type": "message",
        "class": "StructuredMessage",
        "code": 200,
        "body": {"id": marker, "direction": "Outbound", "type": "Text", "text": "m"},
    }
    transport.send_text(f"text {orjson.dumps(frame).hex()}".encode())
    reports.wait_for(lambda r: any(o.detail == marker for o in r))
    assert not client.closed  # the reader survived
    assert client.counters.protocol_errors - before == sum(is_bad(*f) for f in batch)


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[tuple[GuestClient, Reports]]:
    server = ScriptServer()
    reports = Reports()
    # a golden ConnectionClosedEvent must not make the client close the socket mid-test
    opts = options(close_on_connection_closed_event=False)
    client = GuestClient(server.url, opts, reports.append)
    client.connect()
    yield client, reports
    client.close()
    server.stop()
