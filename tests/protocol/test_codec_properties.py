"""Property: decode_server returns a frame or raises ProtocolViolation, nothing else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ProtocolViolation
from harness.protocol import codec
from harness.protocol import frames as f

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
known_keys = st.sampled_from(
    [
        "connected",
        "newSession",
        "direction",
        "type",
        "text",
        "channel",
        "content",
        "events",
        "metadata",
        "retryAfter",
        "errorCode",
        "jwt",
        "exp",
        "id",
        "attachmentId",
        "headers",
    ]
)
bodies = st.dictionaries(known_keys, json_values, max_size=6) | json_values
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["response", "message"]) | json_values,
        "class": st.sampled_from(sorted(f.SERVER_CLASSES)) | json_values,
        "code": st.sampled_from([200, 400, 429, 4007]) | json_values,
        "tracingId": st.text(max_size=8) | json_values,
        "body": bodies,
    },
)


def _decode_or_violation(data: bytes) -> None:
    try:
        frame = codec.decode_server(data)
    except ProtocolViolation:
        return
    assert isinstance(frame, tuple(f.SERVER_CLASSES.values()))
    assert codec.decode_server(codec.encode(frame)) == frame


@settings(max_examples=400, deadline=None)
@given(envelopes)
def test_structured_garbage_never_escapes(obj: dict[str, object]) -> None:
    _decode_or_violation(json.dumps(obj).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_raw_garbage_never_escapes(data: bytes) -> None:
    _decode_or_violation(data)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "action",
                "token",
                "message",
                "deploymentId",
                "tracingId",
                "closeAllConnections",
                "startNew",
            ]
        ),
        json_values,
        max_size=5,
    )
)
def test_client_decoder_answers_400_or_4020(obj: dict[str, object]) -> None:
    try:
        codec.decode_client(json.dumps(obj).encode())
    except ProtocolViolation as exc:
        assert exc.code in (400, 4020)
