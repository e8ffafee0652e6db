"""The guest side's correlation state machine, sans-I/O (protocol.md §7.1 and §7.3).

Feed it decoded server frames with a monotonic ``now_ns``; it settles pending requests and
returns typed events saying what happened. Sends go through :meth:`GuestSession.begin`, which
raises :class:`~harness.errors.InvalidState` before anything reaches the wire when the socket
state does not allow the action. No I/O, no clock, no gevent: the client owns those.

Every awaited part of a request is settled exactly once: by its answer, by its deadline
(:meth:`GuestSession.expire`) or by the socket closing (:meth:`GuestSession.closed`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

from harness.errors import InvalidState
from harness.protocol.codec import parse_channel_time
from harness.protocol.codes import Close
from harness.protocol.frames import (
    INBOUND,
    RESPONSE,
    ConnectionClosedEvent,
    ErrorResponse,
    JwtResponse,
    ServerFrame,
    SessionClearedEvent,
    SessionExpiredEvent,
    SessionResponse,
    StructuredMessage,
    TooManyRequests,
)

#: How many recent ``body.id`` values a socket remembers for duplicate detection (§7.3 rule 6).
#: Stored as 64-bit hashes in a ring: a few hundred bytes per socket, not a growing set.
DUPLICATE_WINDOW = 32
_KEY = struct.Struct("=q")  # one ring slot: a native 64-bit hash
_ISO_MS_LEN = len("2025-06-02T14:03:12.418Z")


class SocketState(enum.Enum):
    """§7.1 socket states."""

    CONNECTING = "connecting"
    UPGRADED = "upgraded"
    CONFIGURED = "configured"
    DETACHED = "detached"
    CLOSED = "closed"


class Kind(enum.StrEnum):
    """What a pending request is; the value is the Guest API action name."""

    CONFIGURE = "configureSession"
    MESSAGE = "onMessage"
    ECHO = "echo"
    JWT = "getJwt"
    CLOSE_SESSION = "closeSession"
    OTHER = "other"


class Outcome(enum.StrEnum):
    """How one awaited part of a request was settled."""

    OK = "ok"
    ERROR = "error"  # a ``class:"string"`` error answered it
    RATE_LIMITED = "rate_limited"  # 429 / 4029: refused, not failed (§4.3)
    TIMEOUT = "timeout"  # the deadline passed: lost (§7.3 rule 6)
    CLOSED = "closed"  # the socket closed first
    CANCELLED = "cancelled"  # no reply will come: the conversation became read-only (§7.1)


@dataclass(slots=True)
class IntegrityCounters:
    """Counts of §7.3 anomalies and of refusals; one instance per client, across sockets.

    ``lost`` counts awaited parts that passed their deadline (an echo, a bot reply or a
    response each count one); ``late`` counts responses whose request is no longer pending;
    ``late_message`` counts bot messages that came after their answer had closed and before the
    next send (never taken as the next turn's reply); ``unsolicited`` bot messages with no
    send to answer (a welcome, an agent).
    """

    lost: int = 0
    duplicate: int = 0
    out_of_order: int = 0
    late_message: int = 0
    unsolicited: int = 0
    late: int = 0
    rate_limited: int = 0
    protocol_errors: int = 0


@dataclass(slots=True, eq=False)
class Pending:
    """One request in flight (style.md "pending map"): its answer and, for text, its reply.

    ``answer`` is the direct answer (a response, the inbound echo of an ``onMessage``, an error
    or a 429). ``reply`` is the first bot reply (§7.3 rule 4) and is awaited only when
    ``want_reply``. ``*_ns`` are the monotonic arrival times. ``waiter`` is opaque here: the
    client hangs its wake-up object on it.

    The bot's **answer** to a text is every outbound message after the send until the bot has
    been quiet for ``quiet_ns`` (or, with ``ends_on_content``, a message offers quick replies or
    a card), or the deadline passes: ``messages`` counts them and ``last_ns`` is the arrival of
    the last one. ``collecting`` is True while the answer is open; ``quiet_ns`` 0 makes the
    first message the whole answer. ``answer_end`` says what closed it (see :data:`ANSWER_ENDS`).
    """

    kind: Kind
    tracing_id: str
    started_ns: int
    deadline_ns: int
    text: str | None = None
    custom_message_id: str | None = None
    want_answer: bool = True
    want_reply: bool = False
    answer: Outcome | None = None
    answer_ns: int = 0
    frame: ServerFrame | None = None
    reply: Outcome | None = None
    reply_ns: int = 0
    reply_frame: StructuredMessage | None = None
    reply_before_echo: bool = False
    answer_bytes: int = 0
    reply_bytes: int = 0
    bot_bytes: int = 0  # every message of the bot's answer, for the client's byte counts
    quiet_ns: int = 0
    ends_on_content: bool = True
    messages: int = 0
    last_ns: int = 0
    collecting: bool = False
    answer_end: str | None = None
    waiter: Any = None

    @property
    def done(self) -> bool:
        """True once every awaited part is settled and the bot's answer has closed."""
        return (
            (self.answer is not None or not self.want_answer)
            and (self.reply is not None or not self.want_reply)
            and not self.collecting
        )

    @property
    def wake_ns(self) -> int:
        """When the client must look again: the deadline, or the end of the quiet period."""
        if self.collecting:
            return min(self.deadline_ns, self.last_ns + self.quiet_ns)
        return self.deadline_ns


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settled:
    """A part (``"answer"`` or ``"reply"``) of ``pending`` was settled; see its fields."""

    pending: Pending
    part: str


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A §7.3 integrity finding: duplicate, out_of_order, late_message, unsolicited or late."""

    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A frame the client could not accept (§3.1: record it and continue)."""

    detail: str


@dataclass(frozen=True, slots=True)
class StrayError:
    """An error or 429 that matched no pending request."""

    frame: ErrorResponse | TooManyRequests


@dataclass(frozen=True, slots=True)
class Pushed:
    """A frame that answers nothing: events, another device's echo, session notices."""

    frame: ServerFrame


Event = Settled | Anomaly | ProtocolError | StrayError | Pushed

_ALLOWED_BEFORE_CONFIGURE = frozenset({Kind.CONFIGURE, Kind.OTHER})
_SESSION_KINDS = (Kind.CONFIGURE, Kind.CLOSE_SESSION)
RATE_LIMIT_CODES = frozenset({429, 4029})
#: What closed a bot answer: the quiet period, a quick-reply/card message, the deadline, the
#: socket closing, or the conversation ending in ReadOnly mode.
ANSWER_QUIET, ANSWER_CONTENT, ANSWER_TIMEOUT = "quiet", "quick_replies", "timeout"
ANSWER_CLOSED, ANSWER_DISCONNECT = "closed", "disconnect"
ANSWER_ENDS = (ANSWER_QUIET, ANSWER_CONTENT, ANSWER_TIMEOUT, ANSWER_CLOSED, ANSWER_DISCONNECT)
#: Content types that make a message the end of an answer (the bot now waits for the guest).
_CHOICE_CONTENT = frozenset({"QuickReply", "Card", "Carousel", "ButtonResponse", "List"})


def offers_choice(msg: StructuredMessage) -> bool:
    """True when a bot message offers quick replies or a card (§3.4): the guest's turn."""
    for item in msg.content or ():
        if isinstance(item, dict) and item.get("contentType") in _CHOICE_CONTENT:
            return True
    return False


def is_rate_limit(frame: ErrorResponse | TooManyRequests) -> bool:
    """§4.3: a TooManyRequestsErrorMessage, or any error frame with code 429 or 4029."""
    return isinstance(frame, TooManyRequests) or frame.code in RATE_LIMIT_CODES


_ANSWER_KINDS: dict[type, tuple[Kind, ...]] = {JwtResponse: (Kind.JWT,)}


def _earlier(a: str, b: str) -> bool:
    """True when channel time ``a`` is before ``b``.

    §3.4's fixed-width ``YYYY-MM-DDTHH:MM:SS.mmmZ`` compares correctly as text (the fast path);
    other shapes are parsed, and an unparsable time never counts as out of order.
    """
    if len(a) == len(b) == _ISO_MS_LEN:
        return a < b
    ta, tb = parse_channel_time(a), parse_channel_time(b)
    return ta is not None and tb is not None and ta < tb


class GuestSession:
    """Socket state, pending requests and integrity accounting for one guest socket."""

    __slots__ = (
        "_answered_since_send",
        "_ids",
        "_ids_pos",
        "_last_time",
        "_pending",
        "counters",
        "inbox",
        "new_session",
        "read_only",
        "reply_timeout_ns",
        "state",
    )

    def __init__(self, reply_timeout_ns: int, counters: IntegrityCounters | None = None) -> None:
        self.reply_timeout_ns = reply_timeout_ns
        self.counters = counters if counters is not None else IntegrityCounters()
        self.state = SocketState.CONNECTING
        self.read_only = False
        self.new_session: bool | None = None
        self._pending: dict[str, Pending] = {}
        self._ids = bytearray(_KEY.size * DUPLICATE_WINDOW)
        self._ids_pos = 0
        self._last_time: str | None = None
        self._answered_since_send = False
        #: when a list: every outbound message and event, with its arrival time (scripts read
        #: it); None (the default flow) keeps nothing.
        self.inbox: list[tuple[int, StructuredMessage]] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def upgraded(self) -> None:
        """The HTTP upgrade succeeded (§7.1 connecting → upgraded)."""
        if self.state is not SocketState.CONNECTING:
            raise InvalidState(f"upgrade in state {self.state.value}")
        self.state = SocketState.UPGRADED

    def closed(self, close: Close, now_ns: int) -> list[Event]:
        """The socket closed (any state → closed): settle everything still pending as closed;
        an open bot answer ends with what has arrived."""
        del close  # the reason is the client's to report; every pending part ends the same way
        self.state = SocketState.CLOSED
        events: list[Event] = []
        for pending in list(self._pending.values()):
            events.extend(self._settle_all(pending, Outcome.CLOSED, now_ns))
            if pending.collecting:
                events.append(self._end_answer(pending, ANSWER_CLOSED))
        self._pending.clear()
        return events

    @property
    def pending_count(self) -> int:
        """Requests still in flight."""
        return len(self._pending)

    def begin(
        self,
        kind: Kind,
        tracing_id: str,
        now_ns: int,
        *,
        text: str | None = None,
        custom_message_id: str | None = None,
        want_answer: bool = True,
        want_reply: bool = False,
        timeout_ns: int | None = None,
        quiet_ns: int = 0,
        ends_on_content: bool = True,
    ) -> Pending:
        """Register a request about to be sent; call it before the bytes go out.

        Raises:
            InvalidState: the socket state forbids this action (§7.1): nothing before the
                upgrade or after the close; only ``configureSession`` before the socket is
                configured or once it is detached; no ``onMessage`` on a read-only
                conversation (the server would answer 409); a reused ``tracing_id``.
        """
        state = self.state
        if state is SocketState.CONNECTING or state is SocketState.CLOSED:
            raise InvalidState(f"cannot send {kind.value}: socket is {state.value}")
        if state is not SocketState.CONFIGURED and kind not in _ALLOWED_BEFORE_CONFIGURE:
            raise InvalidState(
                f"cannot send {kind.value}: socket is {state.value} "
                "(configureSession first: docs/guest-api.md#configuresession)"
            )
        if kind is Kind.MESSAGE and self.read_only:
            raise InvalidState(
                "cannot send onMessage: the conversation is read-only "
                "(docs/guest-api.md#session-lifecycle-and-resume)"
            )
        if tracing_id in self._pending:
            raise InvalidState(f"tracingId {tracing_id} is already pending")
        timeout = self.reply_timeout_ns if timeout_ns is None else timeout_ns
        pending = Pending(
            kind,
            tracing_id,
            now_ns,
            now_ns + timeout,
            text=text,
            custom_message_id=custom_message_id,
            want_answer=want_answer,
            want_reply=want_reply,
            quiet_ns=quiet_ns,
            ends_on_content=ends_on_content,
        )
        self._pending[tracing_id] = pending
        if want_reply:
            self._answered_since_send = False
        return pending

    def abandon(self, pending: Pending) -> None:
        """Forget a request whose bytes never left (the send failed)."""
        self._pending.pop(pending.tracing_id, None)

    def expire(self, now_ns: int) -> list[Event]:
        """Close every bot answer that has been quiet long enough, and settle every part whose
        deadline has passed as a timeout: lost (§7.3 rule 6)."""
        if not self._pending:
            return []
        events: list[Event] = []
        for pending in [p for p in self._pending.values() if p.wake_ns <= now_ns]:
            if pending.collecting and pending.last_ns + pending.quiet_ns <= now_ns:
                events.append(self._end_answer(pending, ANSWER_QUIET))
            if pending.deadline_ns > now_ns:
                continue
            before = len(events)
            events.extend(self._settle_all(pending, Outcome.TIMEOUT, now_ns))
            self.counters.lost += len(events) - before
            if pending.collecting:
                events.append(self._end_answer(pending, ANSWER_TIMEOUT))
            self._pending.pop(pending.tracing_id, None)
        return events

    # --- input --------------------------------------------------------------------------------

    def protocol_error(self, detail: str) -> ProtocolError:
        """Record a frame that could not be decoded (§3.1, §9 pitfall 19)."""
        self.counters.protocol_errors += 1
        return ProtocolError(detail)

    def feed(self, frame: ServerFrame, now_ns: int) -> list[Event]:
        """Apply one decoded server frame; return what it settled or revealed."""
        if isinstance(frame, StructuredMessage):
            return self._on_structured(frame, now_ns)
        if isinstance(frame, SessionResponse):
            return self._on_session_response(frame, now_ns)
        if isinstance(frame, ErrorResponse | TooManyRequests):
            return self._on_error(frame, now_ns)
        if isinstance(frame, ConnectionClosedEvent | SessionClearedEvent):
            self._detach()  # §7.1: detached; the server closes with 1000 after a grace
            return [Pushed(frame)]
        if isinstance(frame, SessionExpiredEvent):
            self._detach()  # §8.4 item 12: pushed, or the answer to a request (tracingId)
            pending = self._match(frame.tracing_id, None) if frame.tracing_id else None
            if pending is not None:
                return self._settle_all(pending, Outcome.ERROR, now_ns, frame, drop=True)
            return [Pushed(frame)]
        if frame.kind != RESPONSE and frame.tracing_id is None:
            return [Pushed(frame)]  # upload events and other pushes answer nothing
        pending = self._match(frame.tracing_id, _ANSWER_KINDS.get(type(frame), (Kind.OTHER,)))
        if pending is not None:
            return self._settle_answer(pending, Outcome.OK, frame, now_ns)
        if frame.kind == RESPONSE:
            return self._late(frame)
        return [Pushed(frame)]

    # --- structured messages ------------------------------------------------------------------

    def _on_structured(self, msg: StructuredMessage, now_ns: int) -> list[Event]:
        if msg.id is not None and self._seen(msg.id):
            self.counters.duplicate += 1  # §7.3 rule 6; a duplicate is not processed again
            return [Anomaly("duplicate", msg.id)]
        backwards = False
        stamp = msg.channel_time
        if stamp is not None and (len(stamp) == _ISO_MS_LEN or parse_channel_time(stamp)):
            last = self._last_time
            if last is not None and _earlier(stamp, last):
                backwards = True  # §7.3 rule 5: time ran backwards on this socket
            else:
                self._last_time = stamp
        inbox = self.inbox
        if inbox is not None and msg.direction != INBOUND:
            inbox.append((now_ns, msg))
        if msg.kind == RESPONSE:
            events = self._on_echo_reply(msg, now_ns)
        elif msg.direction == INBOUND:
            events = self._on_inbound_echo(msg, now_ns)
        elif msg.is_bot_reply:
            events = self._on_bot_reply(msg, now_ns)
        elif msg.read_only_disconnect:
            events = self._on_read_only(msg, now_ns)
        else:
            events = [Pushed(msg)]  # typing and other outbound events (§7.3 rule 4)
        first = events[0]
        late_echo = (
            type(first) is Settled and first.part == "answer" and first.pending.reply_before_echo
        )
        if backwards or late_echo:
            self.counters.out_of_order += 1  # count each frame at most once (§7.3 rule 5)
            events.append(Anomaly("out_of_order", stamp or ""))
        return events

    def _seen(self, msg_id: str) -> bool:
        """True if ``msg_id``'s hash is in the ring; else remember it (oldest one out).

        The ring is raw bytes searched with ``bytearray.find`` (C, no boxing) and a hit counts
        only at a slot boundary: half the cost of ``in`` on an ``array('q')``.
        """
        hashed = hash(msg_id)
        key = _KEY.pack(hashed)
        ids = self._ids
        at = ids.find(key)
        while at >= 0:
            if not at % _KEY.size:
                return True
            at = ids.find(key, at + 1)
        _KEY.pack_into(ids, self._ids_pos * _KEY.size, hashed)
        self._ids_pos = (self._ids_pos + 1) % DUPLICATE_WINDOW
        return False

    def _on_echo_reply(self, msg: StructuredMessage, now_ns: int) -> list[Event]:
        """§2.4: the echo action's reply is a ``type:"response"`` StructuredMessage."""
        pending = self._match(msg.tracing_id, (Kind.ECHO,))
        if pending is None:
            return self._late(msg)
        return self._settle_answer(pending, Outcome.OK, msg, now_ns)

    def _on_inbound_echo(self, msg: StructuredMessage, now_ns: int) -> list[Event]:
        """§7.3 rules 1-3: tracingId, then customMessageId, then the oldest pending text."""
        tid = msg.tracing_id
        pending: Pending | None = None
        if tid is not None:
            pending = self._pending.get(tid)
            if pending is None:
                return [Pushed(msg)]  # another device's echo, not a duplicate (rule 1)
        else:
            pending = self._by_custom_id(msg) or self._oldest_unechoed(msg.text)
        if pending is None or pending.kind is not Kind.MESSAGE or pending.answer is not None:
            return [Pushed(msg)]
        return self._settle_answer(pending, Outcome.OK, msg, now_ns)

    def _by_custom_id(self, msg: StructuredMessage) -> Pending | None:
        meta = msg.metadata
        cmid = meta.get("customMessageId") if meta is not None else None
        if not isinstance(cmid, str):
            return None
        for pending in self._pending.values():
            if pending.custom_message_id == cmid and pending.answer is None:
                return pending
        return None

    def _oldest_unechoed(self, text: str | None) -> Pending | None:
        """Rule 3: the next echo settles the oldest pending onMessage (check the text)."""
        for pending in self._pending.values():
            if pending.kind is Kind.MESSAGE and pending.answer is None:
                return pending if pending.text is None or pending.text == text else None
        return None

    def _on_bot_reply(self, msg: StructuredMessage, now_ns: int) -> list[Event]:
        """§7.3 rules 4 and 5: the first outbound Text/Structured after a send is its reply and
        opens the bot's answer; the next ones join it until it closes. A message after the
        answer closed and before the next send is a ``late_message``, never the next reply."""
        for pending in self._pending.values():
            if not pending.want_reply:
                continue
            if pending.reply is None:
                pending.reply = Outcome.OK
                pending.reply_ns = pending.last_ns = now_ns
                pending.reply_frame = msg
                pending.messages = 1
                if pending.answer is None:
                    pending.reply_before_echo = True  # timed as usual; the echo is late
                if pending.quiet_ns <= 0:
                    self._close_answer(pending, ANSWER_QUIET)  # the first message is all of it
                else:
                    pending.collecting = True
                    self._grow_answer(pending, msg)
                return [Settled(pending, "reply")]
            if pending.collecting:
                pending.messages += 1
                pending.last_ns = now_ns
                self._grow_answer(pending, msg)
                return [Settled(pending, "more")]
        if self._answered_since_send:
            self.counters.late_message += 1
            return [Anomaly("late_message", msg.id or "")]
        self.counters.unsolicited += 1
        return [Anomaly("unsolicited", msg.id or "")]

    def _grow_answer(self, pending: Pending, msg: StructuredMessage) -> None:
        """A message offering quick replies or a card closes the answer: the guest's turn."""
        if pending.ends_on_content and offers_choice(msg):
            self._close_answer(pending, ANSWER_CONTENT)

    def _close_answer(self, pending: Pending, how: str) -> None:
        pending.collecting = False
        pending.answer_end = how
        self._answered_since_send = True
        self._drop_if_done(pending)

    def _end_answer(self, pending: Pending, how: str) -> Settled:
        """Close an open answer from outside a message (quiet, deadline, close, disconnect)."""
        self._close_answer(pending, how)
        return Settled(pending, "end")

    def _on_read_only(self, msg: StructuredMessage, now_ns: int) -> list[Event]:
        """§3.4 / §7.1: the conversation ended in ReadOnly mode; awaited replies cannot come."""
        self.read_only = True
        events: list[Event] = [Pushed(msg)]
        for pending in list(self._pending.values()):
            if pending.want_reply and pending.reply is None:
                pending.reply = Outcome.CANCELLED
                pending.reply_ns = now_ns
                self._drop_if_done(pending)
                events.append(Settled(pending, "reply"))
            elif pending.collecting:
                events.append(self._end_answer(pending, ANSWER_DISCONNECT))
        return events

    # --- responses and errors -----------------------------------------------------------------

    def _on_session_response(self, frame: SessionResponse, now_ns: int) -> list[Event]:
        pending = self._match(frame.tracing_id, _SESSION_KINDS)
        if pending is None:
            return self._late(frame)
        if frame.connected:
            self.state = SocketState.CONFIGURED  # §7.1 upgraded/detached → configured
            self.new_session = frame.new_session
        else:
            self._detach()  # closeSession on this socket (§2.7)
        self.read_only = bool(frame.read_only)
        return self._settle_answer(pending, Outcome.OK, frame, now_ns)

    def _on_error(self, frame: ErrorResponse | TooManyRequests, now_ns: int) -> list[Event]:
        """§4: errors carry the request's tracingId; without one, the oldest pending (rule 3)."""
        limited = is_rate_limit(frame)
        if limited:
            self.counters.rate_limited += 1
        pending = self._match(frame.tracing_id, None)
        if pending is None:
            return [StrayError(frame)]
        outcome = Outcome.RATE_LIMITED if limited else Outcome.ERROR
        return self._settle_all(pending, outcome, now_ns, frame, drop=True)

    def _late(self, frame: ServerFrame) -> list[Event]:
        self.counters.late += 1
        return [Anomaly("late", type(frame).__name__)]

    # --- helpers ------------------------------------------------------------------------------

    def _match(self, tracing_id: str | None, kinds: tuple[Kind, ...] | None) -> Pending | None:
        """The unanswered request with this tracingId (§7.3 rule 1); without one, the oldest
        unanswered request of ``kinds`` (rule 3; None = any kind)."""
        if tracing_id is not None:
            pending = self._pending.get(tracing_id)
            if pending is None or pending.answer is not None or not pending.want_answer:
                return None
            return pending if kinds is None or pending.kind in kinds else None
        for pending in self._pending.values():
            if (
                pending.answer is None
                and pending.want_answer
                and (kinds is None or pending.kind in kinds)
            ):
                return pending
        return None

    def _settle_answer(
        self, pending: Pending, outcome: Outcome, frame: ServerFrame | None, now_ns: int
    ) -> list[Event]:
        pending.answer = outcome
        pending.answer_ns = now_ns
        pending.frame = frame
        self._drop_if_done(pending)
        return [Settled(pending, "answer")]

    def _settle_all(
        self,
        pending: Pending,
        outcome: Outcome,
        now_ns: int,
        frame: ServerFrame | None = None,
        *,
        drop: bool = False,
    ) -> list[Event]:
        events: list[Event] = []
        if pending.answer is None and pending.want_answer:
            pending.answer, pending.answer_ns, pending.frame = outcome, now_ns, frame
            events.append(Settled(pending, "answer"))
        if pending.reply is None and pending.want_reply:
            pending.reply, pending.reply_ns = outcome, now_ns
            events.append(Settled(pending, "reply"))
        if drop:
            if pending.collecting:  # the request is over: its answer ends with what came
                events.append(self._end_answer(pending, ANSWER_CLOSED))
            self._pending.pop(pending.tracing_id, None)
        return events

    def _drop_if_done(self, pending: Pending) -> None:
        if pending.done:
            self._pending.pop(pending.tracing_id, None)

    def _detach(self) -> None:
        if self.state is not SocketState.CLOSED:
            self.state = SocketState.DETACHED
