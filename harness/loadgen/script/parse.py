"""Read a conversation script (YAML) into a :class:`~.model.Script`; every mistake is one line
naming the file, the line and the key, and nothing starts.

Two shapes of ``scenarios:`` are accepted, mixed freely::

    scenarios:
      "Accept Survey":                 # the open-source web messaging tester's shape:
        - say: hi                      #   a list of steps, weight 1
        - waitForReplyContaining: Can we ask you some questions
      Track an order:                  # ours: a mapping with a weight and steps
        weight: 3
        steps:
          - say: "Hi, I'm guest {user}"
          - waitForReplyMatching: '[Oo]rder'
            timeout: 5s

A step is a mapping with one action key (plus ``timeout`` on waits); ``typing``,
``waitForQuickReplies`` and ``waitForDisconnect`` may also be written as bare words.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.loadgen.script.model import (
    CONTAINING,
    DISCONNECT,
    MATCHING,
    QUICK_REPLIES,
    ChooseQuickReply,
    Say,
    Scenario,
    Script,
    ScriptConfig,
    Step,
    Think,
    Typing,
    WaitFor,
)
from harness.loadgen.script.template import Template
from harness.protocol.limits import CUSTOM_ATTRIBUTES_MAX_BYTES
from harness.protocol.units import Distribution, parse_duration
from harness.yamlfile import YamlError, check_keys, line_of, load

_TOP = frozenset({"config", "scenarios"})
_CONFIG = frozenset(
    {"deploymentId", "region", "origin", "csv", "think", "timeout", "reorderWindow"}
)
_SCENARIO = frozenset({"weight", "steps", "description"})
_WAITS = {
    "waitForReplyContaining": CONTAINING,
    "waitForReplyMatching": MATCHING,
    "waitForQuickReplies": QUICK_REPLIES,
    "waitForDisconnect": DISCONNECT,
}
ACTIONS = ("say", "sayWithAttributes", "chooseQuickReply", "typing", "think", *_WAITS)
_BARE = frozenset({"typing", "waitForQuickReplies", "waitForDisconnect"})


class _Reader:
    """Parse state: the file (for messages) and the CSV header (for templates)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: tuple[str, ...] | None = None

    def fail(self, line: int, message: str) -> YamlError:
        return YamlError(self.path, line, message)

    def text(self, value: Any, line: int, what: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise self.fail(line, f"{what} needs a text")
        return str(value)

    def template(self, value: Any, line: int, what: str) -> Template:
        try:
            return Template.parse(self.text(value, line, what), self.columns)
        except YamlError:
            raise
        except UsageError as exc:
            raise self.fail(line, f"{what}: {exc}") from None

    def duration(self, value: Any, line: int, what: str) -> float:
        try:
            return parse_duration(str(value))
        except UsageError as exc:
            raise self.fail(line, f"{what}: {exc}") from None

    def distribution(self, value: Any, line: int, what: str) -> Distribution:
        try:
            return Distribution.parse(str(value), what)
        except UsageError as exc:
            raise self.fail(line, str(exc)) from None


def _config(r: _Reader, block: Any) -> ScriptConfig:
    check_keys(r.path, block, _CONFIG, "config")
    rows: tuple[dict[str, str], ...] = ()
    if "csv" in block:
        rows = _rows(r, block["csv"], line_of(block, "csv"))
    get = block.get
    return ScriptConfig(
        deployment_id=str(get("deploymentId")) if get("deploymentId") else None,
        region=str(get("region")) if get("region") else None,
        origin=str(get("origin")) if get("origin") else None,
        rows=rows,
        columns=r.columns,
        think=r.distribution(get("think"), line_of(block, "think"), "think")
        if "think" in block
        else None,
        timeout_s=r.duration(get("timeout"), line_of(block, "timeout"), "timeout")
        if "timeout" in block
        else None,
        reorder_window_s=r.duration(
            get("reorderWindow"), line_of(block, "reorderWindow"), "reorderWindow"
        )
        if "reorderWindow" in block
        else None,
    )


def _rows(r: _Reader, value: Any, line: int) -> tuple[dict[str, str], ...]:
    path = (r.path.parent / r.text(value, line, "csv")).resolve()
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = tuple({k: v or "" for k, v in row.items() if k is not None} for row in reader)
            r.columns = tuple(reader.fieldnames or ())
    except OSError as exc:
        raise r.fail(line, f"cannot read csv {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise r.fail(line, f"csv {path}: {exc}") from None
    if not rows or not r.columns:
        raise r.fail(line, f"csv {path} needs a header row and at least one row")
    return rows


def _say_with_attributes(r: _Reader, number: int, value: Any, line: int) -> Say:
    check_keys(r.path, value, {"text", "attributes"}, "sayWithAttributes")
    attributes = value.get("attributes")
    if not isinstance(attributes, dict) or not attributes:
        raise r.fail(line, "sayWithAttributes needs attributes: a mapping of names to texts")
    attrs = {
        str(k): r.template(v, line_of(attributes, k), f"attribute {k!r}")
        for k, v in attributes.items()
    }
    static = {k: t.source for k, t in attrs.items()}
    size = len(json.dumps(static, separators=(",", ":"), ensure_ascii=False).encode())
    if size > CUSTOM_ATTRIBUTES_MAX_BYTES:
        raise r.fail(
            line, f"attributes are {size} bytes: the limit is {CUSTOM_ATTRIBUTES_MAX_BYTES}"
        )
    return Say(number, line, r.template(value.get("text"), line, "sayWithAttributes"), attrs)


def _choose(r: _Reader, number: int, value: Any, line: int) -> ChooseQuickReply:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise r.fail(line, "chooseQuickReply index counts from 1")
        return ChooseQuickReply(number, line, index=value)
    label = r.text(value, line, "chooseQuickReply")
    if label.strip().lower() == "random":
        return ChooseQuickReply(number, line)
    return ChooseQuickReply(number, line, label=label)


def _wait(
    r: _Reader, number: int, action: str, value: Any, line: int, *, timeout: float | None
) -> WaitFor:
    kind = _WAITS[action]
    if kind == CONTAINING:
        return WaitFor(number, line, kind, text=r.template(value, line, action), timeout_s=timeout)
    if kind == MATCHING:
        pattern = r.text(value, line, action)
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise r.fail(line, f"{action}: bad regex {pattern!r}: {exc}") from None
        return WaitFor(number, line, kind, regex=regex, timeout_s=timeout)
    if value not in (None, True, ""):
        raise r.fail(line, f"{action} takes no value (only timeout:)")
    return WaitFor(number, line, kind, timeout_s=timeout)


_SIMPLE: dict[str, Callable[[_Reader, int, Any, int], Step]] = {
    "say": lambda r, n, v, line: Say(n, line, r.template(v, line, "say")),
    "sayWithAttributes": _say_with_attributes,
    "chooseQuickReply": _choose,
    "think": lambda r, n, v, line: Think(n, line, r.distribution(v, line, "think")),
}


def _step(r: _Reader, number: int, raw: Any, line: int) -> Step:
    if isinstance(raw, str) and raw in _BARE:
        raw = {raw: None}
    if not isinstance(raw, dict):
        raise r.fail(line, f"a step is a mapping with one of {', '.join(ACTIONS)}")
    actions = [k for k in raw if k in ACTIONS]
    extra = [k for k in raw if k not in ACTIONS and k != "timeout"]
    if extra:
        key = extra[0]
        raise r.fail(line_of(raw, key), f"unknown key {key!r} in a step ({', '.join(ACTIONS)})")
    if len(actions) != 1:
        raise r.fail(line, f"a step needs exactly one of {', '.join(ACTIONS)}")
    action = actions[0]
    value = raw[action]
    timeout = None
    if "timeout" in raw:
        if action not in _WAITS:
            raise r.fail(line_of(raw, "timeout"), f"timeout is for waitFor… steps, not {action}")
        timeout = r.duration(raw["timeout"], line_of(raw, "timeout"), "timeout")
    if action in _WAITS:
        return _wait(r, number, action, value, line, timeout=timeout)
    if action == "typing":
        if value not in (None, True, "on"):
            raise r.fail(line, "typing takes no value")
        return Typing(number, line)
    return _SIMPLE[action](r, number, value, line)


def _scenario(r: _Reader, name: str, block: Any, line: int) -> Scenario:
    weight: Any = 1.0
    steps_raw = block
    if isinstance(block, dict):
        check_keys(r.path, block, _SCENARIO, f"scenario {name!r}")
        weight, steps_raw = block.get("weight", 1.0), block.get("steps")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise r.fail(line_of(block, "weight"), f"scenario {name!r}: weight must be > 0")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise r.fail(line, f"scenario {name!r} needs a list of steps")
    steps = tuple(_step(r, i + 1, raw, line_of(steps_raw, i)) for i, raw in enumerate(steps_raw))
    return Scenario(name, float(weight), steps, line)


def load_script(path: Path | str) -> Script:
    """Parse and check a conversation script.

    Raises:
        UsageError: one line, ``FILE:LINE: what is wrong`` (unknown keys are named).
    """
    path = Path(path)
    doc = load(path, "conversation script")
    r = _Reader(path)
    check_keys(path, doc, _TOP, "the script")
    config = _config(r, doc["config"]) if "config" in doc else ScriptConfig()
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, dict) or not scenarios:
        raise r.fail(line_of(doc, "scenarios"), "scenarios: needs at least one named scenario")
    parsed = tuple(
        _scenario(r, name, block, line_of(scenarios, name)) for name, block in scenarios.items()
    )
    return Script(path, parsed, config)
