"""What the client reports: one ``StepOutcome`` per measured step (design.md raw event schema).

Pure dataclasses; the load generator turns them into raw event rows and Locust events. The
integrity counters live with the correlation state machine (harness.protocol.session) and are
re-exported here so callers need only this module.
"""

from __future__ import annotations

from typing import NamedTuple

from harness.protocol.session import IntegrityCounters

__all__ = ["IntegrityCounters", "StepOutcome"]


class StepOutcome(NamedTuple):
    """One measured thing: a step's start, duration and result.

    ``latency_us`` is ``perf_counter_ns`` based and None for fire-and-forget steps (a typing
    send is not a 0 ms request). ``detail`` is short free text and never holds a token's
    secret, an auth code or a JWT.

    A NamedTuple rather than a frozen dataclass: two are built per turn on the hot path, and a
    NamedTuple builds 3-4x faster with the same constructor, fields and immutability.
    """

    step: str
    ts_ns: int
    latency_us: float | None
    ok: bool
    error: str | None = None
    http_status: int | None = None
    close_code: int | None = None
    close_initiator: str | None = None
    close_reason: str | None = None
    detail: str | None = None
    bytes_out: int | None = None
    bytes_in: int | None = None
    intended_ns: int | None = None
    messages: int | None = None  # botAnswer: outbound messages in the bot's answer
    exception: BaseException | None = None
