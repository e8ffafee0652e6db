"""Turn a settled pending request into a StepOutcome and, on failure, the exception to raise.

Kept apart from the client so the mapping (outcome → error category → exception) is one small
table-like place: 429 → ``rate_limited`` (not a failure, protocol.md §4.3), a ``string`` error
→ ``server_error_<code>``, a deadline → ``timeout``, the socket closing first → ``closed``.
"""

from __future__ import annotations

from harness.client.results import StepOutcome
from harness.errors import (
    HarnessError,
    RateLimited,
    ResponseTimeout,
    ServerErrorFrame,
    UnexpectedClose,
)
from harness.protocol.codes import Close
from harness.protocol.frames import ErrorResponse, TooManyRequests
from harness.protocol.session import Outcome, Pending

_NS_PER_US = 1000.0


def us(start_ns: int, end_ns: int) -> float:
    """A perf_counter_ns interval in microseconds."""
    return (end_ns - start_ns) / _NS_PER_US


def failure(
    pending: Pending, outcome: Outcome | None, close: Close | None, timeout_s: float
) -> HarnessError:
    """The exception for a part that did not settle OK."""
    frame = pending.frame
    if outcome is Outcome.RATE_LIMITED:
        # a TooManyRequests carries retryAfter; a bare 429/4029 string error does not (1 s)
        retry = frame.retry_after if isinstance(frame, TooManyRequests) else 1
        return RateLimited(float(max(retry, 1)))
    if outcome is Outcome.ERROR and isinstance(frame, ErrorResponse):
        return ServerErrorFrame(frame.code, frame.body, frame.tracing_id)
    if outcome is Outcome.ERROR and frame is not None:  # e.g. SessionExpiredEvent (§8.4 #12)
        return ServerErrorFrame(frame.code, type(frame).__name__, frame.tracing_id)
    if outcome is Outcome.CLOSED:
        return UnexpectedClose(close or Close.abnormal())
    return ResponseTimeout(f"{pending.kind.value}: no answer in {timeout_s:g} s")


def step_outcome(
    step: str,
    pending: Pending,
    ts: int,
    outcome: Outcome | None,
    end_ns: int,
    *,
    close: Close | None,
    timeout_s: float,
    bytes_out: int | None = None,
    bytes_in: int | None = None,
    intended_ns: int | None = None,
) -> tuple[StepOutcome, HarnessError | None]:
    """The row for one step of a request, and the exception to raise after reporting it."""
    if outcome is Outcome.OK:
        row = StepOutcome(
            step,
            ts,
            us(pending.started_ns, end_ns),
            True,
            bytes_out=bytes_out,
            bytes_in=bytes_in,
            intended_ns=intended_ns,
        )
        return row, None
    exc = failure(pending, outcome, close, timeout_s)
    error = "rate_limited" if isinstance(exc, RateLimited) else getattr(exc, "category", None)
    closed = close if outcome is Outcome.CLOSED else None
    row = StepOutcome(
        step,
        ts,
        us(pending.started_ns, end_ns) if end_ns else None,
        False,
        error,
        close_code=closed.code if closed else None,
        close_initiator=closed.initiator if closed else None,
        detail=str(exc)[:200],
        bytes_out=bytes_out,
        intended_ns=intended_ns,
        exception=exc,
    )
    return row, exc
