"""Scripted conversations against the simulator's scriptable bot (loopback, bounded runs):
the web messaging tester's format unchanged, mismatches with expected vs arrived, quick
replies, reordering within the window, and load-test tagging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from harness.record import schema as s

from .conftest import ROOT, headless

TESTER = ROOT / "examples" / "tester"


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _rows(ev: pd.DataFrame, step: str) -> pd.DataFrame:
    return ev[ev[s.STEP] == step]


def test_the_testers_script_runs_unchanged_and_every_step_passes(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    rules = TESTER / "survey-bot-rules.yml"
    ev, _ = headless(
        tmp_path / "run", locust_env, "--script", str(TESTER / "example-pass.yml"),
        "--sim-args", f"--bot-rules {rules}", "--think-time", "0.2s", users=3, seconds=8,
    )  # fmt: skip
    scenarios = _rows(ev, s.STEP_SCENARIO)
    assert len(scenarios) >= 6 and scenarios[s.OK].all(), scenarios[s.DETAIL].tolist()
    assert set(scenarios[s.SCENARIO]) == {
        "Accept Survey",
        "Decline Survey",
        "Provide Incorrect Answer to Survey Question",
    }
    replies = _rows(ev, s.STEP_SCRIPT_REPLY)
    assert replies[s.OK].all() and replies[s.LATENCY_US].gt(0).all()
    steps = replies.groupby(s.SCENARIO, observed=True)[s.SCRIPT_STEP].unique()
    assert sorted(steps["Provide Incorrect Answer to Survey Question"]) == [2, 4, 5]
    assert (replies[s.SCRIPT_STEP] > 0).all()


def test_a_different_answer_fails_the_step_with_expected_and_arrived(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    script = _write(tmp_path, "s.yml", """\
config: {timeout: 1s}
scenarios:
  Refund:
    - say: I want a refund
    - waitForReplyContaining: refund approved
    - say: thanks
""")  # fmt: skip
    rules = _write(
        tmp_path, "r.yml", "rules:\n  - contains: refund\n    reply: Refunds are closed\n"
    )
    ev, info = headless(
        tmp_path / "run", locust_env, "--script", script, "--sim-args", f"--bot-rules {rules}",
        "--think-time", "0.1s", users=2, seconds=5,
    )  # fmt: skip
    failed = _rows(ev, s.STEP_SCRIPT_REPLY)
    assert len(failed) > 0 and not failed[s.OK].any()
    assert set(failed[s.ERROR]) == {s.ERR_MISMATCH} and set(failed[s.SCRIPT_STEP]) == {2}
    detail = failed[s.DETAIL].iloc[0]
    assert "'refund approved'" in detail and "'Refunds are closed'" in detail
    ends = _rows(ev, s.STEP_SCENARIO)
    stopped = ends[ends[s.ERROR] != s.ERR_STOPPED]
    assert not stopped[s.OK].any() and set(stopped[s.SCRIPT_STEP]) == {2}
    sent = _rows(ev, s.STEP_ON_MESSAGE)
    assert set(sent[s.SCRIPT_STEP]) == {1}  # "thanks" was never sent
    closes = _rows(ev, s.STEP_CLOSE)
    assert set(closes[s.CLOSE_CODE]) == {1000}  # each failed conversation ended cleanly
    assert info["simulator_summary"]["sessions"] == len(ends)  # and the next one began
    # the report's funnel says where and why; compare sees the scenario too
    run_dir = tmp_path / "run"
    gate = "scenarios.completion_rate >= 50% min=1"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run_dir), "--no-plots", "--slo", gate],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # 0 % completed: the gate fails
    report = json.loads((run_dir / "report.json").read_text())
    refund = report["scenarios"]["Refund"]
    assert refund["completed"] == 0 and refund["failed"] == len(stopped)
    funnel = {row["step"]: row for row in refund["funnel"]}
    assert funnel[2]["failed"] == len(stopped) and funnel[2]["reasons"] == {
        "mismatch": len(stopped)
    }
    assert funnel[2]["description"] == "waitForReplyContaining 'refund approved'"
    assert funnel[3]["reached"] == 0 and "'Refunds are closed'" in refund["examples"]["2 mismatch"]
    assert report["slo"][0]["verdict"] == "fail"
    compare = subprocess.run(
        [sys.executable, "-m", "harness", "compare", str(run_dir), str(run_dir)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert compare.returncode == 0 and "scenarios.Refund.completion_rate" in compare.stdout


def test_quick_replies_are_offered_chosen_by_label_and_matched_by_payload(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    script = _write(tmp_path, "s.yml", """\
scenarios:
  Menu:
    - say: menu
    - waitForQuickReplies
    - chooseQuickReply: older ones
    - waitForReplyContaining: only know your last order
