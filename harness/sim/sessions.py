"""Sockets, sessions and the session store (protocol.md §7 and §8.4 items 9-13, 24).

Everything here runs on the event loop thread and never awaits: sends are synchronous writes
(``broadcast``), and closes are scheduled as tasks, so one slow socket never delays another.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from harness.protocol import codec, limits
from harness.protocol import frames as f
from harness.sim.config import SimConfig
from harness.sim.faults import FaultPicker, SessionFault
from harness.sim.ratelimit import SlidingWindow, make_window
from harness.sim.stats import SimStats

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Grace before the server closes a socket it sent ``ConnectionClosedEvent`` (§8.4 item 10).
CLOSE_GRACE_S = 1.0


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 §5.2), the way a server sends one."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class Flusher:
    """Coalesces everything written to a socket in one loop iteration into one write.

    On a small VM each ``write`` syscall costs tens of microseconds, and a guest text gets two
    frames at once (echo + zero-latency reply): batching them halves the syscalls. The frames
    are framed here (text frames need no state) and bypass the library's per-frame
    serialisation; the library still writes its own control frames (pongs, closes).
    """

    __slots__ = ("_dirty", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[Socket] = []
        self._scheduled = False

    def mark(self, sock: Socket) -> None:
        self._dirty.append(sock)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for sock in dirty:
            sock.flush()


class Socket:
    """One accepted WebSocket connection and its per-connection state (§7.1)."""

    __slots__ = (
        "closed",
        "deployment_id",
        "dirty",
        "echo_window",
        "flusher",
        "idle_handle",
        "last_data",
        "opened",
        "out",
        "req_window",
        "session",
        "tasks",
        "ws",
    )

    def __init__(
        self,
        ws: ServerConnection,
        deployment_id: str,
        now: float,
        config: SimConfig,
        flusher: Flusher,
    ) -> None:
        self.ws = ws
        self.flusher = flusher
        self.dirty = False
        self.out: list[bytes] = []
        self.deployment_id = deployment_id
        self.opened = now
        self.last_data = now
        self.session: Session | None = None
        self.req_window = make_window(config.limits.req_rate, limits.REQ_RATE_WINDOW_S)
        self.echo_window = make_window(config.limits.echo_rate, limits.ECHO_RATE_WINDOW_S)
        self.idle_handle: asyncio.TimerHandle | None = None
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def is_open(self) -> bool:
        return not self.closed and self.ws.protocol.state is State.OPEN

    def write(self, data: bytes) -> None:
        """Queue one text frame with ``data`` (see ``write_frame``)."""
        self.write_frame(text_frame(data))

    def write_frame(self, frame: bytes) -> None:
        """Queue one framed message; it leaves at the end of this loop iteration, never
        waiting for the client (no backpressure: a simulator's choice)."""
        if self.ws.protocol.state is not State.OPEN:
            return
        self.out.append(frame)
        if not self.dirty:
            self.dirty = True
            self.flusher.mark(self)

    def flush(self) -> None:
        """Write the queued frames with one ``write`` call, unless closing has begun."""
        self.dirty = False
        out, self.out = self.out, []
        if not out or self.ws.protocol.state is not State.OPEN:
            return
        transport = self.ws.transport
        if not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake with ``code`` in a task of its own."""
        if not self.is_open:
            return
        task = asyncio.get_running_loop().create_task(self.ws.close(code, reason))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def close_later(self, delay_s: float, code: int, reason: str) -> None:
        """Close after a grace period, unless the client has closed already (§8.4 item 10)."""
        asyncio.get_running_loop().call_later(delay_s, self.close, code, reason)

    def abort(self, attempts: int = 50) -> None:
        """Drop the TCP connection without a close frame: the client sees 1006 (§8.4 item 27).

        Frames already written are flushed first (abort discards the write buffer), waiting
        up to ``attempts`` x 10 ms.
        """
        if self.closed:
            return
        if self.dirty:
            self.flush()
        transport = self.ws.transport
        if transport.get_write_buffer_size() > 0 and attempts > 0:
            asyncio.get_running_loop().call_later(0.01, self.abort, attempts - 1)
            return
        transport.abort()


@dataclass(slots=True)
class Attachment:
    """One file announced with ``onAttachment`` (§2.6, §8.4 item 25)."""

    attachment_id: str
    file_name: str
    file_type: str
    file_size: int
    uploaded: bool = False
    sent: bool = False


class Session:
    """A guest session keyed by its token (§7.1): active, read-only, or gone."""

    __slots__ = (
        "attachments",
        "authenticated",
        "bot_queue",
        "bot_replies",
        "bot_timer",
        "configure_window",
        "deployment_id",
        "fault",
        "last_activity",
        "last_due",
        "msg_window",
        "read_only",
        "sockets",
        "token",
    )

    def __init__(
        self,
        token: str,
        deployment_id: str,
        *,
        authenticated: bool,
        now: float,
        config: SimConfig,
        fault: SessionFault,
    ) -> None:
        self.token = token
        self.deployment_id = deployment_id
        self.authenticated = authenticated
        self.sockets: list[Socket] = []  # in configure order: the oldest first (§7.2)
        self.read_only = False
        self.last_activity = now
        self.configure_window = make_window(
            config.limits.configure_rate, limits.CONFIGURE_RATE_WINDOW_S
        )
        self.msg_window: SlidingWindow | None = make_window(
            config.limits.msg_rate, limits.MSG_RATE_WINDOW_S
        )
        self.attachments: dict[str, Attachment] = {}
        self.fault = fault
        self.bot_replies = 0
        self.bot_queue: deque[Any] = deque()
        self.bot_timer: asyncio.TimerHandle | None = None
        self.last_due = 0.0

    def push(self, data: bytes) -> int:
        """Fan a pushed frame out to every socket of the session (§7.2); returns the count."""
        if self.sockets:
            frame = text_frame(data)
            for sock in self.sockets:
                sock.write_frame(frame)
        return len(self.sockets)

    def cancel_bot(self) -> None:
        """Drop every pending bot output: no replay (§8.4 item 21)."""
        self.bot_queue.clear()
        if self.bot_timer is not None:
            self.bot_timer.cancel()
            self.bot_timer = None


#: Expired tokens remembered for 4006 (§8.4 item 12); the oldest are forgotten beyond this, so
#: a long soak with a short TTL cannot grow the simulator without bound (~100 MB at the cap).
MAX_REMEMBERED_EXPIRED = 1_000_000


class ExpiredTokens:
    """An insertion-ordered set of expired tokens that forgets the oldest beyond ``limit``."""

    __slots__ = ("_limit", "_tokens")

    def __init__(self, limit: int = MAX_REMEMBERED_EXPIRED) -> None:
        self._limit = limit
        self._tokens: dict[str, None] = {}

    def __contains__(self, token: object) -> bool:
        return token in self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, token: str) -> None:
        self._tokens[token] = None
        if len(self._tokens) > self._limit:
            del self._tokens[next(iter(self._tokens))]

    def discard(self, token: str) -> None:
        self._tokens.pop(token, None)


class SessionStore:
    """All sessions of this process, the tokens remembered as expired, and the TTL sweep."""

    def __init__(self, config: SimConfig, stats: SimStats, picker: FaultPicker) -> None:
        self.config = config
        self.stats = stats
        self.picker = picker
        self.sessions: dict[str, Session] = {}
        self.expired = ExpiredTokens()
        self._sweeper: asyncio.TimerHandle | None = None
        #: set by the bot: called when a session's pending output must be dropped.
        self.on_session_end: Callable[[Session], None] = Session.cancel_bot

    # -- lifecycle ------------------------------------------------------------------------

    def create(self, token: str, deployment_id: str, authenticated: bool, now: float) -> Session:
        """A new session; its fault is drawn in creation order (§8.1 item 3)."""
        session = Session(
            token,
            deployment_id,
            authenticated=authenticated,
            now=now,
            config=self.config,
            fault=self.picker.session(),
        )
        self.sessions[token] = session
        self.expired.discard(token)
        self.stats.sessions += 1
        return session

    def attach(self, sock: Socket, session: Session) -> None:
        """Move ``sock`` into ``session`` and apply the socket limit (§8.4 items 9-10)."""
        if sock.session is not None and sock.session is not session:
            self.detach(sock)
        sock.session = session
        if sock in session.sockets:
            return  # a repeat configure is a resume: not counted twice
        session.sockets.append(sock)
        limit = self.config.limits.sockets
        while limit is not None and len(session.sockets) > limit:
            oldest = session.sockets.pop(0)
            oldest.session = None
            oldest.write(codec.encode(f.ConnectionClosedEvent()))
            oldest.close_later(CLOSE_GRACE_S, 1000, "connection limit")

    def detach(self, sock: Socket) -> None:
        """Take ``sock`` out of its session; the socket stays open (§7.1 detached)."""
        session = sock.session
        sock.session = None
        if session is not None and sock in session.sockets:
            session.sockets.remove(sock)

    def expire(self, session: Session, answering: Socket | None, tracing_id: str | None) -> None:
        """TTL passed (§8.4 item 12): SessionExpiredEvent to every socket, token remembered."""
        pushed = codec.encode(f.SessionExpiredEvent())
        for sock in session.sockets:
            if sock is answering:
                sock.write(
                    codec.encode(f.SessionExpiredEvent(kind="response", tracing_id=tracing_id))
                )
            else:
                sock.write(pushed)
            sock.session = None
        session.sockets.clear()
        self._end(session)
        self.expired.add(session.token)

    def clear(self, session: Session) -> None:
        """Presence Clear (§8.4 item 24): cleared + closed events, 1000 after the grace."""
        session.push(codec.encode(f.SessionClearedEvent()))
        session.push(codec.encode(f.ConnectionClosedEvent()))
        for sock in session.sockets:
            sock.session = None
            sock.close_later(CLOSE_GRACE_S, 1000, "session cleared")
        session.sockets.clear()
        self._end(session)  # the token is forgotten: reusing it starts a new session

    def close_others(self, session: Session, caller: Socket) -> None:
        """``closeSession`` with closeAllConnections:true (§8.4 item 13)."""
        closed = codec.encode(f.ConnectionClosedEvent())
        for sock in [s for s in session.sockets if s is not caller]:
            session.sockets.remove(sock)
            sock.session = None
            sock.write(closed)
            sock.close_later(CLOSE_GRACE_S, 1000, "session closed")

    def _end(self, session: Session) -> None:
        self.on_session_end(session)
        if self.sessions.get(session.token) is session:
            del self.sessions[session.token]

    def is_expired(self, session: Session, now: float) -> bool:
        return now - session.last_activity >= self.config.session_ttl_s

    # -- the TTL sweep ----------------------------------------------------------------------

    def start_sweep(self) -> None:
        """Check expiry at least every second (§8.4 item 12)."""
        loop = asyncio.get_running_loop()
        interval = min(1.0, max(0.05, self.config.session_ttl_s / 4))

        def tick() -> None:
            now = loop.time()
            for session in [s for s in self.sessions.values() if self.is_expired(s, now)]:
                self.expire(session, None, None)
            self._sweeper = loop.call_later(interval, tick)

        self._sweeper = loop.call_later(interval, tick)

    def stop_sweep(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
