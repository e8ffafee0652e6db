"""A bot that answers each text with several messages, measured truthfully: botReply is the
first message, botAnswer the last, and no message of one answer is taken for the next turn's
reply (issue: 3 messages 150 ms apart, think time 50 ms)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.record import schema as s

from .conftest import headless


def _ok(ev: pd.DataFrame, step: str) -> pd.DataFrame:
    return ev[(ev[s.STEP] == step) & ev[s.OK]]


def test_three_message_answers_with_a_short_think_time(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    sim = "--answer-messages 3 --answer-gap 150ms --bot-latency 30ms --quick-replies 0"
    ev, info = headless(
        tmp_path / "run", locust_env, "--think-time", "50ms", "--sim-args", sim,
        "--answer-quiet", "400ms",
    )  # fmt: skip
    summary = info["simulator_summary"]
    replies, answers = _ok(ev, s.STEP_BOT_REPLY), _ok(ev, s.STEP_BOT_ANSWER)
    assert len(replies) == summary["answers"] == summary["answers_completed"] > 20
    assert len(answers) == len(replies) and set(answers[s.ANSWER_MESSAGES]) == {3}
    assert summary["answer_messages"] == 3 * len(answers)
    integrity = ev[ev[s.STEP] == s.STEP_INTEGRITY][s.ERROR].value_counts().to_dict()
    assert integrity.get(s.INTEGRITY_OUT_OF_ORDER, 0) == 0, integrity
    assert integrity.get(s.INTEGRITY_LATE_MESSAGE, 0) == 0, integrity
    server_first_ms = summary["answer_first_us"] / summary["answers"] / 1000
    server_last_ms = summary["answer_last_us"] / summary["answers_completed"] / 1000
    client_first_ms = replies[s.LATENCY_US].mean() / 1000
    client_last_ms = answers[s.LATENCY_US].mean() / 1000
    # measured from our send: never less than the server's own delay (1 ms timer slack),
    # and only loopback and scheduling above it
    assert server_first_ms - 1 <= client_first_ms < server_first_ms + 15
    assert server_last_ms - 1 <= client_last_ms < server_last_ms + 15
    assert 25 < server_first_ms < 60 and 320 < server_last_ms < 400
