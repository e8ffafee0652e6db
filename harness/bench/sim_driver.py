"""The load driver of ``harness bench sim``: closed-loop guests on raw asyncio sockets.

It must not be the bottleneck, so it speaks just enough RFC 6455 by hand: one upgrade
request, pre-built (pre-masked) client frames, and a frame counter on the way in. Each client
sends one ``onMessage`` and waits for ``frames_per_trip`` data frames (2 from the simulator:
echo + bot reply; 1 from an echo server) before sending the next.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

from harness.protocol import codec
from harness.protocol import frames as f

BENCH_DEPLOYMENT = "00000000-0000-4000-8000-00000000bench"
CONNECT_CONCURRENCY = 64


def client_frame(payload: bytes, mask: bytes) -> bytes:
    """A masked, final text frame (RFC 6455 §5.2) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


@dataclass(frozen=True, slots=True)
class DriverPlan:
    """One benchmark cell as the driver sees it."""

    host: str
    port: int
    clients: int
    frames_per_trip: int
    warmup_s: float
    duration_s: float


class BenchClient(asyncio.Protocol):
    """One guest connection in a closed loop (send, await the answer frames, repeat)."""

    def __init__(self, plan: DriverPlan, index: int, opened: asyncio.Future[None]) -> None:
        token = f"bench-{os.getpid()}-{index}"
        mask = os.urandom(4)
        configure = f.ConfigureSession(token=token, deployment_id=BENCH_DEPLOYMENT)
        message = f.OnMessage(token=token, message=f.Message(type="Text", text="round trip"))
        self.configure_frame = client_frame(codec.encode(configure), mask)
        self.message_frame = client_frame(codec.encode(message), mask)
        self.plan = plan
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.configured = False
        self.pending = 0
        self.running = False
        self.trips = 0
        self.sent_ns = 0
        self.latencies_us: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /v1?deploymentId={BENCH_DEPLOYMENT} HTTP/1.1\r\n"
            f"Host: {self.plan.host}:{self.plan.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._fail(f"upgrade refused: {buf[:40]!r}")
                return
            self.upgraded = True
            buf = buf[end + 4 :]
            self.pending = 1
            self._write(self.configure_frame)
        frames, buf = _count_frames(buf)
        self.buf = buf
        if frames:
            self._on_frames(frames)

    def _on_frames(self, frames: int) -> None:
        self.pending -= frames
        if self.pending > 0:
            return
        if not self.configured:
            self.configured = True
            if not self.opened.done():
                self.opened.set_result(None)
            return
        now = time.perf_counter_ns()
        self.trips += 1
        self.latencies_us.append((now - self.sent_ns) // 1000)
        if self.running:
            self.send_message()

    def send_message(self) -> None:
        self.pending = self.plan.frames_per_trip
        self.sent_ns = time.perf_counter_ns()
        self._write(self.message_frame)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost: {exc}"))


def _count_frames(buf: bytes) -> tuple[int, bytes]:
    """Count complete data frames in ``buf``; return the count and the unparsed rest."""
    frames = 0
    pos = 0
    size = len(buf)
    while size - pos >= 2:
        length = buf[pos + 1] & 0x7F
        header = 2
        if length == 126:
            if size - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            header = 4
        elif length == 127:
            if size - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            header = 10
        if size - pos < header + length:
            break
        if buf[pos] & 0x0F in (0, 1, 2):
            frames += 1
        pos += header + length
    return frames, buf[pos:]


async def _open_all(plan: DriverPlan) -> list[BenchClient]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(index: int) -> BenchClient:
        async with gate:
            opened: asyncio.Future[None] = loop.create_future()
            _transport, client = await loop.create_connection(
                lambda: BenchClient(plan, index, opened), plan.host, plan.port
            )
            await asyncio.wait_for(opened, 30)
            return client

    return await asyncio.gather(*(open_one(i) for i in range(plan.clients)))


async def drive(plan: DriverPlan, pipe: Connection | None = None) -> dict[str, Any]:
    """Open the clients, warm up, measure; tell ``pipe`` when the window starts and ends."""
    clients = await _open_all(plan)
    for client in clients:
        client.running = True
        client.send_message()
    await asyncio.sleep(plan.warmup_s)
    if pipe is not None:
        pipe.send(("measure-start", None))
    start_trips = sum(c.trips for c in clients)
    start_lat = [len(c.latencies_us) for c in clients]
    started = time.perf_counter()
    await asyncio.sleep(plan.duration_s)
    elapsed = time.perf_counter() - started
    trips = sum(c.trips for c in clients) - start_trips
    if pipe is not None:
        pipe.send(("measure-end", None))
    latencies = sorted(
        lat for c, n in zip(clients, start_lat, strict=True) for lat in c.latencies_us[n:]
    )
    for client in clients:
        client.running = False
        if client.transport is not None:
            client.transport.close()
    return {
        "trips": trips,
        "elapsed_s": elapsed,
        "trips_per_s": trips / elapsed if elapsed > 0 else 0.0,
        "p50_us": latencies[len(latencies) // 2] if latencies else None,
        "p99_us": latencies[int(len(latencies) * 0.99)] if latencies else None,
        "total_trips": sum(c.trips for c in clients),
    }


def driver_process(plan: DriverPlan, pipe: Connection) -> None:
    """Entry point of the driver process (uvloop when available)."""
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    try:
        with runner:
            result = runner.run(drive(plan, pipe))
    except Exception as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("result", result))
