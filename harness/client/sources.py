"""Local source addresses for outgoing connections, and the ports each one has.

Every TCP connection to one server address:port needs its own local (address, port) pair. With
one local address, Linux hands out at most the ephemeral range (``ip_local_port_range``,
32768-60999 = 28,232 ports by default) per server address:port, so one worker cannot hold more
connections than that to one simulator or load balancer address. Spreading connections
round-robin over several local addresses multiplies the ceiling: on loopback every 127.x.y.z
is local, on a real machine add addresses to the NIC (docs/scaling.md#local-ports).

Sockets bound to a source address use ``IP_BIND_ADDRESS_NO_PORT`` where the kernel has it, so
the port is picked at ``connect()`` from the full 4-tuple, not reserved by ``bind()``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from harness.errors import UsageError

#: Most addresses one range may name: enough for any NIC, small enough to catch a typo'd /8.
MAX_ADDRESSES: Final = 1024
#: ``IP_BIND_ADDRESS_NO_PORT`` (linux/in.h); Python exposes it only from 3.12 on some builds.
IP_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PORT_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")


class SourceAddresses:
    """A round-robin pool of local addresses (one per process, shared by its connections)."""

    __slots__ = ("_next", "addresses")

    def __init__(self, addresses: Sequence[str]) -> None:
        if not addresses:
            raise UsageError("--source-addresses: no address given")
        self.addresses = tuple(addresses)
        self._next = 0

    def __repr__(self) -> str:
        return f"SourceAddresses({describe(self.addresses)})"

    def pick(self) -> str:
        """The address for the next connection (cooperative code: no lock needed)."""
        address = self.addresses[self._next]
        self._next = (self._next + 1) % len(self.addresses)
        return address


def parse_sources(spec: str) -> tuple[str, ...]:
    """``127.0.0.2-127.0.0.9`` or ``10.0.0.5,10.0.0.6`` or a mix; ``""`` is none.

    Raises:
        UsageError: not an address, a range that runs backwards or mixes families, too many.
    """
    found: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        first, _, last = item.partition("-")
        low, high = _address(first), _address(last or first)
        if low.version != high.version or int(high) < int(low):
            raise UsageError(f"--source-addresses: {item!r} is not an increasing range")
        if int(high) - int(low) + len(found) >= MAX_ADDRESSES:
            raise UsageError(f"--source-addresses: more than {MAX_ADDRESSES} addresses")
        found.extend(str(type(low)(n)) for n in range(int(low), int(high) + 1))
    if len(set(found)) != len(found):
        raise UsageError("--source-addresses: an address is named twice")
    return tuple(found)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise UsageError(f"--source-addresses: not an IP address: {text.strip()!r}") from None


def check_bindable(addresses: Sequence[str]) -> None:
    """Fail before any load if an address is not one of this machine's.

    Raises:
        UsageError: bind() refused one of them (one line, names it).
    """
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, 0))
            except OSError as exc:
                raise UsageError(
                    f"--source-addresses: {address} is not an address of this machine "
                    f"({exc.strerror}); add it to an interface or leave it out"
                ) from None


def bind_source(sock: socket.socket, address: str) -> None:
    """Bind ``sock`` to ``address``, the port left to ``connect()`` where the kernel can."""
    if sys.platform == "linux":
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.bind((address, 0))


def local_port_range(path: Path = PORT_RANGE_FILE) -> tuple[int, int] | None:
    """The kernel's ephemeral port range, or None where it cannot be read (not Linux)."""
    try:
        low, high = (int(n) for n in path.read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


def ports_per_address(port_range: tuple[int, int] | None) -> int | None:
    """Connections one source address can have open to one server address:port."""
    return None if port_range is None else port_range[1] - port_range[0] + 1


def describe(addresses: Sequence[str]) -> str:
    """``127.0.0.2-127.0.0.9 (8 addresses)``-style text for logs and run.json."""
    if len(addresses) == 1:
        return addresses[0]
    return f"{addresses[0]}..{addresses[-1]} ({len(addresses)} addresses)"
