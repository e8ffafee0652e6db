"""Golden frames: every canonical fixture parses and round-trips (style.md: guard against
symmetric bugs by testing against frames neither side wrote)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.protocol import codec
from harness.protocol import frames as f

VENDORED = Path(__file__).resolve().parents[1] / "fixtures" / "guest-api"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "guest-api"
FIXTURES = sorted(VENDORED.glob("*.json"))


def test_fixtures_are_present() -> None:
    assert len(FIXTURES) >= 40


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared checkout beside the repo")
def test_vendored_fixtures_match_shared() -> None:
    shared = {p.name: p.read_bytes() for p in SHARED.glob("*.json")}
    vendored = {p.name: p.read_bytes() for p in FIXTURES}
    assert vendored == shared


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_round_trips(path: Path) -> None:
    raw = path.read_bytes()
    decode = codec.decode_client if path.name.startswith("client-") else codec.decode_server
    frame = decode(raw)
    assert json.loads(codec.encode(frame)) == json.loads(raw)
    assert decode(codec.encode(frame)) == frame


def test_fixture_names_match_classes() -> None:
    for path in FIXTURES:
        if path.name.startswith("server-") and not path.name.startswith("server-error-"):
            class_name = path.stem.split("-")[1]
            frame = codec.decode_server(path.read_bytes())
            assert class_name == type(frame).CLASS


def test_typed_views_of_fixtures() -> None:
    load = lambda name: codec.decode_server((VENDORED / name).read_bytes())  # noqa: E731
    bot = load("server-StructuredMessage-bot-text.json")
    assert isinstance(bot, f.StructuredMessage) and bot.is_bot_reply
    assert bot.channel_time == "2025-06-02T14:03:12.967Z"
    typing_on = load("server-StructuredMessage-typing-on.json")
    assert isinstance(typing_on, f.StructuredMessage) and not typing_on.is_bot_reply
    disconnect = load("server-StructuredMessage-presence-disconnect-readOnly.json")
    assert isinstance(disconnect, f.StructuredMessage) and disconnect.read_only_disconnect
    echo = load("server-StructuredMessage-inbound-echo.json")
    assert isinstance(echo, f.StructuredMessage)
    assert echo.direction == f.INBOUND and echo.tracing_id is not None
    limited = load("server-error-429-rate-limited.json")
    assert isinstance(limited, f.TooManyRequests) and limited.retry_after >= 1
    assert limited.error_code == 4029


def test_secrets_stay_out_of_repr() -> None:
    jwt = codec.decode_server((VENDORED / "server-JwtResponse.json").read_bytes())
    assert isinstance(jwt, f.JwtResponse)
    assert jwt.jwt not in repr(jwt)
    auth = codec.decode_client(
        (VENDORED / "client-configureAuthenticatedSession.json").read_bytes()
    )
    assert isinstance(auth, f.ConfigureAuthenticatedSession)
    assert auth.code not in repr(auth)
