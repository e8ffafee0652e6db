"""``GuestUser``: a Locust user that runs the guest conversation flow.

It reads the per-process :class:`~harness.loadgen.plugin.HarnessContext` installed by
``install(environment)``; it reaches for no globals. The Locust ``request`` event is handed to
the client through the reporter (style.md "Locust").
"""

from __future__ import annotations

import logging

import gevent
from locust import User, constant, task
from locust.exception import StopUser

from harness.errors import UsageError
from harness.loadgen.config import FlowConfig
from harness.loadgen.flow import ConversationFlow, guest_url
from harness.loadgen.plugin import context_of
from harness.loadgen.reporting import StepReporter
from harness.loadgen.script.runner import ScenarioRunner, Timing
from harness.protocol.units import Distribution

logger = logging.getLogger(__name__)


class GuestUser(User):
    """One anonymous web-messaging guest (design.md "Conversation flow")."""

    wait_time = constant(0)  # the flow paces itself (think time, open-model slots)

    flow: ConversationFlow | None = None

    def on_start(self) -> None:
        ctx = context_of(self.environment)
        self._ctx = ctx
        if ctx.refusal is not None or ctx.policy is None:
            return  # refused (logged once at test start); the task stops this user quietly
        if ctx.finished:
            # spawned while this process shuts down (a master rebalancing onto a worker that
            # is stopping): it would be killed mid-conversation with its rows unshipped
            return
        user_id = ctx.next_user_id()
        reporter = StepReporter(self.environment.events.request.fire, ctx.recorder, ctx, user_id)
        try:
            url = guest_url(self.host or self.environment.host or "", ctx.config.flow.deployment_id)
            options = ctx.client_options()
        except UsageError as exc:
            logger.error("user not started: %s", exc)
            return
        runner = None
        if ctx.script is not None:
            timing = _timing(ctx.config.flow)
            runner = ScenarioRunner(ctx.script, timing, reporter, rng=ctx.rng, sleep=gevent.sleep)
        self.flow = ConversationFlow(
            url,
            ctx.config.flow,
            options,
            reporter,
            rng=ctx.rng,
            sleep=gevent.sleep,
            conn_pacer=ctx.conn_pacer,
            paced=ctx.policy.remote,
            runner=runner,
            run_id=ctx.run_id,
        )

    @task
    def converse(self) -> None:
        flow = self.flow
        if flow is None:
            raise StopUser()  # a task's StopUser ends the user without a traceback
        arrivals = self._ctx.arrivals
        if arrivals is None:
            flow.run_once()
            return
        slot = arrivals.claim()  # open model: start on schedule, record the intended time
        gevent.sleep(arrivals.delay_s(slot))
        flow.run_once(slot, mode="close", pause=False)

    def on_stop(self) -> None:
        if self.flow is not None:
            self.flow.stop()


def _timing(flow: FlowConfig) -> Timing:
    """The flow settings a script inherits: think time, wait timeout, reorder window."""
    low, high = flow.think_min_s, flow.think_max_s
    think = (
        Distribution("uniform", low, high, f"uniform:{low}s,{high}s")
        if high > low
        else Distribution("fixed", low, spec=f"{low}s")
    )
    return Timing(think, flow.reply_timeout_s, flow.reorder_window_s)
