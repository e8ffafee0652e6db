"""GuestClient: one virtual guest on one socket at a time (protocol.md §2, §7).

The client owns I/O and time; the rules live in :class:`harness.protocol.session.GuestSession`.
A reader greenlet per connection decodes frames and feeds the session; request methods register
a pending entry, send, and wait on a gevent Event with a deadline, then report one
:class:`StepOutcome` per measured step through the ``report`` callback given to the constructor
(Locust style: no globals). Failures are reported first, then raised as the harness exception
tree, so a caller may ignore the exception without losing the measurement.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from harness.client import wire
from harness.client.heartbeat import Heartbeat
from harness.client.options import ClientOptions
from harness.client.outcomes import (
    answer_row,
    close_row,
    connect_failure,
    failure,
    integrity_row,
    step_outcome,
    stray_error_row,
    us,
)
from harness.client.results import IntegrityCounters, StepOutcome
from harness.client.transport import OP_TEXT, Transport
from harness.errors import (
    ConnectError,
    HarnessError,
    InvalidState,
    ProtocolViolation,
    RateLimited,
    UnexpectedClose,
    UsageError,
)
from harness.protocol import codec
from harness.protocol.codes import Close, CloseCode
from harness.protocol.frames import (
    ConfigureSession,
    ConnectionClosedEvent,
    ErrorResponse,
    GetJwt,
    JwtResponse,
    SessionClearedEvent,
    SessionResponse,
    TooManyRequests,
)
from harness.protocol.limits import MIN_HEARTBEAT_INTERVAL_S
from harness.protocol.session import (
    Anomaly,
    Event,
    GuestSession,
    Kind,
    Outcome,
    Pending,
    ProtocolError,
    Pushed,
    Settled,
    SocketState,
    StrayError,
)

log = logging.getLogger(__name__)

Report = Callable[[StepOutcome], None]

PRESENCE_KINDS = frozenset({"Join", "Clear", "Disconnect"})


class GuestClient:
    """A guest on the Guest API: connect, configure, send, await, heartbeat, close.

    Exactly-once accounting: every :meth:`connect` reports one ``connect`` outcome, and every
    established connection that ends reports one ``close`` outcome from its reader (1006 with
    initiator ``none`` when no close frame arrived).
    """

    __slots__ = (
        "_closed_event",
        "_hb",
        "_last_echo_ns",
        "_notice",
        "_quiet_ns",
        "_reader",
        "_session",
        "_tracing_id",
        "_transport",
        "close_info",
        "conn_id",
        "counters",
        "custom_attributes",
        "inbox",
        "options",
        "report",
        "token",
        "url",
    )

    def __init__(
        self,
        url: str,
        options: ClientOptions,
        report: Report,
        token: str | None = None,
    ) -> None:
        self.url = url
        self.options = options
        self.report = report
        self.token = token or str(uuid.uuid4())
        self.conn_id = 0
        self.counters = IntegrityCounters()
        self.close_info: Close | None = None
        self._session: GuestSession | None = None
        self._transport: Transport | None = None
        self._reader: Any = None  # the reader's raw greenlet (gevent.spawn_raw)
        self._closed_event: gevent.event.Event | None = None
        self._notice: gevent.event.Event | None = None
        self._hb: Heartbeat | None = None
        self._last_echo_ns = 0
        self._tracing_id = wire.TracingIds()
        self._quiet_ns = int(options.answer_quiet_s * 1e9)
        #: sent as ``message.channel.metadata.customAttributes`` on every text, quick-reply
        #: answer and presence event (not on typing); None sends none (§2.3)
        self.custom_attributes: dict[str, str] | None = None
        #: every outbound message and event of the current socket with its arrival time
        #: (``options.keep_inbox``); whoever reads it may trim it
        self.inbox: list[tuple[int, Any]] | None = [] if options.keep_inbox else None

    # --- state ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True when no connection is open (never connected, or the last one ended)."""
        return self._session is None or self._session.state is SocketState.CLOSED

    @property
    def state(self) -> SocketState:
        """The §7.1 socket state of the current connection."""
        return SocketState.CLOSED if self._session is None else self._session.state

    @property
    def read_only(self) -> bool:
        """True once the conversation ended in ReadOnly mode (§7.1); ``configure(True)`` resets."""
        return self._session is not None and self._session.read_only

    @property
    def new_session(self) -> bool | None:
        """``newSession`` of the last SessionResponse on this connection."""
        return None if self._session is None else self._session.new_session

    def _live(self) -> tuple[GuestSession, Transport]:
        session, transport = self._session, self._transport
        if session is None or transport is None or session.state is SocketState.CLOSED:
            raise InvalidState("not connected")
        return session, transport

    # --- connect / close --------------------------------------------------------------------

    def connect(self) -> None:
        """Open a new socket (TCP, TLS, upgrade) and start its reader; reports ``connect``.

        Raises:
            InvalidState: a connection is still open.
            HandshakeRejected: the upgrade was refused (status, headers and body kept).
            ConnectError: DNS, refused, timeout, TLS or other connect failure.
        """
        if not self.closed:
            raise InvalidState("already connected; close() first")
        self.conn_id += 1
        ts, t0 = time.time_ns(), time.perf_counter_ns()
        try:
            transport = Transport.connect(self.url, self.options.transport())
        except ConnectError as exc:
            self._connect_failed(exc, ts, t0)
            raise
        session = GuestSession(int(self.options.reply_timeout_s * 1e9), self.counters)
        session.inbox = self.inbox
        session.upgraded()
        self._session, self._transport = session, transport
        self.close_info = None
        self._last_echo_ns = 0
        self._closed_event = gevent.event.Event()
        self.report(
            StepOutcome("connect", ts, us(t0, time.perf_counter_ns()), True, http_status=101)
        )
        # a raw greenlet: nothing joins or links the reader (it signals _closed_event), and a
        # gevent.Greenlet object with its link machinery is ~0.8 KiB more per connection
        self._reader = gevent.spawn_raw(self._read, session, transport, self._closed_event)

    def _connect_failed(self, exc: ConnectError, ts: int, t0: int) -> None:
        """Report a failed connect; an HTTP 429 is rate limiting, not a failure of the server:
        it is counted and its ``Retry-After`` waited out (bounded) before the raise (§4.3)."""
        row, retry_after = connect_failure(exc, ts, us(t0, time.perf_counter_ns()))
        self.report(row)
        if retry_after is not None:
            self.counters.rate_limited += 1
            gevent.sleep(min(retry_after, self.options.max_retry_after_s))

    def close(self, code: int = CloseCode.NORMAL_CLOSURE) -> Close:
        """Close from our side and wait (bounded) for the server's close frame.

        Returns the recorded close; when the server does not answer within
        ``close_timeout_s`` the TCP connection is cut and the close is 1006.

        Raises:
            InvalidState: never connected.
        """
        transport, done = self._transport, self._closed_event
        if transport is None or done is None:
            raise InvalidState("never connected")
        if not done.is_set():
            self.stop_heartbeat(drain_s=self.options.close_timeout_s)
            transport.send_close(code)
            if not done.wait(self.options.close_timeout_s):
                transport.abort()
                done.wait(self.options.close_timeout_s)
        return self.close_info or Close.abnormal("reader did not finish")

    def wait_closed(self, timeout_s: float) -> Close | None:
        """Wait until the current connection has ended; None on timeout."""
        done = self._closed_event
        if done is None:
            return self.close_info
        done.wait(timeout_s)
        return self.close_info

    def _read(self, session: GuestSession, transport: Transport, done: gevent.event.Event) -> None:
        """The reader greenlet: frames in until the end, then exactly one ``close`` outcome."""
        close = transport.read_loop(functools.partial(self._on_data, session))
        try:
            self._closed(session, transport, close)
        finally:  # waiters are released even if the report callback fails
            done.set()
            self._wake()

    def _closed(self, session: GuestSession, transport: Transport, close: Close) -> None:
        now, ts = time.perf_counter_ns(), time.time_ns()
        events = session.closed(close, now)
        self.close_info = close
        if session is self._session:
            self.stop_heartbeat()
        self._dispatch(events, 0)
        self.report(close_row(close, transport, now, ts))

    # --- frames in --------------------------------------------------------------------------

    def _on_data(self, session: GuestSession, opcode: int, data: bytes) -> None:
        """One data frame from the reader; never raises (§3.1: record it and continue)."""
        now = time.perf_counter_ns()
        if opcode != OP_TEXT:
            error = session.protocol_error("binary frame (text only: docs/guest-api.md#frames)")
            self._dispatch([error], 0)
            return
        try:
            frame = wire.decode(data)
        except ProtocolViolation as exc:
            self._dispatch([session.protocol_error(str(exc)[:200])], 0)
            return
        except Exception as exc:  # a decoder bug must not kill the reader
            log.debug("decoder failed", exc_info=True)
            self._dispatch([session.protocol_error(f"undecodable frame: {exc!r}"[:200])], 0)
            return
        inbox = self.inbox
        if inbox is None:
            self._dispatch(session.feed(frame, now), len(data))
            return
        seen = len(inbox)
        self._dispatch(session.feed(frame, now), len(data))
        if len(inbox) != seen:
            self._wake()  # a script waiting on the inbox looks again

    def _dispatch(self, events: list[Event], size: int) -> None:
        for event in events:
            if type(event) is Settled:
                self._settled(event.pending, event.part, size)
            elif type(event) is Anomaly:
                self._integrity(event.kind, event.detail)
            elif type(event) is ProtocolError:
                self.report(
                    StepOutcome(
                        "error", time.time_ns(), None, False, "protocol", detail=event.detail
                    )
                )
            elif type(event) is StrayError:
                self._stray(event.frame)
            elif type(event) is Pushed:
                self._pushed(event.frame)

    def _settled(self, pending: Pending, part: str, size: int) -> None:
        if size:
            if part == "answer":
                pending.answer_bytes = size
            elif part != "end":
                if part == "reply":
                    pending.reply_bytes = size
                pending.bot_bytes += size
        if not pending.done:
            if part == "reply" and pending.collecting and pending.waiter is not None:
                pending.waiter.set()  # the answer opened: the waiter re-arms for its quiet end
            return
        waiter = pending.waiter
        if waiter is not None:
            waiter.set()
        elif pending.answer is Outcome.TIMEOUT:
            self._integrity("lost", pending.kind.value)

    def _integrity(self, kind: str, detail: str) -> None:
        self.report(integrity_row(kind, detail))

    def _stray(self, frame: ErrorResponse | TooManyRequests) -> None:
        self.report(stray_error_row(frame))

    def _pushed(self, frame: object) -> None:
        if (
            isinstance(frame, ConnectionClosedEvent)
            and self.options.close_on_connection_closed_event
        ):
            transport = self._transport
            if transport is not None:
                transport.send_close(CloseCode.NORMAL_CLOSURE)  # §3.2: clients close with 1000
        if isinstance(frame, ConnectionClosedEvent | SessionClearedEvent) or getattr(
            frame, "read_only_disconnect", False
        ):
            self._wake()

    def _wake(self) -> None:
        notice = self._notice
        if notice is not None:
            self._notice = None
            notice.set()

    def wait_change(self, timeout_s: float) -> None:
        """Wait (bounded) until the next notice: a message in the inbox, the conversation
        becoming read-only or cleared, a ConnectionClosedEvent, or the socket closing."""
        if self.closed:
            return
        if self._notice is None:
            self._notice = gevent.event.Event()
        self._notice.wait(timeout_s)

    def wait_read_only(self, timeout_s: float) -> bool:
        """Wait (bounded) until the conversation is read-only (§7.1); True if it is."""
        deadline = time.perf_counter_ns() + int(timeout_s * 1e9)
        while not self.read_only and not self.closed:
            remaining = (deadline - time.perf_counter_ns()) / 1e9
            if remaining <= 0:
                break
            self.wait_change(remaining)
        return self.read_only

    # --- requests ---------------------------------------------------------------------------

    def _start(
        self,
        kind: Kind,
        step: str,
        build: Callable[[str], bytes],
        *,
        text: str | None = None,
        want_reply: bool = False,
        wait: bool = True,
        custom_id: bool = False,
        collect: bool = False,
    ) -> tuple[Pending, int, int]:
        """Register, encode and send one request; returns (pending, wall ts, bytes sent).

        Raises:
            InvalidState: not connected, or the session state forbids the action.
            UnexpectedClose: the send failed because the socket is gone (reported as ``step``).
        """
        session, transport = self._live()
        tracing_id = self._tracing_id()
        now = time.perf_counter_ns()
        if session.pending_count:
            self._dispatch(session.expire(now), 0)
        pending = session.begin(
            kind,
            tracing_id,
            now,
            text=text,
            want_reply=want_reply,
            custom_message_id=tracing_id if custom_id else None,
            quiet_ns=self._quiet_ns if collect else 0,
            ends_on_content=self.options.answer_ends_on_quick_replies,
        )
        if wait:
            pending.waiter = gevent.event.Event()
        ts = time.time_ns()
        try:
            size = transport.send_text(build(tracing_id))
        except ConnectionError as exc:
            session.abandon(pending)
            closed = UnexpectedClose(self.close_info or Close.abnormal(str(exc)))
            self.report(
                StepOutcome(
                    step,
                    ts,
                    None,
                    False,
                    "closed",
                    detail=str(exc)[:200],
                    exception=closed,
                )
            )
            raise closed from exc
        return pending, ts, size

    def _await(self, pending: Pending) -> None:
        """Wait until every awaited part is settled and the bot's answer has closed; the
        deadline settles the rest as lost, the quiet period closes the answer.

        The wake-up is a bare hub timer that sets the waiter (cheaper than a gevent.Timeout).
        """
        waiter = pending.waiter
        loop = gevent.get_hub().loop
        while not pending.done:
            remaining = (pending.wake_ns - time.perf_counter_ns()) / 1e9
            if remaining > 0:
                timer = loop.timer(remaining)
                timer.start(waiter.set)
                try:
                    waiter.wait()
                finally:
                    timer.close()
                if pending.done:
                    return
                waiter.clear()
            session = self._session
            if session is not None:
                self._dispatch(session.expire(time.perf_counter_ns()), 0)
            if not pending.done and remaining <= 0:
                return  # the session no longer holds it (socket replaced): give up

    def _outcome(
        self,
        step: str,
        pending: Pending,
        ts: int,
        outcome: Outcome | None,
        end_ns: int,
        **sizes: int | None,
    ) -> HarnessError | None:
        """Report one step of a settled request; return the exception to raise, if any."""
        row, exc = step_outcome(
            step,
            pending,
            ts,
            outcome,
            end_ns,
            close=self.close_info,
            timeout_s=self.options.reply_timeout_s,
            **sizes,
        )
        self.report(row)
        return exc

    def _raise(self, exc: HarnessError | None) -> None:
        """Raise after reporting; a 429 first waits its retryAfter (bounded, §4.3)."""
        if exc is None:
            return
        if isinstance(exc, RateLimited):
            gevent.sleep(min(exc.retry_after_s, self.options.max_retry_after_s))
        raise exc

    def configure(self, start_new: bool = False) -> SessionResponse:
        """Send ``configureSession`` (§2.1) and wait for the SessionResponse.

        The same token on a new socket resumes the session (``newSession:false``, §7.2).
        ``start_new`` starts a new conversation on a read-only one (§2.1).

        Raises:
            InvalidState, UnexpectedClose, ServerErrorFrame, RateLimited, ResponseTimeout.
        """
        opts = self.options
        pending, ts, size = self._start(
            Kind.CONFIGURE,
            "configureSession",
            lambda tid: codec.encode(
                ConfigureSession(
                    token=self.token,
                    deployment_id=opts.deployment_id,
                    tracing_id=tid,
                    start_new=True if start_new else None,
                )
            ),
        )
        self._await(pending)
        exc = self._outcome(
            "configureSession",
            pending,
            ts,
            pending.answer,
            pending.answer_ns,
            bytes_out=size,
            bytes_in=pending.answer_bytes or None,
        )
        self._raise(exc)
        assert isinstance(pending.frame, SessionResponse)
        return pending.frame

    def send_text(
        self,
        text: str,
        intended_ns: int | None = None,
        attributes: dict[str, str] | None = None,
        reply_errors: bool = True,
    ) -> Pending:
        """Send a guest text (§2.3); report ``onMessage`` (echo), ``botReply`` (first bot
        message, §7.3 rule 4) and ``botAnswer`` (the whole answer). Returns when the answer
        has closed; ``attributes`` are merged over :attr:`custom_attributes` for this text.

        Raises:
            RateLimited: 429 (after waiting ``retryAfter``, bounded); not a failure.
            ServerErrorFrame, ResponseTimeout, UnexpectedClose, InvalidState.
        """
        message = wire.text_message(text)
        if attributes:
            merged = {**(self.custom_attributes or {}), **attributes}
            message["channel"] = {"metadata": {"customAttributes": merged}}
        return self._turn(message, text, intended_ns, reply_errors)

    def send_quick_reply(
        self,
        text: str,
        payload: str,
        intended_ns: int | None = None,
        reply_errors: bool = True,
    ) -> Pending:
        """Answer a quick reply with a ButtonResponse (§2.3, the official web client's shape)."""
        message = wire.quick_reply_message(text, payload)
        return self._turn(message, text, intended_ns, reply_errors)

    def _turn(
        self,
        message: dict[str, Any],
        text: str | None,
        intended_ns: int | None,
        reply_errors: bool = True,
    ) -> Pending:
        """One guest turn: onMessage (echo), botReply (first message), botAnswer (the whole
        answer, see :class:`~harness.protocol.session.Pending`); returns the settled request.
        ``reply_errors`` False raises only for the message itself (a script judges the
        replies), never for a missing bot reply (it is reported all the same).
        """
        token = self.token
        tag = self.options.send_custom_message_id  # §7.3 rule 2, for servers without rule 1
        message = self._with_attributes(message)
        pending, ts, size = self._start(
            Kind.MESSAGE,
            "onMessage",
            lambda tid: wire.on_message(token, tid, wire.tagged(message, tid) if tag else message),
            text=text,
            want_reply=True,
            custom_id=tag,
            collect=True,
        )
        self._await(pending)
        exc = self._outcome(
            "onMessage",
            pending,
            ts,
            pending.answer,
            pending.answer_ns,
            bytes_out=size,
            bytes_in=pending.answer_bytes or None,
            intended_ns=intended_ns,
        )
        reply = pending.reply
        replied = reply is not None and reply is not Outcome.CANCELLED
        if replied and (exc is None or reply is Outcome.OK):
            reply_exc = self._outcome(
                "botReply",
                pending,
                ts,
                reply,
                pending.reply_ns,
                bytes_in=pending.reply_bytes or None,
                intended_ns=intended_ns,
            )
            if reply_errors:
                exc = exc or reply_exc
        if reply is Outcome.OK:
            self.report(answer_row(pending, ts, intended_ns))
        self._raise(exc)
        return pending

    def _with_attributes(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = self.custom_attributes
        if not attributes or "channel" in message:  # a text's own attributes already merged
            return message
        return {**message, "channel": {"metadata": {"customAttributes": attributes}}}

    def send_typing(self) -> None:
        """Typing On (§2.3), fire-and-forget: reports ``typing`` with no latency.

        Its echo is still correlated (and counted lost if it never comes).
        """
        token = self.token
        message = wire.event_message(wire.TYPING_ON)
        _, ts, size = self._start(
            Kind.MESSAGE,
            "typing",
            lambda tid: wire.on_message(token, tid, message),
            wait=False,
        )
        self.report(StepOutcome("typing", ts, None, True, bytes_out=size))

    def send_presence(self, kind: str, wait_reply: bool = False) -> None:
        """Presence Join, Clear or Disconnect (§2.3); waits for its echo, reports ``presence``.

        ``wait_reply`` also waits for the first bot reply (a welcome after Join, §8.4 item 22)
        so it is not taken for the next text's reply; otherwise a welcome counts unsolicited.

        Raises:
            UsageError: an unknown presence kind.
            ServerErrorFrame (e.g. 403 when Clear is off), RateLimited, ResponseTimeout,
            UnexpectedClose, InvalidState.
        """
        if kind not in PRESENCE_KINDS:
            raise UsageError(f"presence kind must be one of {sorted(PRESENCE_KINDS)}, got {kind!r}")
        token = self.token
        message = self._with_attributes(wire.event_message(wire.presence(kind)))
        pending, ts, size = self._start(
            Kind.MESSAGE,
            "presence",
            lambda tid: wire.on_message(token, tid, message),
            want_reply=wait_reply,
            collect=wait_reply,
        )
        self._await(pending)
        exc = self._outcome(
            "presence", pending, ts, pending.answer, pending.answer_ns, bytes_out=size
        )
        if exc is None and wait_reply and pending.reply is not Outcome.OK:
            exc = failure(pending, pending.reply, self.close_info, self.options.reply_timeout_s)
        self._raise(exc)

    def echo(self) -> None:
        """The ``echo`` health check (§2.4); reports ``echo``.

        Raises:
            UsageError: less than 30 s since the last echo on this connection (the limit is 2
                per minute, §2.4) and ``allow_fast_heartbeat`` is not set.
            RateLimited, ServerErrorFrame, ResponseTimeout, UnexpectedClose, InvalidState.
        """
        now = time.perf_counter_ns()
        gap_s = (now - self._last_echo_ns) / 1e9
        too_soon = self._last_echo_ns and gap_s < MIN_HEARTBEAT_INTERVAL_S
        if too_soon and not self.options.allow_fast_heartbeat:
            raise UsageError(
                f"echo {gap_s:.1f} s after the last one: limit is 2/min (docs/guest-api.md#limits)"
            )
        token = self.token
        pending, ts, size = self._start(
            Kind.ECHO,
            "echo",
            lambda tid: wire.echo(token, tid),
        )
        self._last_echo_ns = now
        self._await(pending)
        self._raise(
            self._outcome(
                "echo",
                pending,
                ts,
                pending.answer,
                pending.answer_ns,
                bytes_out=size,
                bytes_in=pending.answer_bytes or None,
            )
        )

    def get_jwt(self) -> int:
        """``getJwt`` (§2.5); returns ``exp`` only, the JWT never leaves this method.

        Reports ``getJwt``.

        Raises:
            ServerErrorFrame, RateLimited, ResponseTimeout, UnexpectedClose, InvalidState,
            ProtocolViolation (the answer was not a JwtResponse).
        """
        token = self.token
        pending, ts, size = self._start(
            Kind.JWT, "getJwt", lambda tid: codec.encode(GetJwt(token=token, tracing_id=tid))
        )
        self._await(pending)
        self._raise(
            self._outcome("getJwt", pending, ts, pending.answer, pending.answer_ns, bytes_out=size)
        )
        frame = pending.frame
        if not isinstance(frame, JwtResponse):
            raise ProtocolViolation(f"getJwt answered by {type(frame).__name__}")
        return frame.exp

    # --- heartbeat --------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Echo every ``heartbeat_interval_s`` (:mod:`harness.client.heartbeat`).

        Stopped automatically when the connection ends; a no-op when the interval is 0.
        """
        interval = self.options.heartbeat_interval_s
        if interval > 0 and self._hb is None:
            self._hb = Heartbeat(interval, self._heartbeat_once, self._configured)

    def stop_heartbeat(self, drain_s: float = 0.0) -> None:
        """Stop the heartbeat (idempotent); ``drain_s`` lets an echo in flight finish first."""
        hb, self._hb = self._hb, None
        if hb is not None:
            hb.stop(drain_s)

    def _configured(self) -> bool:
        return self.state is SocketState.CONFIGURED

    def _heartbeat_once(self) -> None:
        try:
            self.echo()
        except UsageError:
            pass  # a manual echo ran less than 30 s ago: skip this beat
        except HarnessError as exc:
            log.debug("heartbeat echo failed: %s", exc)  # already reported
