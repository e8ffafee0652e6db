"""``GuestUser``: a Locust user that runs the guest conversation flow.

It reads the per-process :class:`~harness.loadgen.plugin.HarnessContext` installed by
``install(environment)``; it reaches for no globals. The Locust ``request`` event is handed to
the client through the reporter (style.md "Locust").
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from locust import User, constant, task
from locust.exception import StopUser

from harness.client.options import ClientOptions
from harness.errors import UsageError
from harness.loadgen.flow import ConversationFlow, guest_url
from harness.loadgen.plugin import HarnessContext, context_of
from harness.loadgen.reporting import StepReporter

logger = logging.getLogger(__name__)


def client_options(ctx: HarnessContext) -> ClientOptions:
    """Client settings from the flow config; fast heartbeats only against loopback."""
    flow = ctx.config.flow
    remote = ctx.policy.remote if ctx.policy is not None else True
    return ClientOptions(
        deployment_id=flow.deployment_id,
        origin=flow.origin,
        reply_timeout_s=flow.reply_timeout_s,
        heartbeat_interval_s=flow.heartbeat_interval_s,
        allow_fast_heartbeat=not remote,
    )


class GuestUser(User):
    """One anonymous web-messaging guest (design.md "Conversation flow")."""

    wait_time = constant(0)  # the flow paces itself (think time, open-model slots)

    def on_start(self) -> None:
        ctx = context_of(self.environment)
        if ctx.refusal is not None or ctx.policy is None:
            logger.error("user not started: %s", ctx.refusal or "no target policy")
            raise StopUser()
        self._ctx = ctx
        user_id = ctx.next_user_id()
        reporter = StepReporter(self.environment.events.request.fire, ctx.recorder, ctx, user_id)
        try:
            url = guest_url(self.host or self.environment.host or "", ctx.config.flow.deployment_id)
            options = client_options(ctx)
        except UsageError as exc:
            logger.error("user not started: %s", exc)
            raise StopUser() from None
        self.flow = ConversationFlow(
            url,
            ctx.config.flow,
            options,
            reporter,
            rng=ctx.rng,
            sleep=gevent.sleep,
            conn_pacer=ctx.conn_pacer,
            paced=ctx.policy.remote,
        )

    @task
    def converse(self) -> None:
        arrivals = self._ctx.arrivals
        if arrivals is None:
            self.flow.run_once()
            return
        slot = arrivals.claim()  # open model: start on schedule, record the intended time
        gevent.sleep(arrivals.delay_s(slot))
        self.flow.run_once(slot, mode="close", pause=False)

    def on_stop(self) -> None:
        flow: Any = getattr(self, "flow", None)
        if flow is not None:
            flow.stop()
