"""The reply box: channel.time order within the reorder window, a cursor, quick replies."""

from __future__ import annotations

from typing import Any

from harness.loadgen.script.replies import ReplyBox
from harness.protocol import codec
from harness.protocol.frames import StructuredMessage

MS = 1_000_000


def _bot(text: str, ms: int, **kw: Any) -> StructuredMessage:
    stamp = codec.format_channel_time(1_750_000_000_000 + ms)
    return StructuredMessage(direction="Outbound", type=kw.pop("type", "Text"), text=text,
                             channel={"time": stamp}, **kw)  # fmt: skip


def _contains(word: str) -> Any:
    return lambda e: e.text is not None and word in e.text


def test_swapped_messages_within_the_window_are_put_back_in_order() -> None:
    box = ReplyBox(window_ns=500 * MS)
    assert box.add(10 * MS, _bot("second", 2)) is False
    assert box.add(20 * MS, _bot("first", 1)) is True  # 10 ms late, stamped earlier
    assert box.texts == ["first", "second"]
    assert box.take(_contains("first")) is not None
    assert box.take(_contains("second")) is not None
    assert box.take(_contains("first")) is None  # consumed: not matched twice


def test_beyond_the_window_arrival_order_stands() -> None:
    box = ReplyBox(window_ns=100 * MS)
    box.add(0, _bot("second", 2))
    assert box.add(300 * MS, _bot("first", 1)) is False
    assert box.texts == ["second", "first"]
    assert box.take(_contains("first")) is not None
    assert box.take(_contains("second")) is None  # skipped over: the order broke


def test_mark_send_starts_over_and_quick_replies_are_the_latest_offered() -> None:
    box = ReplyBox(window_ns=0)
    item = {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "y"}}
    box.add(0, _bot("menu", 1, type="Structured", content=(item,)))
    box.add(1, _bot("more", 2))
    assert box.latest_quick_replies() == [("Yes", "y")]
    box.mark_send()
    assert box.texts == [] and box.latest_quick_replies() == []
    event = {"eventType": "Presence", "presence": {"type": "Disconnect"}}
    disconnect = _bot("", 3, type="Event", events=(event,))
    box.add(2, disconnect)
    assert box.disconnect is not None and box.texts == []
