"""Turn a settled pending request into a StepOutcome and, on failure, the exception to raise.

Kept apart from the client so the mapping (outcome → error category → exception) is one small
table-like place: 429 → ``rate_limited`` (not a failure, protocol.md §4.3), a ``string`` error
→ ``server_error_<code>``, a deadline → ``timeout``, the socket closing first → ``closed``.
"""

from __future__ import annotations

import time

from harness.client.results import StepOutcome
from harness.client.transport import Transport
from harness.errors import (
    ConnectError,
    HandshakeRejected,
    HarnessError,
    RateLimited,
    ResponseTimeout,
    ServerErrorFrame,
    UnexpectedClose,
)
from harness.protocol.codes import Close
from harness.protocol.frames import ErrorResponse, TooManyRequests
from harness.protocol.session import (
    ANSWER_CONTENT,
    ANSWER_QUIET,
    Outcome,
    Pending,
    is_rate_limit,
)

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


def retry_after_s(headers: dict[str, str]) -> float:
    """Seconds from a ``Retry-After`` header (an HTTP-date or none: 1 s)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return 1.0


def connect_failure(
    exc: ConnectError, ts: int, latency_us: float
) -> tuple[StepOutcome, float | None]:
    """The ``connect`` row of a failed connect, and the seconds to wait when it was a 429."""
    rejected = exc if isinstance(exc, HandshakeRejected) else None
    status = rejected.status if rejected is not None else None
    wait = retry_after_s(rejected.headers) if rejected is not None and status == 429 else None
    row = StepOutcome(
        "connect",
        ts,
        latency_us,
        False,
        error="rate_limited" if wait is not None else exc.category,
        http_status=status,
        detail=str(exc)[:200],
        exception=exc,
    )
    return row, wait


def close_row(close: Close, transport: Transport, now_ns: int, ts: int) -> StepOutcome:
    """The one ``close`` row of an established connection (§6: 1006 = no close frame).

    When we closed first, its start is our close frame and its latency the close handshake.
    """
    started = transport.close_handshake_ns
    ours = started and close.initiator == "client"
    clean = close.clean or (close.initiator == "client" and close.code == transport.close_sent)
    return StepOutcome(
        "close",
        ts - (now_ns - started) if started else ts,
        us(started, now_ns) if ours else None,
        clean,
        error=None if clean else "closed",
        close_code=close.code,
        close_initiator=close.initiator,
        close_reason=close.reason[:200] or None,
        bytes_out=transport.bytes_out,
        bytes_in=transport.bytes_in,
    )


def answer_row(pending: Pending, ts: int, intended_ns: int | None) -> StepOutcome:
    """``botAnswer``: from the send to the last message of the bot's answer, with the number
    of messages; ``detail`` names what closed it when that was not the quiet period."""
    end = pending.answer_end
    return StepOutcome(
        "botAnswer",
        ts,
        us(pending.started_ns, pending.last_ns),
        True,
        detail=None if end in (None, ANSWER_QUIET, ANSWER_CONTENT) else f"ended by {end}",
        bytes_in=pending.bot_bytes or None,
        intended_ns=intended_ns,
        messages=pending.messages,
    )


def integrity_row(kind: str, detail: str) -> StepOutcome:
    """A §7.3 finding; unsolicited and late messages and late responses are not failures."""
    ok = kind in ("late_message", "unsolicited", "late", "reordered")
    return StepOutcome("integrity", time.time_ns(), None, ok, kind, detail=detail[:200])


def stray_error_row(frame: ErrorResponse | TooManyRequests) -> StepOutcome:
    """An error frame that answered no pending request."""
    if isinstance(frame, TooManyRequests):
        error, detail = "rate_limited", f"retryAfter={frame.retry_after}"
    elif is_rate_limit(frame):
        error, detail = "rate_limited", frame.body[:200]
    else:
        error, detail = f"server_error_{frame.code}", frame.body[:200]
    return StepOutcome("error", time.time_ns(), None, False, error, detail=detail)
