"""Pure tests of the guest correlation state machine: every §7.1 send rule and §7.3 rule."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InvalidState
from harness.protocol import codec
from harness.protocol.codes import Close
from harness.protocol.frames import (
    ConnectionClosedEvent,
    ErrorResponse,
    JwtResponse,
    SessionExpiredEvent,
    SessionResponse,
    StructuredMessage,
    TooManyRequests,
)
from harness.protocol.session import (
    DUPLICATE_WINDOW,
    Anomaly,
    GuestSession,
    Kind,
    Outcome,
    ProtocolError,
    Pushed,
    Settled,
    SocketState,
    StrayError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "guest-api"
TIMEOUT = 1_000_000_000  # 1 s in ns
_ids = itertools.count(1)


def _id() -> str:
    return f"{next(_ids):032x}"


def _time(ms: int) -> str:
    return codec.format_channel_time(1_750_000_000_000 + ms)


def echo(tid: str | None, text: str = "hi", ms: int = 0, **kw: Any) -> StructuredMessage:
    return StructuredMessage(
        tracing_id=tid,
        direction="Inbound",
        type=kw.pop("type", "Text"),
        text=text,
        id=kw.pop("id", _id()),
        channel={"time": _time(ms)},
        **kw,
    )


def bot(text: str = "You said: hi", ms: int = 10, **kw: Any) -> StructuredMessage:
    return StructuredMessage(
        direction="Outbound",
        type=kw.pop("type", "Text"),
        text=text,
        id=kw.pop("id", _id()),
        channel=kw.pop("channel", {"time": _time(ms)}),
        **kw,
    )


def configured(read_only: bool = False) -> GuestSession:
    s = GuestSession(TIMEOUT)
    s.upgraded()
    s.begin(Kind.CONFIGURE, "cfg", 0)
    s.feed(SessionResponse(tracing_id="cfg", connected=True, new_session=True), 1)
    assert s.state is SocketState.CONFIGURED
    s.read_only = read_only
    return s


def only(events: list[Any], cls: type) -> Any:
    assert len(events) == 1 and isinstance(events[0], cls), events
    return events[0]


# --- §7.1 send rules ------------------------------------------------------------------------


def test_nothing_may_be_sent_before_the_upgrade() -> None:
    s = GuestSession(TIMEOUT)
    with pytest.raises(InvalidState):
        s.begin(Kind.CONFIGURE, "t", 0)


@pytest.mark.parametrize("kind", [Kind.MESSAGE, Kind.ECHO, Kind.JWT, Kind.CLOSE_SESSION])
def test_session_actions_need_a_configured_socket(kind: Kind) -> None:
    s = GuestSession(TIMEOUT)
    s.upgraded()
    with pytest.raises(InvalidState):
        s.begin(kind, "t", 0)
    assert s.pending_count == 0
    s.begin(Kind.CONFIGURE, "c", 0)  # §2.1: configure first


def test_closed_socket_refuses_everything_and_read_only_refuses_messages() -> None:
    s = configured(read_only=True)
    with pytest.raises(InvalidState):
        s.begin(Kind.MESSAGE, "m", 0)
    s.begin(Kind.ECHO, "e", 0)
    s.closed(Close(1000), 5)
    with pytest.raises(InvalidState):
        s.begin(Kind.CONFIGURE, "c", 0)


def test_a_tracing_id_cannot_be_reused_while_pending() -> None:
    s = configured()
    s.begin(Kind.MESSAGE, "m", 0)
    with pytest.raises(InvalidState):
        s.begin(Kind.ECHO, "m", 0)


def test_upgrade_happens_once() -> None:
    s = configured()
    with pytest.raises(InvalidState):
        s.upgraded()


# --- session responses ----------------------------------------------------------------------


def test_session_response_without_tracing_id_settles_the_oldest_configure() -> None:
    s = GuestSession(TIMEOUT)
    s.upgraded()
    p = s.begin(Kind.CONFIGURE, "c", 100)
    ev = only(s.feed(SessionResponse(connected=True, new_session=False), 350), Settled)
    assert ev.pending is p and p.answer is Outcome.OK and p.answer_ns == 350
    assert s.state is SocketState.CONFIGURED and s.new_session is False
    assert s.pending_count == 0


def test_close_session_detaches_and_configure_again_is_allowed() -> None:
    s = configured()
    s.begin(Kind.CLOSE_SESSION, "x", 0)
    s.feed(SessionResponse(tracing_id="x", connected=False, read_only=True), 1)
    assert s.state is SocketState.DETACHED and s.read_only
    with pytest.raises(InvalidState):
        s.begin(Kind.MESSAGE, "m", 2)
    s.begin(Kind.CONFIGURE, "c2", 2)
    s.feed(SessionResponse(tracing_id="c2", connected=True, new_session=True, read_only=False), 3)
    assert s.state is SocketState.CONFIGURED and not s.read_only


def test_unmatched_response_counts_late() -> None:
    s = configured()
    only(s.feed(SessionResponse(tracing_id="nope", connected=True), 1), Anomaly)
    only(s.feed(JwtResponse(tracing_id="nope", jwt="a.b.c", exp=1), 1), Anomaly)
    assert s.counters.late == 2


# --- rule 1: tracingId first ----------------------------------------------------------------


def test_echo_and_reply_by_tracing_id() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 1000, text="hi", want_reply=True)
    ev = only(s.feed(echo("m"), 3000), Settled)
    assert ev.part == "answer" and p.answer is Outcome.OK and p.answer_ns == 3000
    assert not p.done and s.pending_count == 1
    ev = only(s.feed(bot(), 9000), Settled)
    assert ev.part == "reply" and p.reply is Outcome.OK and p.reply_ns == 9000
    assert p.done and s.pending_count == 0
    assert s.counters == type(s.counters)()  # nothing anomalous


def test_echo_with_a_foreign_tracing_id_is_another_device_not_a_duplicate() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi")
    only(s.feed(echo("other-device", "hi"), 1), Pushed)
    assert p.answer is None
    assert s.counters.duplicate == 0 and s.counters.unsolicited == 0


def test_a_settled_part_is_never_settled_twice() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m"), 1)
    only(s.feed(echo("m"), 2), Pushed)  # second echo with the same id: not a new settlement
    assert p.answer_ns == 1


# --- rule 2: customMessageId fallback -------------------------------------------------------


def test_custom_message_id_matches_an_echo_without_tracing_id() -> None:
    s = configured()
    first = s.begin(Kind.MESSAGE, "a", 0, text="hi", custom_message_id="cm-1")
    second = s.begin(Kind.MESSAGE, "b", 0, text="hi", custom_message_id="cm-2")
    s.feed(echo(None, "hi", metadata={"customMessageId": "cm-2"}), 5)
    assert second.answer is Outcome.OK and first.answer is None


# --- rule 3: order fallback -----------------------------------------------------------------


def test_echo_without_ids_settles_the_oldest_pending_message() -> None:
    s = configured()
    first = s.begin(Kind.MESSAGE, "a", 0, text="one")
    second = s.begin(Kind.MESSAGE, "b", 0, text="two")
    s.feed(echo(None, "one"), 5)
    assert first.answer is Outcome.OK and second.answer is None
    s.feed(echo(None, "two", ms=1), 6)
    assert second.answer is Outcome.OK


def test_order_fallback_checks_the_text() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "a", 0, text="one")
    only(s.feed(echo(None, "something else"), 5), Pushed)
    assert p.answer is None


def test_error_without_tracing_id_settles_the_oldest_pending_request() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "a", 0, text="x" * 10, want_reply=True)
    q = s.begin(Kind.ECHO, "e", 0)
    events = s.feed(ErrorResponse(code=4011, body="Message length N is larger than 131072"), 7)
    assert [e.part for e in events if isinstance(e, Settled)] == ["answer", "reply"]
    assert p.answer is Outcome.ERROR and p.reply is Outcome.ERROR and q.answer is None
    assert isinstance(p.frame, ErrorResponse) and p.frame.code == 4011


def test_error_by_tracing_id_and_stray_error() -> None:
    s = configured()
    p = s.begin(Kind.ECHO, "e", 0)
    s.feed(ErrorResponse(code=4007, tracing_id="e", body="Session not found."), 1)
    assert p.answer is Outcome.ERROR and s.pending_count == 0
    ev = only(s.feed(ErrorResponse(code=400, body="Request failed."), 2), StrayError)
    assert ev.frame.code == 400
    # an error naming an unknown tracingId is stray too, never given to someone else
    q = s.begin(Kind.ECHO, "e2", 3)
    only(s.feed(ErrorResponse(code=400, tracing_id="zzz", body="x"), 4), StrayError)
    assert q.answer is None


def test_rate_limit_is_counted_and_settles_as_rate_limited() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(TooManyRequests(tracing_id="m", retry_after=1), 1)
    assert p.answer is Outcome.RATE_LIMITED and p.reply is Outcome.RATE_LIMITED
    assert s.counters.rate_limited == 1 and s.counters.lost == 0
    only(s.feed(TooManyRequests(retry_after=2), 2), StrayError)
    assert s.counters.rate_limited == 2


# --- rule 4: bot reply ----------------------------------------------------------------------


def test_events_do_not_count_as_replies() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m"), 1)
    typing = bot(type="Event", text=None, events=({"eventType": "Typing", "typing": {}},))
    only(s.feed(typing, 2), Pushed)
    assert p.reply is None
    s.feed(bot(type="Structured", ms=20), 3)
    assert p.reply is Outcome.OK


def test_first_message_only_later_ones_are_late_and_with_nothing_pending_unsolicited() -> None:
    s = configured()
    ev = only(s.feed(bot(ms=1), 1), Anomaly)  # a welcome before any send
    assert ev.kind == "unsolicited"
    p = s.begin(Kind.MESSAGE, "m", 2, text="hi", want_reply=True)  # quiet 0: one message
    s.feed(echo("m", ms=2), 3)
    s.feed(bot(ms=3), 4)
    assert p.done and p.messages == 1 and p.answer_end == "quiet"
    assert only(s.feed(bot(ms=4), 5), Anomaly).kind == "late_message"
    assert only(s.feed(bot(ms=5), 6), Anomaly).kind == "late_message"
    assert (s.counters.unsolicited, s.counters.late_message) == (1, 2)
    p2 = s.begin(Kind.MESSAGE, "m2", 7, text="again", want_reply=True)  # a new send resets it
    s.feed(echo("m2", "again", ms=6), 8)
    assert only(s.feed(bot(ms=7), 9), Settled).pending is p2
    assert s.counters.late_message == 2


QUIET = 100_000_000  # 100 ms


def _quick(ms: int) -> StructuredMessage:
    item = {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "y"}}
    return bot(type="Structured", ms=ms, content=(item,))


def test_an_answer_is_every_message_until_the_bot_is_quiet() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True, quiet_ns=QUIET)
    s.feed(echo("m", ms=1), 1_000)
    assert only(s.feed(bot(ms=2), 30_000_000), Settled).part == "reply"
    assert p.collecting and not p.done and p.wake_ns == 130_000_000
    assert only(s.feed(bot(ms=3), 180_000_000), Settled).part == "more"
    assert only(s.feed(bot(ms=4), 270_000_000), Settled).part == "more"
    assert s.expire(369_999_999) == []  # not quiet long enough yet
    assert only(s.expire(370_000_000), Settled).part == "end"
    assert (p.done, p.messages, p.reply_ns, p.last_ns) == (True, 3, 30_000_000, 270_000_000)
    assert p.answer_end == "quiet" and s.pending_count == 0
    assert only(s.feed(bot(ms=5), 400_000_000), Anomaly).kind == "late_message"
    p2 = s.begin(Kind.MESSAGE, "m2", 500_000_000, text="2", want_reply=True, quiet_ns=QUIET)
    s.feed(echo("m2", "2", ms=6), 500_000_001)
    assert only(s.feed(bot(ms=7), 520_000_000), Settled).pending is p2  # never late
    assert (s.counters.late_message, s.counters.out_of_order, s.counters.unsolicited) == (1, 0, 0)


def test_quick_replies_end_the_answer_unless_told_otherwise() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True, quiet_ns=QUIET)
    s.feed(echo("m"), 1)
    s.feed(bot(ms=2), 2)
    assert only(s.feed(_quick(3), 3), Settled).part == "more"
    assert p.done and p.messages == 2 and p.answer_end == "quick_replies"
    q = s.begin(
        Kind.MESSAGE, "q", 10, text="hi", want_reply=True, quiet_ns=QUIET, ends_on_content=False
    )
    s.feed(echo("q", ms=10), 11)
    s.feed(_quick(11), 12)
    assert q.collecting and q.messages == 1


def test_an_open_answer_ends_at_the_deadline_close_or_disconnect() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True, quiet_ns=TIMEOUT * 2)
    s.feed(echo("m"), 1)
    s.feed(bot(ms=2), 2)
    assert p.wake_ns == TIMEOUT  # the deadline comes before the quiet period ends
    ev = s.expire(TIMEOUT)
    assert [e.part for e in ev if isinstance(e, Settled)] == ["end"]
    assert p.answer_end == "timeout" and p.reply is Outcome.OK and s.counters.lost == 0
    assert s.pending_count == 0
    c = s.begin(Kind.MESSAGE, "c", TIMEOUT, text="hi", want_reply=True, quiet_ns=QUIET)
    s.feed(echo("c", ms=5), TIMEOUT + 1)
    s.feed(bot(ms=6), TIMEOUT + 2)
    d = s.begin(Kind.MESSAGE, "d", TIMEOUT + 3, text="x", want_reply=True, quiet_ns=QUIET)
    s.feed(echo("d", "x", ms=7), TIMEOUT + 4)
    s.feed(bot(ms=8), TIMEOUT + 5)  # still c's answer: it is open
    assert (c.messages, d.reply) == (2, None)
    disconnect = bot(
        type="Event",
        text=None,
        ms=9,
        events=({"eventType": "Presence", "presence": {"type": "Disconnect"}},),
        metadata={"readOnly": "true"},
    )
    s.feed(disconnect, TIMEOUT + 6)
    assert c.answer_end == "disconnect" and d.reply is Outcome.CANCELLED
    e = configured()
    q = e.begin(Kind.MESSAGE, "q", 0, text="hi", want_reply=True, quiet_ns=QUIET)
    e.feed(echo("q"), 1)
    e.feed(bot(ms=2), 2)
    e.closed(Close.abnormal(), 3)
    assert q.answer_end == "closed" and q.done


def test_the_inbox_keeps_outbound_messages_only_when_asked() -> None:
    s = configured()
    s.inbox = []
    s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m"), 1)
    reply = bot(ms=2)
    s.feed(reply, 2)
    assert s.inbox == [(2, reply)]
    plain = configured()
    plain.feed(bot(ms=3), 3)
    assert plain.inbox is None


def test_typing_send_is_correlated_but_waits_for_no_reply() -> None:
    s = configured()
    t = s.begin(Kind.MESSAGE, "t", 0)
    s.feed(echo("t", text=None, type="Event"), 1)
    assert t.done and s.pending_count == 0
    assert only(s.feed(bot(), 2), Anomaly).kind == "unsolicited"


# --- rule 5: out of order -------------------------------------------------------------------


def test_reply_before_echo_goes_to_the_oldest_and_the_late_echo_counts_once() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 100, text="hi", want_reply=True)
    ev = only(s.feed(bot(ms=50), 400), Settled)  # the reply overtakes the echo
    assert ev.part == "reply" and p.reply_ns == 400 and p.answer is None
    events = s.feed(echo("m", ms=10), 500)  # its channel.time is earlier too
    assert [type(e) for e in events] == [Settled, Anomaly]
    assert s.counters.out_of_order == 1  # one frame, counted once
    assert p.done and p.answer_ns == 500


def test_channel_time_going_backwards_counts_one() -> None:
    s = configured()
    s.feed(bot(ms=100), 1)
    events = s.feed(bot(ms=50), 2)
    assert [a.kind for a in events if isinstance(a, Anomaly)] == ["unsolicited", "out_of_order"]
    s.feed(bot(ms=100), 3)  # equal to the latest: not backwards
    assert s.counters.out_of_order == 1


# --- rule 6: lost and duplicate -------------------------------------------------------------


def test_duplicate_body_id_is_counted_and_not_processed_again() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m", id="a" * 32), 1)
    ev = only(s.feed(bot(id="a" * 32), 2), Anomaly)
    assert ev.kind == "duplicate" and s.counters.duplicate == 1 and p.reply is None


def test_duplicate_window_is_bounded() -> None:
    s = configured()
    s.feed(bot(id="first"), 1)
    for i in range(DUPLICATE_WINDOW):
        s.feed(bot(id=f"other-{i}", ms=10 + i), 2)
    s.feed(bot(id="first", ms=100), 3)  # fell out of the window: not flagged
    assert s.counters.duplicate == 0


class _Hashed(str):
    """A message id with a chosen hash, to place exact bytes in the duplicate ring."""

    __slots__ = ("value",)

    def __new__(cls, text: str, value: int) -> _Hashed:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj

    def __hash__(self) -> int:
        return self.value


def test_duplicate_ring_matches_whole_slots_only() -> None:
    """Bytes straddling two remembered hashes are not a hit; a remembered hash is."""
    s = configured()
    a, b = 0x0807060504030201, 0x100F0E0D0C0B0A09
    assert not s._seen(_Hashed("a", a)) and not s._seen(_Hashed("b", b))
    ring = a.to_bytes(8, "little") + b.to_bytes(8, "little")
    for shift in range(1, 8):  # every unaligned 8-byte window across the two slots
        straddle = int.from_bytes(ring[shift : shift + 8], "little", signed=True)
        assert not s._seen(_Hashed(f"x{shift}", straddle))
    assert s._seen(_Hashed("a again", a))
    assert s._seen(_Hashed("b again", b))


def test_deadline_settles_each_awaited_part_once_as_lost() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    q = s.begin(Kind.ECHO, "e", TIMEOUT // 2)
    assert s.expire(TIMEOUT - 1) == []
    events = s.expire(TIMEOUT)
    assert [(e.pending, e.part) for e in events] == [(p, "answer"), (p, "reply")]
    assert p.answer is Outcome.TIMEOUT and s.counters.lost == 2 and q.answer is None
    assert s.expire(TIMEOUT) == []  # never twice
    only(s.feed(echo("m"), TIMEOUT + 1), Pushed)  # a late echo does not resurrect it
    s.expire(2 * TIMEOUT)
    assert q.answer is Outcome.TIMEOUT and s.counters.lost == 3


def test_half_settled_request_loses_only_the_missing_part() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m"), 1)
    events = s.expire(TIMEOUT)
    assert [e.part for e in events] == ["reply"] and s.counters.lost == 1
    assert p.answer is Outcome.OK and p.reply is Outcome.TIMEOUT


def test_close_settles_everything_as_closed_not_lost() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(echo("m"), 1)
    events = s.closed(Close.abnormal(), 2)
    assert [e.part for e in events] == ["reply"] and p.reply is Outcome.CLOSED
    assert s.counters.lost == 0 and s.state is SocketState.CLOSED and s.pending_count == 0


# --- session notices ------------------------------------------------------------------------


def test_read_only_disconnect_cancels_awaited_replies() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="bye", want_reply=True)
    s.feed(echo("m", "bye"), 1)
    disconnect = bot(
        type="Event",
        text=None,
        events=({"eventType": "Presence", "presence": {"type": "Disconnect"}},),
        metadata={"readOnly": "true"},
    )
    events = s.feed(disconnect, 2)
    assert isinstance(events[0], Pushed) and isinstance(events[1], Settled)
    assert s.read_only and p.reply is Outcome.CANCELLED and s.counters.lost == 0
    with pytest.raises(InvalidState):
        s.begin(Kind.MESSAGE, "m2", 3)


def test_connection_closed_event_detaches() -> None:
    s = configured()
    only(s.feed(ConnectionClosedEvent(), 1), Pushed)
    assert s.state is SocketState.DETACHED
    with pytest.raises(InvalidState):
        s.begin(Kind.ECHO, "e", 2)


def test_session_expired_answering_a_request_settles_it_as_error() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(SessionExpiredEvent(kind="response", tracing_id="m"), 1)
    assert p.answer is Outcome.ERROR and p.reply is Outcome.ERROR
    assert s.state is SocketState.DETACHED
    s2 = configured()
    only(s2.feed(SessionExpiredEvent(), 1), Pushed)


def test_protocol_error_is_counted() -> None:
    s = configured()
    assert isinstance(s.protocol_error("not JSON"), ProtocolError)
    assert s.counters.protocol_errors == 1


# --- golden frames (guards against a parser shared with the simulator being wrong) ----------


def _fixture(name: str) -> Any:
    return codec.decode_server((FIXTURES / name).read_bytes())


def test_golden_frames_settle_their_requests() -> None:
    s = GuestSession(TIMEOUT)
    s.upgraded()
    s.begin(Kind.CONFIGURE, "1a7d3e90-5c2b-4f81-a6e4-8b9c0d2e3f41", 0)
    s.feed(_fixture("server-SessionResponse-new.json"), 1)
    assert s.state is SocketState.CONFIGURED and s.new_session is True
    m = s.begin(
        Kind.MESSAGE,
        "6e2b9c41-0d7a-4b53-8f16-a3c5e7d9b024",
        2,
        text="Where is my order?",
        want_reply=True,
    )
    s.feed(_fixture("server-StructuredMessage-inbound-echo.json"), 3)
    assert m.answer is Outcome.OK and m.reply is None
    e = s.begin(Kind.ECHO, "3d9a5f72-8b1e-4c60-a4d7-e2f6b0c8a195", 5)
    s.feed(_fixture("server-StructuredMessage-echo-reply.json"), 6)
    assert e.answer is Outcome.OK
    s.feed(_fixture("server-StructuredMessage-typing-on.json"), 4)  # an event is no reply
    assert m.reply is None
    j = s.begin(Kind.JWT, "70c4e2b9-1f8d-4e3a-b6c5-9a2d7e0f4b18", 7)
    s.feed(_fixture("server-JwtResponse.json"), 8)
    assert j.answer is Outcome.OK
    r = s.begin(Kind.MESSAGE, "d1c7a4e8-9b3f-4a26-8e50-6f2b4d8c0a37", 9, want_reply=True)
    s.feed(_fixture("server-error-429-rate-limited.json"), 10)
    assert r.answer is Outcome.RATE_LIMITED
    # the bot text fixture is older (14:03:12.967) than the typing event (14:04:20): it is the
    # reply of the first message and arrives with time running backwards.
    s.feed(_fixture("server-StructuredMessage-bot-text.json"), 11)
    assert m.reply is Outcome.OK and s.counters.out_of_order == 1


def test_a_4029_or_429_string_error_is_rate_limiting_too() -> None:
    s = configured()
    p = s.begin(Kind.MESSAGE, "m", 0, text="hi", want_reply=True)
    s.feed(ErrorResponse(code=4029, tracing_id="m", body="Message rate too high"), 1)
    assert p.answer is Outcome.RATE_LIMITED and s.counters.rate_limited == 1
    only(s.feed(ErrorResponse(code=429, body="slow down"), 2), StrayError)
    assert s.counters.rate_limited == 2


def test_channel_times_of_other_shapes_are_parsed_not_compared_as_text() -> None:
    s = configured()
    s.feed(bot(channel={"time": "2025-06-02T14:03:12.5Z"}), 1)
    s.feed(bot(channel={"time": "2025-06-02T14:03:12.418Z"}), 2)  # earlier: 418 < 500
    assert s.counters.out_of_order == 1
    s.feed(bot(channel={"time": "yesterday"}), 3)  # unparsable: never out of order
    assert s.counters.out_of_order == 1
    s.feed(bot(channel={"time": "2025-06-02T14:03:12.417Z"}), 4)  # still compared to 12.5
    assert s.counters.out_of_order == 2
