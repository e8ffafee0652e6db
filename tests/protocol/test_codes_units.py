"""Close codes as data, error-code scope, and the unit parsers every CLI shares."""

from __future__ import annotations

import random

import pytest

from harness.errors import UsageError
from harness.protocol.codes import (
    Close,
    CloseCode,
    describe_close_code,
    describe_error_code,
    error_is_fatal,
)
from harness.protocol.units import Share, parse_duration


def test_close_payload_round_trip() -> None:
    close = Close(1011, "injected fault")
    assert Close.parse(close.serialize()) == close
    assert Close.parse(b"") == Close(CloseCode.NO_STATUS_RCVD, "")
    assert Close.parse(b"\x03").code == CloseCode.PROTOCOL_ERROR


def test_close_str_names_code_and_meaning() -> None:
    text = str(Close.abnormal())
    assert text.startswith("1006 (abnormal closure: no close frame")
    assert Close.abnormal().initiator == "none"
    assert Close(1000).clean and Close(1001).clean and not Close(1011).clean


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1000, "Normal Closure"),
        (1006, "Abnormal Closure"),
        (3001, "Registered"),
        (4001, "Application"),
        (2999, "Unknown"),
    ],
)
def test_every_code_has_a_description(code: int, name: str) -> None:
    assert describe_close_code(code).name == name


def test_error_scope() -> None:
    assert error_is_fatal(4007, during_configure=False)
    assert error_is_fatal(400, during_configure=True)
    assert not error_is_fatal(400, during_configure=False)
    assert not error_is_fatal(4011, during_configure=True)
    assert describe_error_code(4029) == "rate too high"
    assert describe_error_code(4999) == "undocumented error code"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("50ms", 0.05), ("2s", 2.0), ("1.5m", 90.0), ("2h", 7200.0), ("3", 3.0), ("0", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "-1s", "nan", "5 parsecs"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_share_every_n_is_exact_and_fraction_is_seeded() -> None:
    every = Share.parse("every:3")
    assert [i for i in range(1, 10) if every.picks(i, random.Random(0))] == [3, 6, 9]
    frac = Share.parse("0.5")
    first = [frac.picks(i, rng) for rng in [random.Random(7)] for i in range(1, 50)]
    second = [frac.picks(i, rng) for rng in [random.Random(7)] for i in range(1, 50)]
    assert first == second and any(first) and not all(first)
    assert not Share.parse("0").enabled
    for bad in ("1.5", "every:0", "every:x", "most"):
        with pytest.raises(UsageError):
            Share.parse(bad)
