"""Client-side constants and options agree with the schema and the protocol limits."""

from __future__ import annotations

import pytest

from harness.client import transport
from harness.client.options import ClientOptions
from harness.errors import UsageError
from harness.record import schema


def test_categories_and_initiators_match_the_raw_event_schema() -> None:
    client = (transport.ERR_DNS, transport.ERR_REFUSED, transport.ERR_TIMEOUT, transport.ERR_TLS)
    assert client == (schema.ERR_DNS, schema.ERR_REFUSED, schema.ERR_TIMEOUT, schema.ERR_TLS)
    assert transport.ERR_LOCAL_PORTS == schema.ERR_LOCAL_PORTS
    assert (transport.INITIATOR_CLIENT, transport.INITIATOR_SERVER, transport.INITIATOR_NONE) == (
        schema.INITIATOR_CLIENT,
        schema.INITIATOR_SERVER,
        schema.INITIATOR_NONE,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"heartbeat_interval_s": 29.9},
        {"heartbeat_interval_s": -1},
        {"reply_timeout_s": 0},
        {"tcp_timeout_s": 0},
        {"close_timeout_s": -1},
        {"max_retry_after_s": -1},
    ],
)
def test_bad_options_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        ClientOptions("dep", **bad)  # type: ignore[arg-type]


def test_heartbeat_limit_and_its_override() -> None:
    assert ClientOptions("dep", heartbeat_interval_s=30).heartbeat_interval_s == 30
    assert ClientOptions("dep", heartbeat_interval_s=0).heartbeat_interval_s == 0
    fast = ClientOptions("dep", heartbeat_interval_s=1, allow_fast_heartbeat=True)
    assert fast.heartbeat_interval_s == 1
    with pytest.raises(UsageError):
        ClientOptions("")


def test_transport_options_carry_every_connect_setting() -> None:
    opts = ClientOptions(
        "dep",
        origin="https://site.example",
        headers={"X-A": "1"},
        tcp_timeout_s=1,
        tls_timeout_s=2,
        upgrade_timeout_s=3,
        read_timeout_s=4,
        ca_file="/ca.pem",
        insecure=True,
    )
    t = opts.transport()
    assert (t.origin, dict(t.headers), t.tcp_timeout_s, t.tls_timeout_s) == (
        "https://site.example",
        {"X-A": "1"},
        1,
        2,
    )
    assert (t.upgrade_timeout_s, t.read_timeout_s, t.ca_file, t.insecure) == (3, 4, "/ca.pem", True)
