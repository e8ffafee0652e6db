"""Message times and ids (protocol.md §8.4 item 18), cheap enough for every frame.

``channel.time`` is strictly increasing within a process: max(now, previous + 1 ms). Ids only
need to be unique, not secret: each process draws a random prefix once (from the OS) and
appends a counter, which keeps ids in the documented formats at a fraction of ``uuid4()``'s
cost.
"""

from __future__ import annotations

import random
import time

from harness.protocol.codec import format_channel_time

_UUID4_MASK = ~(0xF000 << 64) & ~(0xC000 << 48) & ((1 << 128) - 1)
_UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)


class MessageClock:
    """Hands out strictly increasing ``channel.time`` strings and fresh ids."""

    __slots__ = ("_counter", "_hex_prefix", "_last_ms", "_prefix", "_prefix_s", "_uuid_prefix")

    def __init__(self) -> None:
        self._last_ms = 0
        self._prefix_s = -1
        self._prefix = ""
        self._counter = 0
        rng = random.Random()  # seeded from os.urandom
        self._hex_prefix = f"{rng.getrandbits(80):020x}"
        h = f"{(rng.getrandbits(128) & _UUID4_MASK) | _UUID4_BITS:032x}"
        self._uuid_prefix = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"

    def next_ms(self) -> int:
        """Epoch ms for the next message: now, or one more than the previous one."""
        now_ms = time.time_ns() // 1_000_000
        last = self._last_ms + 1
        self._last_ms = now_ms if now_ms > last else last
        return self._last_ms

    def channel_time(self) -> str:
        """The next ``channel.time``: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (§3.4)."""
        epoch_ms = self.next_ms()
        seconds, millis = divmod(epoch_ms, 1000)
        if seconds != self._prefix_s:  # the date part changes once a second: cache it
            self._prefix_s = seconds
            self._prefix = format_channel_time(seconds * 1000)[:-4]
        return f"{self._prefix}{millis:03d}Z"

    def hex_id(self) -> str:
        """A body ``id``: 32 lowercase hex characters (§3.4), unique within the process."""
        self._counter += 1
        return f"{self._hex_prefix}{self._counter:012x}"

    def uuid(self) -> str:
        """A UUID v4-shaped string (messageId, correlationId, attachmentId), unique."""
        self._counter += 1
        return f"{self._uuid_prefix}{self._counter:012x}"