""")  # fmt: skip
    rules = _write(tmp_path, "r.yml", """\
rules:
  - equals: menu
    reply: {text: "Which order?", quickReplies: [Last order, {text: Older ones, payload: older}]}
  - payload: older
    reply: I only know your last order.
""")  # fmt: skip
    ev, _ = headless(
        tmp_path / "run", locust_env, "--script", script, "--sim-args", f"--bot-rules {rules}",
        "--think-time", "0.1s", users=2, seconds=4,
    )  # fmt: skip
    done = _rows(ev, s.STEP_SCENARIO)
    done = done[done[s.ERROR] != s.ERR_STOPPED]
    assert len(done) >= 2 and done[s.OK].all(), done[s.DETAIL].tolist()
    sends = _rows(ev, s.STEP_ON_MESSAGE)
    assert set(sends[s.SCRIPT_STEP]) == {1, 3}
    # the quick-reply answer closes at once (ends-on-quick-replies): one message
    answers = _rows(ev, s.STEP_BOT_ANSWER)
    assert set(answers[answers[s.SCRIPT_STEP] == 1][s.ANSWER_MESSAGES]) == {1}


REORDER_SCRIPT = """\
scenarios:
  Three:
    - say: go
    - waitForReplyContaining: one
    - waitForReplyContaining: two
    - waitForReplyContaining: three
"""
REORDER_RULES = """\
rules:
  - equals: go
    reply: [one, {text: two, delay: 20ms}, {text: three, delay: 20ms}]
"""


def test_reordered_messages_pass_within_the_window_and_are_counted(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    script = _write(tmp_path, "s.yml", REORDER_SCRIPT)
    sim = f"--bot-rules {_write(tmp_path, 'r.yml', REORDER_RULES)} --fault-reorder every:1"
    ev, _ = headless(
        tmp_path / "run", locust_env, "--script", script, "--sim-args", sim,
        "--think-time", "0.1s", users=2, seconds=4,
    )  # fmt: skip
    done = _rows(ev, s.STEP_SCENARIO)
    done = done[done[s.ERROR] != s.ERR_STOPPED]
    assert len(done) >= 2 and done[s.OK].all(), done[s.DETAIL].tolist()
    integrity = _rows(ev, s.STEP_INTEGRITY)[s.ERROR].value_counts()
    assert integrity[s.INTEGRITY_REORDERED] >= len(done)  # "two" arrived after "three"
    # without the window the order breaks: step 4 waits for "three", already skipped
    ev0, _ = headless(
        tmp_path / "run0", locust_env, "--script", script, "--sim-args", sim,
        "--think-time", "0.1s", "--reorder-window", "0", "--reply-timeout", "1s",
        users=1, seconds=3,
    )  # fmt: skip
    failed = _rows(ev0, s.STEP_SCENARIO)
    failed = failed[failed[s.ERROR] != s.ERR_STOPPED]
    assert len(failed) >= 1 and set(failed[s.SCRIPT_STEP]) == {4}
    assert set(failed[s.ERROR]) == {s.ERR_MISMATCH}


def test_every_guest_message_is_tagged_unless_told_not_to(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    args = ("--think-time", "0.1s", "--messages-per-session", "2", "--presence-join", "on")
    _, info = headless(tmp_path / "run", locust_env, *args, users=2, seconds=3)
    summary = info["simulator_summary"]
    typing = 2 * summary["sessions"]  # Typing On is sent untagged (high volume, no routing)
    assert summary["messages_with_attributes"] == summary["messages"] - typing > 0
    assert "4013" not in summary["errors_by_code"]  # within the 2048-byte limit
    _, plain = headless(tmp_path / "plain", locust_env, *args, "--no-tagging", users=2, seconds=3)
    assert plain["simulator_summary"]["messages_with_attributes"] == 0
