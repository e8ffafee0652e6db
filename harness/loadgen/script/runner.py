"""Run one scenario of a conversation script on a connected, configured GuestClient.

Each step is reported through the user's reporter with the scenario and the step number
(schema columns ``scenario`` / ``script_step``): sends as ``onMessage`` / ``botReply`` /
``botAnswer`` (the client's rows), waits as ``reply`` rows timed from the send before them,
and the conversation as one ``scenario`` row at its end: ok when every step passed, otherwise
the reason it stopped (``timeout``: the bot said nothing that matched and nothing at all;
``mismatch``: it said other things, shown as expected vs arrived; ``disconnected``; ``closed``
with the close code; a server error; ``stopped`` when the run ended first).

A failed step ends the conversation; the flow then closes the socket with 1000 and the user
starts the next one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from harness.client.guest import GuestClient
from harness.client.results import StepOutcome
from harness.errors import HarnessError, InvalidState, RateLimited, UnexpectedClose
from harness.loadgen.reporting import StepReporter
from harness.loadgen.script.model import (
    CONTAINING,
    DISCONNECT,
    MATCHING,
    QUICK_REPLIES,
    SENDS,
    ChooseQuickReply,
    Say,
    Scenario,
    Script,
    Step,
    Think,
    Typing,
    WaitFor,
    short,
)
from harness.loadgen.script.replies import Entry, ReplyBox
from harness.loadgen.script.template import Context
from harness.protocol.limits import CUSTOM_ATTRIBUTES_MAX_BYTES
from harness.protocol.units import Distribution
from harness.record import schema as s

logger = logging.getLogger(__name__)

#: A send refused with 429 is tried again this often (the client waits its retryAfter first).
SEND_ATTEMPTS = 3
_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class Timing:
    """The flow's knobs a script uses: think before sends, wait timeout, reorder window."""

    think: Distribution
    timeout_s: float
    reorder_window_s: float


class StepFailed(Exception):
    """A step did not pass: ``error`` is the funnel category, ``detail`` the human text."""

    def __init__(self, error: str, detail: str, close_code: int | None = None) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.close_code = close_code


def _truncate(text: str) -> str:
    return short(text, _DETAIL_CHARS)


