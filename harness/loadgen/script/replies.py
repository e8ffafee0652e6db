"""What the bot said since the guest's last send, in the order the bot meant (pure, no I/O).

Waits of a script read the bot's messages in ``channel.time`` order: a message that arrives up
to ``window_ns`` after a later-stamped one is put back before it (protocol.md §7.3 rule 5
allows such a window before content checks) and counted as *reordered*; beyond the window,
arrival order stands. A cursor moves past each matched message, so two waits after one send
match two messages in turn, and messages skipped over are not matched again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.protocol.frames import OUTBOUND, StructuredMessage


@dataclass(frozen=True, slots=True)
class Entry:
    arrival_ns: int
    stamp: str  # channel.time ("" when absent: arrival order)
    message: StructuredMessage

    @property
    def text(self) -> str | None:
        """The text of a bot Text/Structured message; None for events."""
        msg = self.message
        if msg.direction != OUTBOUND or msg.type not in ("Text", "Structured"):
            return None
        return msg.text or ""

    @property
    def quick_replies(self) -> list[tuple[str, str]]:
        """(text, payload) of each QuickReply offered (§3.4)."""
        out = []
        for item in self.message.content or ():
            reply = item.get("quickReply") if item.get("contentType") == "QuickReply" else None
            if isinstance(reply, dict) and isinstance(reply.get("text"), str):
                out.append((reply["text"], str(reply.get("payload", reply["text"]))))
        return out

    @property
    def is_disconnect(self) -> bool:
        """An Outbound Presence Disconnect: the bot (or agent) ended the conversation."""
        for event in self.message.events or ():
            presence = event.get("presence") if event.get("eventType") == "Presence" else None
            if isinstance(presence, dict) and presence.get("type") == "Disconnect":
                return True
        return False


def _stamp(msg: StructuredMessage) -> str:
    channel: Any = msg.channel
    stamp = channel.get("time") if isinstance(channel, dict) else None
    return stamp if isinstance(stamp, str) else ""


class ReplyBox:
    """The bot's messages since the last send, re-sorted within the window, with a cursor."""

    __slots__ = ("_cursor", "_items", "window_ns")

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._items: list[Entry] = []
        self._cursor = 0

    def mark_send(self) -> None:
        """A guest message went out: the waits after it look at what comes next."""
        self._items.clear()
        self._cursor = 0

    def add(self, arrival_ns: int, message: StructuredMessage) -> bool:
        """Add one message; True when it was put before one that arrived earlier."""
        entry = Entry(arrival_ns, _stamp(message), message)
        items, at = self._items, len(self._items)
        while at > self._cursor:
            before = items[at - 1]
            if not (entry.stamp and before.stamp and entry.stamp < before.stamp):
                break
            if arrival_ns - before.arrival_ns > self.window_ns:
                break
            at -= 1
        items.insert(at, entry)
        return at < len(items) - 1

    def take(self, matches: Callable[[Entry], bool]) -> Entry | None:
        """The first message after the cursor that ``matches``; the cursor moves past it."""
        for index in range(self._cursor, len(self._items)):
            entry = self._items[index]
            if matches(entry):
                self._cursor = index + 1
                return entry
        return None

    @property
    def texts(self) -> list[str]:
        """Every bot text since the send, in order (for 'expected vs arrived')."""
        return [t for t in (e.text for e in self._items) if t is not None]

    @property
    def disconnect(self) -> Entry | None:
        return next((e for e in self._items if e.is_disconnect), None)

    def latest_quick_replies(self) -> list[tuple[str, str]]:
        """The quick replies of the latest message that offered any."""
        for entry in reversed(self._items):
            offered = entry.quick_replies
            if offered:
                return offered
        return []
