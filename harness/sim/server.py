"""The simulator's WebSocket server: upgrade checks, per-socket loop, timers, shutdown.

protocol.md §8.1 item 1 (start and stop), §8.2 (upgrade and frames), §8.4 item 26 (timers).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from harness.protocol import limits
from harness.sim.bot import Bot
from harness.sim.clock import MessageClock
from harness.sim.config import SimConfig
from harness.sim.connection import PingCountingConnection, SimConnection
from harness.sim.faults import FaultPicker, UpgradeFault
from harness.sim.handlers import Handlers
from harness.sim.ratelimit import SlidingWindow
from harness.sim.sessions import Flusher, SessionStore, Socket
from harness.sim.stats import SimStats

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "server shutting down"


def origin_host(origin: str) -> str:
    """The host of an Origin, without scheme, port or path (§1.3): ``https://h:443/x`` → ``h``."""
    rest = origin.strip()
    if "://" in rest:
        rest = rest.split("://", 1)[1]
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0].lower()
    host, sep, port = rest.rpartition(":")
    if sep and port.isdigit():
        rest = host
    return rest.lower()


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, non-blocking TCP socket; with ``reuse_port`` several processes share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def format_url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'wss' if tls else 'ws'}://{shown}:{port}/v1"


class SimServer:
    """One simulator process: everything it serves, counts and schedules."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self.clock = MessageClock()
        self.picker = FaultPicker(config)
        self.store = SessionStore(config, self.stats, self.picker)
        self.bot = Bot(config, self.stats, self.clock, self.picker)
        self.handlers = Handlers(config, self.stats, self.store, self.bot, self.clock)
        self.flusher = Flusher()
        self._conn_windows: dict[str, SlidingWindow] = {}
        self._server: Server | None = None

    # -- the upgrade (§8.2 item 5) ------------------------------------------------------------

    def _refuse(self, conn: ServerConnection, status: int, text: str) -> Response:
        self.stats.rejected_by_status[str(status)] += 1
        return conn.respond(status, text + "\n")

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """The §8.2 upgrade checks, in order; ``None`` lets the handshake go on (101)."""
        self.stats.upgrades += 1
        url = urlsplit(request.path)
        if url.path != "/v1":
            return self._refuse(conn, 404, "Not Found: the Guest API path is /v1")
        deployment = parse_qs(url.query).get("deploymentId", [""])[0]
        if not deployment:
            return self._refuse(conn, 403, "Forbidden: missing deploymentId")
        if self.config.deployment_ids and deployment not in self.config.deployment_ids:
            return self._refuse(conn, 403, "Forbidden: unknown deploymentId")
        origins = request.headers.get_all("Origin")
        allowed = self.config.allowed_origins
        if origins and allowed and (len(origins) > 1 or origin_host(origins[0]) not in allowed):
            return self._refuse(conn, 403, "Forbidden: origin not allowed")
        retry = self._conn_rate(deployment, asyncio.get_running_loop().time())
        if retry:
            response = self._refuse(conn, 429, "Too Many Requests: connection rate too high")
            response.headers["Retry-After"] = str(retry)
            return response
        fault = self.picker.upgrade()
        if fault is UpgradeFault.REJECT:
            status = self.config.faults.reject_status
            phrase = _phrase(status)
            return self._refuse(conn, status, f"{phrase}: injected fault")
        if fault is UpgradeFault.SLOW:
            await asyncio.sleep(self.config.faults.slow_delay_s)
        assert isinstance(conn, SimConnection)
        conn.sim_deployment = deployment
        return None

    def _conn_rate(self, deployment: str, now: float) -> int:
        rate = self.config.conn_rate_per_process
        if rate is None:
            return 0
        window = self._conn_windows.get(deployment)
        if window is None:
            window = self._conn_windows[deployment] = SlidingWindow(rate, limits.CONN_RATE_WINDOW_S)
        return window.acquire(now)

    # -- one socket ---------------------------------------------------------------------------

    async def handler(self, ws: ServerConnection) -> None:
        """Read frames in order and answer each; a bug closes only this socket (§8.2 item 8)."""
        assert isinstance(ws, SimConnection)
        loop = asyncio.get_running_loop()
        sock = Socket(ws, ws.sim_deployment, loop.time(), self.config, self.flusher)
        on_frame = self.handlers.on_frame
        ws.attach(sock, on_frame)
        self.stats.accepted += 1
        age_handle = self._start_timers(sock, loop)
        try:
            async for data in ws:  # only frames that arrived before attach() come here
                on_frame(sock, data, loop.time())
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("simulator bug while handling a frame; closing this socket")
            await ws.close(1011, "internal error")
        finally:
            sock.closed = True
            self.store.detach(sock)
            if sock.idle_handle is not None:
                sock.idle_handle.cancel()
            if age_handle is not None:
                age_handle.cancel()
        await ws.close()
        await ws.wait_closed()
        self.stats.closes_by_code[str(ws.close_code or 1006)] += 1

    def _start_timers(
        self, sock: Socket, loop: asyncio.AbstractEventLoop
    ) -> asyncio.TimerHandle | None:
        """Idle timeout and max connection age: close 1001 (§8.4 item 26)."""
        idle = self.config.idle_timeout_s
        if idle > 0:

            def idle_check() -> None:
                quiet = loop.time() - sock.last_data
                if quiet >= idle:
                    sock.close(1001, "idle timeout")
                else:
                    sock.idle_handle = loop.call_later(idle - quiet, idle_check)

            sock.idle_handle = loop.call_later(idle, idle_check)
        age = self.config.max_age_s
        if age > 0:
            return loop.call_later(age, sock.close, 1001, "max connection age")
        return None

    # -- start and stop -----------------------------------------------------------------------

    async def start(self, sock: socket.socket, ssl_context: Any = None) -> str:
        """Serve on a bound socket; returns the URL once it accepts connections."""
        faults = self.config.faults
        pings = self.config.idle_counts_pings
        connection_class = PingCountingConnection if pings else SimConnection
        self._server = await serve(
            self.handler,
            sock=sock,
            ssl=ssl_context,
            process_request=self.process_request,
            compression=None,
            ping_interval=None,
            max_size=limits.HARD_FRAME_CAP_BYTES,
            open_timeout=max(10.0, faults.slow_delay_s + 10.0),
            close_timeout=5.0,
            create_connection=connection_class,
            backlog=4096,
        )
        self.store.start_sweep()
        host, port = sock.getsockname()[:2]
        return format_url(self.config.host or host, port, ssl_context is not None)

    async def shutdown(self) -> SimStats:
        """Close every socket with 1001 ``server shutting down`` and wait (§8.1 item 1)."""
        server = self._server
        self.store.stop_sweep()
        if server is not None:
            server.close(code=1001, reason=SHUTDOWN_REASON)
            await server.wait_closed()
        return self.stats


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Refused"


async def run_until_stopped(
    config: SimConfig,
    sock: socket.socket,
    ssl_context: Any,
    stop: asyncio.Event,
    on_ready: Callable[[str], None],
) -> SimStats:
    """Serve until ``stop`` is set, then shut down and return the counters."""
    sim = SimServer(config)
    url = await sim.start(sock, ssl_context)
    on_ready(url)
    await stop.wait()
    return await sim.shutdown()
