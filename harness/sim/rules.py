"""``harness sim --bot-rules rules.yml``: a scriptable bot, so scripted conversations can be
rehearsed offline against answers that look like a real Architect bot's.

The file (every key optional but one of ``rules`` / ``fallback`` / ``welcome``)::

    welcome:                       # answer to a Presence Join (default: the built-in welcome)
      - "Hi, I'm the order bot."
    rules:                         # first match wins, in file order
      - contains: order            # or equals: / regex: / payload: (a quick-reply answer)
        reply:
          - Let me look that up.   # a message: text, or a mapping:
          - text: Which order?
            delay: uniform:100ms,300ms   # gap after the previous message (default: the
            quickReplies:                # simulator's --bot-latency / --answer-gap draws)
              - Last order               # label = payload
              - {text: Older orders, payload: older}
        disconnect: false          # true: end the conversation (ReadOnly) after the reply
    fallback:                      # no rule matched (default: the built-in "You said: …")
      reply: Sorry, I did not understand.

Matching: ``equals`` and ``contains`` ignore case and surrounding blanks; ``regex`` is a Python
``re.search``; ``payload`` matches the payload of a quick-reply answer (ButtonResponse), whose
text is also tried against the text rules. A bad file is a one-line error naming its line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.protocol.units import Distribution
from harness.yamlfile import YamlError, check_keys, line_of, load

MATCHERS = ("equals", "contains", "regex", "payload")
_RULE_KEYS = frozenset({*MATCHERS, "reply", "disconnect"})
_MESSAGE_KEYS = frozenset({"text", "delay", "quickReplies"})


def quick_reply_content(choices: Sequence[tuple[str, str]]) -> tuple[dict[str, Any], ...]:
    """The §3.4 QuickReply content items for (text, payload) pairs."""
    return tuple(
        {"contentType": "QuickReply", "quickReply": {"text": t, "payload": p, "action": "Message"}}
        for t, p in choices
    )


@dataclass(frozen=True, slots=True)
class Utterance:
    """One bot message of an answer; ``delay`` None takes the simulator's default draw."""

    text: str
    quick_replies: tuple[tuple[str, str], ...] = ()
    delay: Distribution | None = None

    def content(self) -> tuple[dict[str, Any], ...] | None:
        """The §3.4 QuickReply content items, or None for plain text."""
        return quick_reply_content(self.quick_replies) if self.quick_replies else None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bot says to one input, and whether it then ends the conversation."""

    messages: tuple[Utterance, ...]
    disconnect: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    matcher: str
    pattern: str
    regex: re.Pattern[str] | None
    answer: Answer
    line: int

    def matches(self, text: str | None, payload: str | None) -> bool:
        if self.matcher == "payload":
            return payload is not None and payload == self.pattern
        if text is None:
            return False
        if self.regex is not None:
            return self.regex.search(text) is not None
        folded = text.strip().casefold()
        if self.matcher == "equals":
            return folded == self.pattern
        return self.pattern in folded


@dataclass(frozen=True, slots=True)
class BotRules:
    """The parsed file; :meth:`answer` picks what to say."""

    rules: tuple[Rule, ...] = ()
    welcome: Answer | None = None
    fallback: Answer | None = None
    path: str = ""

    def answer(self, text: str | None, payload: str | None = None) -> Answer | None:
        """The first matching rule's answer, else the fallback (None: the default bot)."""
        for rule in self.rules:
            if rule.matches(text, payload):
                return rule.answer
        return self.fallback


def _quick_replies(path: Path, value: Any, where: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise YamlError(path, line_of(where), "quickReplies must be a list")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append((str(item), str(item)))
            continue
        check_keys(path, item, {"text", "payload"}, "a quick reply")
        if not isinstance(item.get("text"), str):
            raise YamlError(path, line_of(value, i), "a quick reply needs text")
        out.append((item["text"], str(item.get("payload", item["text"]))))
    return tuple(out)


def _message(path: Path, item: Any, line: int) -> Utterance:
    if isinstance(item, str | int | float) and not isinstance(item, bool):
        return Utterance(str(item))
    check_keys(path, item, _MESSAGE_KEYS, "a reply message")
    text = item.get("text")
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise YamlError(path, line, "a reply message needs text")
    delay = None
    if "delay" in item:
        try:
            delay = Distribution.parse(str(item["delay"]), "delay")
        except UsageError as exc:
            raise YamlError(path, line_of(item, "delay"), str(exc)) from None
    quick = _quick_replies(path, item["quickReplies"], item) if "quickReplies" in item else ()
    return Utterance(str(text), quick, delay)


def _answer(path: Path, block: Any, where: str) -> Answer:
    """``reply`` (text, message or list of them) and ``disconnect`` of a rule or fallback."""
    reply = block.get("reply", [])
    items = reply if isinstance(reply, list) else [reply]
    lines = getattr(reply, "item_lines", [line_of(block, "reply")] * len(items))
    messages = tuple(_message(path, item, line) for item, line in zip(items, lines, strict=True))
    disconnect = block.get("disconnect", False)
    if not isinstance(disconnect, bool):
        raise YamlError(path, line_of(block, "disconnect"), "disconnect must be true or false")
    if not messages and not disconnect:
        raise YamlError(path, line_of(block), f"{where} needs a reply or disconnect: true")
    return Answer(messages, disconnect)


def _rule(path: Path, block: Any) -> Rule:
    check_keys(path, block, _RULE_KEYS, "a rule")
    found = [m for m in MATCHERS if m in block]
    if len(found) != 1:
        raise YamlError(path, line_of(block), f"a rule needs exactly one of {', '.join(MATCHERS)}")
    matcher = found[0]
    raw = block[matcher]
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise YamlError(path, line_of(block, matcher), f"{matcher} needs a text")
    pattern, regex = str(raw), None
    if matcher == "regex":
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise YamlError(
                path, line_of(block, matcher), f"bad regex {pattern!r}: {exc}"
            ) from None
    elif matcher != "payload":
        pattern = pattern.strip().casefold()
    return Rule(matcher, pattern, regex, _answer(path, block, "a rule"), line_of(block))


def load_rules(path: Path | str) -> BotRules:
    """Parse a bot-rules file.

    Raises:
        UsageError: unreadable, not YAML, or a bad entry (``FILE:LINE: what``).
    """
    path = Path(path)
    doc = load(path, "bot rules")
    check_keys(path, doc, {"rules", "welcome", "fallback"}, "the bot rules")
    rules_raw: Sequence[Any] = doc.get("rules", [])
    if not isinstance(rules_raw, list):
        raise YamlError(path, line_of(doc, "rules"), "rules must be a list")
    rules = tuple(_rule(path, block) for block in rules_raw)
    welcome = None
    if "welcome" in doc:
        welcome = _answer(path, {"reply": doc["welcome"]}, "welcome")
    fallback = None
    if "fallback" in doc:
        block = doc["fallback"]
        check_keys(path, block, {"reply", "disconnect"}, "fallback")
        fallback = _answer(path, block, "fallback")
    if not (rules or welcome or fallback):
        raise YamlError(path, line_of(doc), "no rules, welcome or fallback")
    return BotRules(rules, welcome, fallback, str(path))
