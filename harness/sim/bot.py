"""The simulated bot: what it answers, when, and in which order (protocol.md §8.4 items 20-23, 27).

Each session has one FIFO of pending outputs and at most one timer for its head, so replies
leave in order and never before the echo they answer. A reply is dropped when its session is
cleared, expired or made read-only first, or when no socket is attached when it is due.

An *answer* is the messages the bot sends for one input: the first one ``--bot-latency`` after
the echo, each next one an ``--answer-gap`` draw after the previous one (a rules file may set
a delay per message). The server-side delay of each answer's first and last message is summed
in the stats, so a load generator can check its botReply / botAnswer against them.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

from harness.protocol import codec
from harness.protocol import frames as f
from harness.sim import wire
from harness.sim.clock import MessageClock
from harness.sim.config import SimConfig
from harness.sim.faults import FaultPicker, SessionFault, seeded_rng
from harness.sim.rules import Answer, Utterance, quick_reply_content
from harness.sim.sessions import Session
from harness.sim.stats import SimStats

WELCOME = "Welcome! How can I help you today?"
ATTACHMENT_REPLY = "You sent an attachment."
QUICK_REPLIES = (("Track an order", "track_order"), ("Talk to a person", "handoff"))
QUICK_REPLY_CONTENT = quick_reply_content(QUICK_REPLIES)
DISCONNECT_EVENT: dict[str, Any] = {"eventType": "Presence", "presence": {"type": "Disconnect"}}
TYPING_ON_EVENT: dict[str, Any] = {
    "eventType": "Typing",
    "typing": {"type": "On", "duration": 5000},
}


class Out(enum.Enum):
    """Kinds of bot output."""

    REPLY = "reply"
    TYPING = "typing"
    DISCONNECT = "disconnect"


@dataclass(slots=True)
class Turn:
    """One echo and its replies; under ``--fault-reorder`` one frame is held back (item 27).

    ``started`` (loop time of the echo) and ``replies`` time the answer for the stats when
    ``timed`` (answers to guest texts and quick-reply choices; not the welcome).
    """

    frames: int  # echo + replies (typing excluded)
    reorder: bool
    started: float = 0.0
    replies: int = 0
    timed: bool = False
    written: int = 0
    sent: int = 0  # replies written
    held: bytes | None = None


@dataclass(slots=True)
class Pending:
    """One queued bot output, due at ``due`` (loop time)."""

    due: float
    out: Out
    turn: Turn
    utterance: Utterance | None = None


class Bot:
    """Schedules and writes the bot's outputs for every session of this process."""

    def __init__(
        self, config: SimConfig, stats: SimStats, clock: MessageClock, picker: FaultPicker
    ) -> None:
        self.config = config
        self.stats = stats
        self.clock = clock
        self.picker = picker
        self._latency_rng = seeded_rng(config, "latency")
        self._quick_rng = seeded_rng(config, "quick-replies")
        self._quick_index = 0
        self._instant = config.bot_latency.is_zero

    # -- planning ---------------------------------------------------------------------------

    def draw(self) -> float:
        return self.config.bot_latency.draw(self._latency_rng)

    def _quick(self) -> bool:
        share = self.config.quick_replies
        if not share.enabled:
            return False
        self._quick_index += 1
        return share.picks(self._quick_index, self._quick_rng)

    def default_answer(self, text: str) -> Answer:
        """The built-in answer to a guest text: ``--answer-messages`` copies of "You said: …",
        each a Structured message with quick replies at the ``--quick-replies`` share."""
        reply = f"You said: {text[:200]}"
        return Answer(
            tuple(
                Utterance(reply, QUICK_REPLIES if self._quick() else ())
                for _ in range(self.config.bot_replies)
            )
        )

    def _gap(self, utterance: Utterance, first: bool) -> float:
        if utterance.delay is not None:
            return utterance.delay.draw(self._latency_rng)
        gap = self.config.answer_gap
        if first or gap is None:
            return self.draw()
        return gap.draw(self._latency_rng)

    def start_turn(
        self,
        session: Session,
        echo: bytes,
        answer: Answer | None,
        *,
        guest_text: bool = False,
        timed: bool = True,
    ) -> None:
        """Write the echo, then schedule the answer's messages (items 20, 22): the first one a
        latency draw after the echo, the next ones a gap draw apart; then the ReadOnly
        disconnect when the answer asks for it.

        Only answers to guest text get ``--bot-typing``.
        """
        messages = answer.messages if answer is not None else ()
        if not messages and not (answer is not None and answer.disconnect):
            session.push(echo)
            return
        loop = asyncio.get_running_loop()
        reorder = self.picker.turn()
        typing = guest_text and self.config.bot_typing
        turn = Turn(1 + len(messages), reorder, loop.time(), len(messages), timed)
        instant = self._instant and self.config.answer_gap_is_zero
        if (
            instant
            and not reorder
            and not typing
            and not session.bot_queue
            and not (answer is not None and answer.disconnect)
            and all(m.delay is None for m in messages)
        ):
            # zero latency and nothing pending: write everything now, in order (item 21)
            session.push(echo)
            for utterance in messages:
                if not session.sockets or session.read_only:
                    return
                self._write_reply(session, turn, utterance)
            return
        self._emit(session, turn, echo)
        due = turn.started
        for index, utterance in enumerate(messages):
            if typing:
                session.bot_queue.append(Pending(max(due, session.last_due), Out.TYPING, turn))
            due = max(due + self._gap(utterance, index == 0), session.last_due)
            session.last_due = due
            session.bot_queue.append(Pending(due, Out.REPLY, turn, utterance))
        if answer is not None and answer.disconnect:
            if not messages:
                due = max(due + self.draw(), session.last_due)
            session.bot_queue.append(Pending(due, Out.DISCONNECT, turn))
        self._pump(session)

    def schedule_disconnect(self, session: Session, echo: bytes) -> None:
        """``--disconnect-text``: the echo, then the ReadOnly disconnect one draw later."""
        self.start_turn(session, echo, Answer((), disconnect=True), timed=False)

    def disconnect_now(self, session: Session) -> None:
        """Guest Presence Disconnect: the ReadOnly event at once (§8.4 item 23)."""
        self._write_disconnect(session)

    # -- writing ----------------------------------------------------------------------------

    def _pump(self, session: Session) -> None:
        """Write every due output in order; arm one timer for the next (item 21)."""
        if session.bot_timer is not None:  # at most one timer per session
            session.bot_timer.cancel()
            session.bot_timer = None
        loop = asyncio.get_running_loop()
        queue = session.bot_queue
        while queue:
            now = loop.time()
            head = queue[0]
            if head.due > now:
                session.bot_timer = loop.call_at(head.due, self._pump, session)
                return
            queue.popleft()
            if not session.sockets or session.read_only:
                continue  # nobody to tell, or the conversation ended: dropped, no replay
            self._write(session, head)

    def _write(self, session: Session, item: Pending) -> None:
        if item.out is Out.TYPING:
            session.push(self._event(TYPING_ON_EVENT))
        elif item.out is Out.DISCONNECT:
            self._write_disconnect(session)
        else:
            assert item.utterance is not None
            self._write_reply(session, item.turn, item.utterance)

    def _write_reply(self, session: Session, turn: Turn, utterance: Utterance) -> None:
        """Write one message of an answer; time the answer's first and last (stats)."""
        self._emit(session, turn, self._reply(utterance))
        turn.sent += 1
        if turn.timed and turn.sent in (1, turn.replies):
            stats = self.stats
            delay_us = int((asyncio.get_running_loop().time() - turn.started) * 1e6)
            if turn.sent == 1:
                stats.answers += 1
                stats.answer_first_us += delay_us
            if turn.sent == turn.replies:
                stats.answers_completed += 1
                stats.answer_last_us += delay_us
        if turn.timed:
            self.stats.answer_messages += 1
        self._count_reply(session)

    def _count_reply(self, session: Session) -> None:
        """Count a written bot reply; inject the session's fault after the N-th (item 27)."""
        self.stats.bot_replies += 1
        session.bot_replies += 1
        if session.fault is not SessionFault.NONE and (
            session.bot_replies == self.config.faults.after
        ):
            self._inject(session)

    def _emit(self, session: Session, turn: Turn, data: bytes) -> None:
        """Write one frame of a turn, holding back the second-to-last one when reordered."""
        turn.written += 1
        if turn.reorder and turn.written == turn.frames - 1:
            turn.held = data
            return
        session.push(data)
        if turn.held is not None and turn.written == turn.frames:
            session.push(turn.held)
            turn.held = None

    def _reply(self, utterance: Utterance) -> bytes:
        """A §3.4 bot text, or a Structured one with quick replies (item 20)."""
        clock = self.clock
        return wire.bot_text(
            id=clock.hex_id(),
            text=utterance.text,
            time=clock.channel_time(),
            correlation_id=clock.uuid(),
            quick_replies=utterance.content(),
        )

    def _event(self, event: dict[str, Any], **metadata: str) -> bytes:
        return codec.encode(
            f.StructuredMessage(
                direction=f.OUTBOUND,
                type="Event",
                id=self.clock.hex_id(),
                channel={"time": self.clock.channel_time(), "messageId": self.clock.uuid()},
                events=(event,),
                metadata={"correlationId": self.clock.uuid(), **metadata},
                originating_entity="Bot",
            )
        )

    def _write_disconnect(self, session: Session) -> None:
        """The ReadOnly end: read-only from the moment the event is sent (§7.1, item 23)."""
        session.push(self._event(DISCONNECT_EVENT, readOnly="true"))
        session.read_only = True
        session.cancel_bot()

    def _inject(self, session: Session) -> None:
        """``--fault-close`` / ``--fault-drop`` right after the N-th reply (item 27)."""
        for sock in list(session.sockets):
            if session.fault is SessionFault.DROP:
                sock.abort()
            else:
                sock.close(self.config.faults.close_code, "injected fault")
