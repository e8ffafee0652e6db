"""In-process checks of paths that timing makes hard to reach over a socket: the handlers are
fed frames with explicit loop times, and a minimal stand-in for the websockets connection
records what would be written (the simulator's logic itself is real)."""

from __future__ import annotations

import argparse
import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from websockets.frames import Opcode
from websockets.protocol import State

from harness.sim import cli
from harness.sim.config import SimConfig
from harness.sim.connection import SimConnection
from harness.sim.server import SimServer
from harness.sim.sessions import Socket


class _Transport:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


class _Protocol:
    state = State.OPEN


class _Conn:
    def __init__(self) -> None:
        self.protocol = _Protocol()
        self.transport = _Transport()
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def _frames(raw: bytes) -> list[dict[str, Any]]:
    """Split unmasked server text frames (RFC 6455 §5.2) and parse their JSON."""
    out, pos = [], 0
    while pos < len(raw):
        size, header = raw[pos + 1] & 0x7F, 2
        if size == 126:
            size, header = int.from_bytes(raw[pos + 2 : pos + 4], "big"), 4
        out.append(orjson.loads(raw[pos + header : pos + header + size]))
        pos += header + size
    return out


def test_expiry_answering_a_request_is_a_response_with_its_tracing_id() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    config = cli.build_config(parser.parse_args(["--session-ttl", "10s", "--no-limits"]))

    async def scenario() -> list[dict[str, Any]]:
        sim = SimServer(config)
        conn = _Conn()
        sock = Socket(conn, "dep", 0.0, config, sim.flusher)  # type: ignore[arg-type]
        configure = {"action": "configureSession", "token": "t", "deploymentId": "dep"}
        sim.handlers.on_frame(sock, orjson.dumps(configure).decode(), 100.0)
        echo = {"action": "echo", "token": "t", "tracingId": "late"}
        sim.handlers.on_frame(sock, orjson.dumps(echo).decode(), 111.0)  # TTL passed, no sweep
        sim.handlers.on_frame(sock, orjson.dumps(configure).decode(), 112.0)
        sim.flusher.flush()
        return _frames(conn.transport.data)

    frames = asyncio.run(scenario())
    assert [f["class"] for f in frames] == ["SessionResponse", "SessionExpiredEvent", "string"]
    expired = frames[1]
    assert expired["type"] == "response" and expired["tracingId"] == "late"
    assert expired["body"] == {}
    assert frames[2]["code"] == 4006  # the token is remembered as expired


def test_a_bug_while_answering_closes_only_that_socket_with_1011() -> None:
    """§8.2 item 8: an unexpected exception closes the socket it happened on, with 1011."""
    config = SimConfig()

    def buggy(sock: Socket, data: str | bytes, now: float) -> None:
        raise RuntimeError("simulated bug")

    async def scenario() -> tuple[_Conn, _Conn]:
        loop = asyncio.get_running_loop()
        sim = SimServer(config)
        bad, good = _Conn(), _Conn()
        bad_sock = Socket(bad, "dep", 0.0, config, sim.flusher)  # type: ignore[arg-type]
        good_sock = Socket(good, "dep", 0.0, config, sim.flusher)  # type: ignore[arg-type]
        holder = SimpleNamespace(sim_on_frame=buggy, loop=loop, protocol=bad.protocol)
        SimConnection._dispatch(holder, bad_sock, Opcode.TEXT, b"{}")  # type: ignore[arg-type]
        holder = SimpleNamespace(sim_on_frame=sim.handlers.on_frame, loop=loop)
        SimConnection._dispatch(holder, good_sock, Opcode.TEXT, b"[]")  # type: ignore[arg-type]
        await asyncio.sleep(0)  # let the close task run
        sim.flusher.flush()
        return bad, good

    bad, good = asyncio.run(scenario())
    assert bad.closed_with == (1011, "internal error")
    assert good.closed_with is None and _frames(good.transport.data)[0]["code"] == 400
