"""Source addresses: parsing, binding, round-robin connects, and running out of local ports.

The port-exhaustion test narrows the ephemeral port range to 10 ports inside a network
namespace of its own (the range is per namespace, so nothing outside it is touched); it skips
where namespaces cannot be made (not root, no CAP_NET_ADMIN, no ``ip``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from harness.client.sources import (
    MAX_ADDRESSES,
    SourceAddresses,
    check_bindable,
    local_port_range,
    parse_sources,
    ports_per_address,
)
from harness.client.transport import ERR_LOCAL_PORTS, Transport, TransportOptions
from harness.errors import UsageError
from harness.loadgen.resources import OpenFiles, capacity_warnings

OPTS = TransportOptions(tcp_timeout_s=5, tls_timeout_s=5, upgrade_timeout_s=5, read_timeout_s=5)


def test_ranges_and_lists_expand_in_order() -> None:
    assert parse_sources("") == ()
    assert parse_sources("127.0.0.2-127.0.0.4") == ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    assert parse_sources("10.0.0.5, 10.0.0.7") == ("10.0.0.5", "10.0.0.7")
    assert parse_sources("127.0.0.255-127.0.1.0,::1") == ("127.0.0.255", "127.0.1.0", "::1")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("127.0.0.9-127.0.0.2", "increasing"),
        ("127.0.0.1-::1", "increasing"),
        ("localhost", "not an IP address: 'localhost'"),
        ("10.0.0.0-10.255.255.255", f"more than {MAX_ADDRESSES}"),
        ("127.0.0.2,127.0.0.2", "named twice"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: str, says: str) -> None:
    with pytest.raises(UsageError, match="--source-addresses") as info:
        parse_sources(spec)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_an_address_of_another_machine_is_refused_before_any_load() -> None:
    check_bindable(("127.0.0.2", "127.0.0.3"))  # all of 127/8 is local on Linux
    with pytest.raises(UsageError, match=r"192\.0\.2\.1 is not an address of this machine"):
        check_bindable(("127.0.0.2", "192.0.2.1"))  # TEST-NET-1: never assigned


def test_the_pool_rotates() -> None:
    pool = SourceAddresses(("127.0.0.2", "127.0.0.3"))
    assert [pool.pick() for _ in range(5)] == ["127.0.0.2", "127.0.0.3"] * 2 + ["127.0.0.2"]
    with pytest.raises(UsageError):
        SourceAddresses(())


def test_connections_leave_from_each_source_in_turn(
    script_server: Callable[..., object],
) -> None:
    server = script_server()
    pool = SourceAddresses(parse_sources("127.0.0.2-127.0.0.4"))
    opts = TransportOptions(tcp_timeout_s=5, upgrade_timeout_s=5, sources=pool)
    transports = [Transport.connect(server.url, opts) for _ in range(6)]  # type: ignore[attr-defined]
    try:
        local = [t._ws.sock.getsockname()[0] for t in transports]
    finally:
        for transport in transports:
            transport.abort()
    assert local == ["127.0.0.2", "127.0.0.3", "127.0.0.4"] * 2


def test_the_banner_names_each_limit_below_the_plan() -> None:
    files = OpenFiles(before=1024, soft=20_000, hard=20_000)
    assert capacity_warnings(1000, files) == []
    lines = capacity_warnings(50_000, files)
    assert any("may open 20000 files" in line for line in lines)
    ports = ports_per_address(local_port_range())
    if ports is not None and ports < 50_000:
        assert any("local ports are the limit" in line for line in lines)
        spread = capacity_warnings(50_000, files, tuple(f"127.0.0.{n}" for n in range(2, 10)))
        assert not any("local ports" in line for line in spread)


# --- running out of local ports, in a namespace with a 10-port range ---------------------------

EXHAUST = r"""
import json, socket, sys
from harness.client.sources import SourceAddresses, parse_sources
from harness.client.transport import _open_tcp
from harness.errors import ConnectError
listener = socket.socket()
listener.bind(("127.0.0.1", 5000))
listener.listen(256)
spec = sys.argv[1]
pool = SourceAddresses(parse_sources(spec)) if spec else None
held = []
result = {"held": 0, "category": None, "message": None}
for _ in range(100):  # bounded: 10 ports per source address
    try:
        held.append(_open_tcp("127.0.0.1", 5000, 2.0, pool))
    except ConnectError as exc:
        result.update(category=exc.category, message=str(exc))
        break
result["held"] = len(held)
print(json.dumps(result))
"""


@pytest.fixture
def narrow_namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    name = f"gch-ports-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], check=False, capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"network namespaces not allowed here: {made.stderr.strip()}")
    try:
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40009"],
        ):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(
            ["ip", "netns", "delete", name], check=False, capture_output=True, timeout=10
        )


def _exhaust(namespace: str, spec: str) -> dict[str, object]:
    proc = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", EXHAUST, spec],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_running_out_of_ports_is_named_and_more_sources_lift_it(narrow_namespace: str) -> None:
    alone = _exhaust(narrow_namespace, "")
    assert alone["held"] == 10 and alone["category"] == ERR_LOCAL_PORTS
    message = str(alone["message"])
    assert "40000-40009: 10 ports" in message and "--source-addresses" in message
    spread = _exhaust(narrow_namespace, "127.0.0.2-127.0.0.4")
    assert spread["held"] == 30 and spread["category"] == ERR_LOCAL_PORTS
    assert "from 127.0.0." in str(spread["message"])
