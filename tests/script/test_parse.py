"""Conversation scripts: both shapes parse, every mistake is one line with file:line and key."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.loadgen.script.model import ChooseQuickReply, Say, Think, Typing, WaitFor
from harness.loadgen.script.parse import load_script
from harness.loadgen.script.template import Context, Template

ROOT = Path(__file__).resolve().parents[2]


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_testers_example_parses_unchanged() -> None:
    script = load_script(ROOT / "examples" / "tester" / "example-pass.yml")
    names = [s.name for s in script.scenarios]
    assert names == [
        "Accept Survey",
        "Decline Survey",
        "Provide Incorrect Answer to Survey Question",
    ]
    accept = script.scenarios[0].steps
    assert isinstance(accept[2], Say) and accept[2].text.source == "Yes"  # not True (YAML 1.1)
    assert isinstance(accept[3], WaitFor) and accept[3].regex is not None
    assert script.config.deployment_id == "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    assert script.config.region == "xxxx.pure.cloud"
    assert [s.weight for s in script.scenarios] == [1.0, 1.0, 1.0]


def test_every_step_kind_and_option(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("name,plan\nAda,gold\nBob,silver\n", encoding="utf-8")
    script = load_script(
        _script(
            tmp_path,
            """\
config: {csv: users.csv, think: 0s, timeout: 3s, reorderWindow: 200ms}
scenarios:
  All:
    weight: 2.5
    steps:
      - typing
      - say: "Hi {csv:name} ({user}, {scenario}, {{literal}})"
      - sayWithAttributes: {text: plan, attributes: {plan: "{csv:plan}"}}
      - think: lognormal(median=4s,p99=20s)
      - waitForReplyContaining: hello
        timeout: 2s
      - waitForReplyMatching: '^Hi \\w+'
      - waitForQuickReplies
      - chooseQuickReply: Track an order
      - chooseQuickReply: 2
      - chooseQuickReply: random
      - waitForDisconnect: {}
""".replace("waitForDisconnect: {}", "waitForDisconnect"),
        )
    )
    (scenario,) = script.scenarios
    kinds = [type(step).__name__ for step in scenario.steps]
    assert kinds[:4] == ["Typing", "Say", "Say", "Think"]
    assert [step.number for step in scenario.steps] == list(range(1, 12))
    assert scenario.weight == 2.5 and script.config.timeout_s == 3.0
    assert script.config.reorder_window_s == 0.2 and script.config.columns == ("name", "plan")
    say = scenario.steps[1]
    assert isinstance(say, Say)
    ctx = Context(user=7, run="r1", scenario="All", row=script.row_for(7))
    assert say.text.render(ctx, random.Random(0)) == "Hi Bob (7, All, {literal})"
    wait = scenario.steps[4]
    assert isinstance(wait, WaitFor) and wait.timeout_s == 2.0 and wait.line == 10
    choices = scenario.steps[7:10]
    assert [c.label if isinstance(c, ChooseQuickReply) else None for c in choices] == [
        "Track an order",
        None,
        None,
    ]
    assert isinstance(choices[1], ChooseQuickReply) and choices[1].index == 2
    assert isinstance(scenario.steps[0], Typing) and isinstance(scenario.steps[3], Think)


def test_templates_choose_at_random_and_refuse_unknown_fields() -> None:
    t = Template.parse("{choice:a|b|c}!", None)
    picks = {t.render(Context(1, "r", "s"), random.Random(i)) for i in range(50)}
    assert picks == {"a!", "b!", "c!"}
    for bad, needle in [
        ("{nmae}", "unknown field"),
        ("{csv:x}", "needs config.csv"),
        ("{choice:a||b}", "every choice"),
        ("a } b", "unbalanced"),
    ]:
        with pytest.raises(UsageError, match=needle):
            Template.parse(bad, None)


def test_weights_give_the_mix_within_tolerance(tmp_path: Path) -> None:
    text = "scenarios:\n  A: {weight: 3, steps: [say: a]}\n  B: {weight: 1, steps: [say: b]}\n"
    script = load_script(_script(tmp_path, text))
    rng = random.Random(42)
    draws = [script.pick(rng).name for _ in range(10_000)]
    share = draws.count("A") / len(draws)
    assert abs(share - 0.75) < 0.02  # 4.6 standard deviations of a 10k-draw share


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("scenarios:\n  A:\n    - sya: hi\n", 3, "unknown key 'sya'"),
        ("scenario:\n  A: [say: hi]\n", 1, "unknown key 'scenario'"),
        ("config: {deploymentID: x}\nscenarios: {A: [say: hi]}\n", 1, "unknown key 'deploymentID'"),
        ("scenarios:\n  A:\n    - say: hi\n      timeout: 2s\n", 4, "timeout is for waitFor"),
        ("scenarios:\n  A:\n    - say: hi\n      waitForQuickReplies:\n", 3, "exactly one"),
        ("scenarios:\n  A:\n    - waitForReplyMatching: '('\n", 3, "bad regex"),
        ("scenarios:\n  A:\n    - think: soon\n", 3, "think"),
        ("scenarios:\n  A:\n    - say: 'hi {who}'\n", 3, "unknown field {who}"),
        ("scenarios:\n  A: {weight: 0, steps: [say: a]}\n", 2, "weight must be > 0"),
        ("scenarios:\n  A: []\n", 2, "needs a list of steps"),
        ("scenarios: {}\n", 1, "at least one"),
        ("scenarios:\n  A:\n    - chooseQuickReply: 0\n", 3, "counts from 1"),
        ("scenarios:\n  A:\n    - say:\n", 3, "say needs a text"),
        ("config:\n  csv: missing.csv\nscenarios: {A: [say: a]}\n", 2, "cannot read csv"),
        ("scenarios:\n  A:\n    - say: [unclosed\n", 4, "not valid YAML"),
    ],
)
def test_mistakes_are_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int, needle: str
) -> None:
    path = _script(tmp_path, text)
    with pytest.raises(UsageError, match=needle) as info:
        load_script(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and "\n" not in message
