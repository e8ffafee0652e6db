"""``harness sim --bot-rules`` and ``--answer-messages/--answer-gap``: a scriptable bot whose
answers have several messages, checked with a plain ``websockets`` client."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UsageError
from harness.sim.launcher import SimProcess
from harness.sim.rules import load_rules
from harness.sim.stats import parse_summary

from .conftest import DEPLOYMENT, Guest

RULES = """\
welcome:
  - Hi, I'm the order bot.
  - text: How can I help?
    quickReplies: [Track an order, {text: Talk to a person, payload: handoff}]
rules:
  - contains: order
    reply:
      - Let me look that up.
      - text: Which order?
        delay: 20ms
        quickReplies: [Last order, {text: Older ones, payload: older}]
  - payload: older
    reply: I only know your last order.
  - equals: "  BYE "
    reply: Goodbye!
    disconnect: true
  - regex: '^no+\\b'
    reply: No? Fine.
fallback:
  reply: Sorry, I did not understand.
"""


def _rules(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["body"].get("text") for f in frames]


def _quick(frame: dict[str, Any]) -> list[tuple[str, str]]:
    items = frame["body"].get("content") or []
    return [(c["quickReply"]["text"], c["quickReply"]["payload"]) for c in items]


def _choose(guest: Guest, text: str, payload: str) -> None:
    button = {"type": "QuickReply", "text": text, "payload": payload}
    content = [{"contentType": "ButtonResponse", "buttonResponse": button}]
    guest.on_message(message={"type": "Structured", "text": text, "content": content})


def test_rules_answer_in_several_messages_with_quick_replies(
    start_sim: Callable[..., SimProcess], guests: Callable[..., Guest], tmp_path: Path
) -> None:
    sim = start_sim("--bot-rules", str(_rules(tmp_path)), "--bot-latency", "5ms", "--no-limits")
    guest = guests(sim.url)
    guest.configure()
    join = {"eventType": "Presence", "presence": {"type": "Join"}}
    guest.on_message(message={"type": "Event", "events": [join]})
    echo, hello, help_ = guest.recv_many(3)
    assert echo["body"]["direction"] == "Inbound"
    assert _texts([hello, help_]) == ["Hi, I'm the order bot.", "How can I help?"]
    track, person = ("Track an order", "Track an order"), ("Talk to a person", "handoff")
    assert _quick(help_) == [track, person]
    guest.on_message("Where is my ORDER?")
    frames = guest.recv_many(3)
    assert _texts(frames[1:]) == ["Let me look that up.", "Which order?"]
    assert _quick(frames[2]) == [("Last order", "Last order"), ("Older ones", "older")]
    assert frames[2]["body"]["type"] == "Structured"
    _choose(guest, "Older ones", "older")  # the next rule matches its payload
    assert _texts(guest.recv_many(2)[1:]) == ["I only know your last order."]
    guest.on_message("nooo way")
    assert _texts(guest.recv_many(2)[1:]) == ["No? Fine."]
    guest.on_message("what?")
    assert _texts(guest.recv_many(2)[1:]) == ["Sorry, I did not understand."]
    guest.on_message("bye")
    echo, goodbye, disconnect = guest.recv_many(3)
    assert _texts([goodbye]) == ["Goodbye!"]
    assert disconnect["body"]["events"][0]["presence"]["type"] == "Disconnect"
    assert disconnect["body"]["metadata"]["readOnly"] == "true"


def test_answer_messages_and_gap_are_timed_in_the_summary(
    start_sim: Callable[..., SimProcess], guests: Callable[..., Guest]
) -> None:
    sim = start_sim(
        "--answer-messages", "3", "--answer-gap", "30ms", "--bot-latency", "10ms",
        "--quick-replies", "0", "--deployment-id", DEPLOYMENT,
    )  # fmt: skip
    guest = guests(sim.url)
    guest.configure()
    for text in ("one", "two"):
        guest.on_message(text)
        frames = guest.recv_many(4)
        assert _texts(frames[1:]) == [f"You said: {text}"] * 3
    stats = parse_summary(sim.stop())
    assert stats is not None
    assert (stats.answers, stats.answers_completed, stats.answer_messages) == (2, 2, 6)
    first_ms = stats.answer_first_us / stats.answers / 1000
    last_ms = stats.answer_last_us / stats.answers_completed / 1000
    assert 9.5 <= first_ms < 60 and 69 <= last_ms < 200  # 10 ms, then two 30 ms gaps


def test_yes_and_no_stay_text(tmp_path: Path) -> None:
    rules = load_rules(_rules(tmp_path, "rules:\n  - equals: Yes\n    reply: No\n"))
    answer = rules.answer("yes")
    assert answer is not None and answer.messages[0].text == "No"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("rules:\n  - contians: x\n    reply: y\n", 2, "unknown key 'contians'"),
        ("rules:\n  - contains: x\n", 2, "needs a reply"),
        ("rules:\n  - regex: '('\n    reply: y\n", 2, "bad regex"),
        ("rules:\n  - equals: a\n    contains: b\n    reply: c\n", 2, "exactly one of"),
        ("rules:\n  - equals: a\n    reply:\n      - text: b\n        delay: soon\n", 5, "delay"),
        ("fallback:\n  reply: a\n  dissconnect: true\n", 3, "unknown key 'dissconnect'"),
        ("rules: [\n", 2, "not valid YAML"),
        ("colour: blue\n", 1, "unknown key 'colour'"),
    ],
)
def test_a_bad_rules_file_names_its_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = _rules(tmp_path, text)
    with pytest.raises(UsageError, match=needle) as info:
        load_rules(path)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_harness_sim_refuses_a_bad_rules_file_in_one_line(tmp_path: Path) -> None:
    path = _rules(tmp_path, "rules:\n  - contains: x\n    replly: y\n")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "sim", "--bot-rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"harness sim: error: {path}:3: unknown key 'replly' in a rule "
        "(contains, disconnect, equals, payload, regex, reply)"
    ]
