"""Turn each ``StepOutcome`` into one raw event row and (when timed) one Locust request event.

- Request type ``WS``, name = the step (low cardinality), response time in ms.
- Fire-and-forget sends (latency None, e.g. typing) get a raw row but no Locust request: they
  are not 0 ms requests (style.md "Avoid").
- A close other than 1000/1001 is a failure whose exception names the code and its meaning
  (protocol.md §6).
- A 429 / 4029 (protocol.md §4.3) is not a failure: it is counted under the name
  ``rate_limited`` and recorded with ``error="rate_limited"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from harness.client.results import StepOutcome
from harness.errors import UnexpectedClose
from harness.protocol.codes import CLEAN_CLOSE_CODES, Close
from harness.record import schema as s
from harness.record.recorder import Recorder

REQUEST_TYPE: Final = "WS"
RATE_LIMITED_NAME: Final = "rate_limited"
_RATE_LIMITED_ERRORS: Final = frozenset((s.ERR_RATE_LIMITED, "http_429"))
#: Rows of these steps belong to the script step being run (the others: connect, configure,
#: heartbeat echo, close, errors, get the scenario only).
_STEPPED: Final = frozenset(
    {s.STEP_ON_MESSAGE, s.STEP_BOT_REPLY, s.STEP_BOT_ANSWER, s.STEP_TYPING, s.STEP_PRESENCE}
    | {s.STEP_SCRIPT_REPLY, s.STEP_SCENARIO, s.STEP_INTEGRITY}
)


class ClientIds(Protocol):
    """What the reporter reads from the client when a row is written."""

    token: str
    conn_id: int


class Counters(Protocol):
    """Process-wide counters the reporter keeps up to date (see GuestUser)."""

    active_connections: int


class StepReporter:
    """The ``report`` callable handed to one GuestClient."""

    __slots__ = (
        "_counters",
        "_fire",
        "_recorder",
        "client",
        "intended_connect_ns",
        "scenario",
        "script_step",
        "user_id",
    )

    def __init__(
        self,
        fire_request: Callable[..., Any],
        recorder: Recorder | None,
        counters: Counters,
        user_id: int,
    ) -> None:
        self._fire = fire_request
        self._recorder = recorder
        self._counters = counters
        self.user_id = user_id
        self.client: ClientIds | None = None
        #: open model: the slot the next connect was scheduled for (coordinated omission)
        self.intended_connect_ns: int | None = None
        #: scripted runs: the conversation's scenario and the step being run (schema columns)
        self.scenario: str | None = None
        self.script_step: int | None = None

    def __call__(self, o: StepOutcome) -> None:
        step = o.step
        client = self.client
        intended = o.intended_ns
        if step == s.STEP_CONNECT:
            if intended is None:
                intended = self.intended_connect_ns
            if o.ok:
                self._counters.active_connections += 1
        elif step == s.STEP_CLOSE:
            self._counters.active_connections -= 1
        if self._recorder is not None:
            self._recorder.add(
                (
                    self.user_id,
                    client.token if client is not None else None,
                    client.conn_id if client is not None else None,
                    step,
                    o.ts_ns,
                    o.latency_us,
                    intended,
                    o.ok,
                    o.error,
                    o.http_status,
                    o.close_code,
                    o.close_initiator,
                    o.close_reason,
                    o.detail,
                    o.bytes_out,
                    o.bytes_in,
                    o.messages,
                    self.scenario,
                    self.script_step if step in _STEPPED else None,
                )
            )
        self._fire_locust(o)

    def _fire_locust(self, o: StepOutcome) -> None:
        step = o.step
        if step == s.STEP_CLOSE:
            self._fire_close(o)
            return
        if o.latency_us is None or step in (s.STEP_INTEGRITY, s.STEP_ERROR, s.STEP_TYPING):
            return  # fire-and-forget or a count, not a timed request
        if o.error == s.ERR_STOPPED:
            return  # a conversation the run's end cut short: neither done nor failed
        name = step
        if step == s.STEP_SCRIPT_REPLY:
            name = f"reply: {self.scenario} #{self.script_step}"  # low cardinality: per step
        elif step == s.STEP_SCENARIO:
            name = f"scenario: {self.scenario}"
        exception = None
        if not o.ok:
            if o.error in _RATE_LIMITED_ERRORS:
                name = RATE_LIMITED_NAME
            else:
                exception = o.exception or RuntimeError(o.error or "failed")
        self._fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=o.latency_us / 1000.0,
            response_length=o.bytes_in or 0,
            exception=exception,
            context={},
        )

    def _fire_close(self, o: StepOutcome) -> None:
        code = o.close_code if o.close_code is not None else 1006
        exception = None
        if code not in CLEAN_CLOSE_CODES:
            close = Close(code, o.close_reason or "", o.close_initiator or s.INITIATOR_NONE)
            exception = UnexpectedClose(close)
        self._fire(
            request_type=REQUEST_TYPE,
            name=s.STEP_CLOSE,
            response_time=(o.latency_us or 0.0) / 1000.0,
            response_length=0,
            exception=exception,
            context={},
        )