class ScenarioRunner:
    """Runs scenarios for one virtual user (one runner per user; no shared state)."""

    def __init__(
        self,
        script: Script,
        timing: Timing,
        reporter: StepReporter,
        *,
        rng: random.Random,
        sleep: Callable[[float], Any],
    ) -> None:
        self.script = script
        self.timing = timing
        self.report = reporter  # the row's scenario / script_step come from it
        self.reporter = reporter
        self.rng = rng
        self.sleep = sleep
        window = script.config.reorder_window_s
        self.box = ReplyBox(int((timing.reorder_window_s if window is None else window) * 1e9))
        self._send_ns = 0
        self._sent = False  # a guest message went out in this conversation

    # --- one conversation -------------------------------------------------------------------

    def run(self, client: GuestClient, scenario: Scenario, ctx: Context, started_ns: int) -> bool:
        """Run every step; report the ``scenario`` row; True when the conversation completed.

        ``started_ns`` (perf_counter) is when the conversation began (its connect).
        """
        self.box.mark_send()
        self._sent = False
        self._send_ns = time.perf_counter_ns()  # waits before any say: from the configure
        ts = time.time_ns() - (self._send_ns - started_ns)
        failure: StepFailed | None = StepFailed(s.ERR_STOPPED, "the run ended first")
        last = 0
        try:
            previous: Step | None = None
            for step in scenario.steps:
                last = step.number
                self.reporter.script_step = step.number
                self._one(client, step, previous, ctx)
                previous = step
            failure = None
        except StepFailed as exc:
            failure = exc
        finally:
            self._finish(scenario, ts, started_ns, last, failure)
        return failure is None

    def _finish(
        self, scenario: Scenario, ts: int, started_ns: int, step: int, failure: StepFailed | None
    ) -> None:
        self.reporter.script_step = step
        latency = (time.perf_counter_ns() - started_ns) / 1000.0
        if failure is None:
            self.report(StepOutcome(s.STEP_SCENARIO, ts, latency, True))
        else:
            where = f"step {step}: {scenario.steps[step - 1].describe()}: " if step else ""
            self.report(
                StepOutcome(
                    s.STEP_SCENARIO,
                    ts,
                    latency,
                    False,
                    failure.error,
                    close_code=failure.close_code,
                    detail=_truncate(where + failure.detail),
                    exception=RuntimeError(f"{failure.error}: {where}{failure.detail}"),
                )
            )
        self.reporter.script_step = None

    def connect_failed(self, scenario: Scenario, ts: int, latency_us: float, error: str) -> None:
        """The conversation could not start (connect or configure failed): stopped at 0."""
        self.reporter.script_step = 0
        self.report(
            StepOutcome(s.STEP_SCENARIO, ts, latency_us, False, error, detail="could not connect")
        )
        self.reporter.script_step = None

    # --- steps ------------------------------------------------------------------------------

    def _one(self, client: GuestClient, step: Step, previous: Step | None, ctx: Context) -> None:
        if isinstance(step, SENDS) and self._sent and not isinstance(previous, Think):
            self._pause(self.script.config.think or self.timing.think)  # as between turns
        if isinstance(step, Say):
            self._say(client, step, ctx)
        elif isinstance(step, ChooseQuickReply):
            self._choose(client, step)
        elif isinstance(step, WaitFor):
            self._wait(client, step, ctx)
        elif isinstance(step, Think):
            self._pause(step.pause)
        elif isinstance(step, Typing):
            self._guard(client.send_typing)

    def _pause(self, pause: Distribution) -> None:
        seconds = pause.draw(self.rng)
        if seconds > 0:
            self.sleep(seconds)

    def _guard(self, send: Callable[[], Any]) -> Any:
        """Run a send; map the client's exceptions to a failed step (rows already written)."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                return send()
            except RateLimited as exc:  # the client already waited its retryAfter
                if attempt == SEND_ATTEMPTS - 1:
                    raise StepFailed(
                        s.ERR_RATE_LIMITED, f"rate limited {SEND_ATTEMPTS} times"
                    ) from exc
            except UnexpectedClose as exc:
                raise StepFailed(s.ERR_CLOSED, str(exc), exc.close.code) from exc
            except InvalidState as exc:
                raise StepFailed(s.ERR_DISCONNECTED, str(exc)) from exc
            except HarnessError as exc:
                category = getattr(exc, "category", None) or "error"
                raise StepFailed(category, str(exc)) from exc
        return None

    def _send(self, client: GuestClient, send: Callable[[], Any]) -> None:
        self._drain(client)
        self.box.mark_send()
        self._send_ns = time.perf_counter_ns()
        self._sent = True
        self._guard(send)
        self._drain(client)

    def _say(self, client: GuestClient, step: Say, ctx: Context) -> None:
        text = step.text.render(ctx, self.rng)
        attributes = None
        if step.attributes:
            attributes = {k: t.render(ctx, self.rng) for k, t in step.attributes.items()}
            merged = {**(client.custom_attributes or {}), **attributes}
            size = len(orjson.dumps(merged))
            if size > CUSTOM_ATTRIBUTES_MAX_BYTES:
                raise StepFailed(
                    "attributes_too_large",
                    f"customAttributes are {size} bytes, over {CUSTOM_ATTRIBUTES_MAX_BYTES}",
                )
        self._send(
            client, lambda: client.send_text(text, attributes=attributes, reply_errors=False)
        )

    def _choose(self, client: GuestClient, step: ChooseQuickReply) -> None:
        self._drain(client)
        offered = self.box.latest_quick_replies()
        if not offered:
            raise StepFailed(s.ERR_MISMATCH, "no quick replies were offered")
        if step.label is not None:
            wanted = step.label.strip().casefold()
            chosen = next((o for o in offered if o[0].strip().casefold() == wanted), None)
        elif step.index is not None:
            chosen = offered[step.index - 1] if step.index <= len(offered) else None
        else:
            chosen = self.rng.choice(offered)
        if chosen is None:
            labels = " | ".join(t for t, _ in offered)
            raise StepFailed(s.ERR_MISMATCH, _truncate(f"offered: {labels}"))
        text, payload = chosen
        self._send(client, lambda: client.send_quick_reply(text, payload, reply_errors=False))

    # --- waits ------------------------------------------------------------------------------

    def _drain(self, client: GuestClient) -> None:
        inbox = client.inbox
        if not inbox:
            return
        for arrival_ns, message in inbox:
            if self.box.add(arrival_ns, message):
                self.report(
                    StepOutcome(s.STEP_INTEGRITY, time.time_ns(), None, True, s.INTEGRITY_REORDERED)
                )
        inbox.clear()

    def _matcher(self, step: WaitFor, ctx: Context) -> Callable[[Entry], bool]:
        if step.kind == CONTAINING and step.text is not None:
            wanted = step.text.render(ctx, self.rng).casefold()
            return lambda e: e.text is not None and wanted in e.text.casefold()
        if step.kind == MATCHING and step.regex is not None:
            regex = step.regex
            return lambda e: e.text is not None and regex.search(e.text) is not None
        if step.kind == QUICK_REPLIES:
            return lambda e: bool(e.quick_replies)
        return lambda e: e.is_disconnect

    def _wait(self, client: GuestClient, step: WaitFor, ctx: Context) -> None:
        timeout = step.timeout_s
        if timeout is None:
            timeout = self.script.config.timeout_s or self.timing.timeout_s
        matches = self._matcher(step, ctx)
        ts = time.time_ns()
        deadline = time.perf_counter_ns() + int(timeout * 1e9)
        while True:
            self._drain(client)
            found = self.box.take(matches)
            if found is not None:
                latency = (found.arrival_ns - self._send_ns) / 1000.0
                self.report(StepOutcome(s.STEP_SCRIPT_REPLY, ts, max(latency, 0.0), True))
                return
            failure = self._wait_failure(client, step, deadline, timeout)
            if failure is not None:
                self.report(
                    StepOutcome(
                        s.STEP_SCRIPT_REPLY,
                        ts,
                        (time.perf_counter_ns() - self._send_ns) / 1000.0,
                        False,
                        failure.error,
                        close_code=failure.close_code,
                        detail=_truncate(failure.detail),
                        exception=RuntimeError(_truncate(failure.detail)),
                    )
                )
                raise failure
            client.wait_change((deadline - time.perf_counter_ns()) / 1e9)

    def _wait_failure(
        self, client: GuestClient, step: WaitFor, deadline: int, timeout: float
    ) -> StepFailed | None:
        """Why the wait cannot pass (None: keep waiting)."""
        expected = step.describe()
        arrived = " | ".join(repr(short(t, 80)) for t in self.box.texts) or "nothing"
        if step.kind != DISCONNECT and (self.box.disconnect is not None or client.read_only):
            return StepFailed(
                s.ERR_DISCONNECTED,
                f"expected {expected}; the bot ended the conversation; arrived: {arrived}",
            )
        if client.closed:
            close = client.close_info
            code = close.code if close is not None else None
            return StepFailed(
                s.ERR_CLOSED, f"expected {expected}; the socket closed ({close})", code
            )
        if time.perf_counter_ns() < deadline:
            return None
        error = s.ERR_MISMATCH if self.box.texts else s.ERR_TIMEOUT
        return StepFailed(error, f"expected {expected} within {timeout:g} s; arrived: {arrived}")
