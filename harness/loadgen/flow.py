"""One guest's conversation flow (design.md "Conversation flow of one GuestUser").

connect → configureSession → [Presence Join] → N turns of [Typing On] → onMessage (echo =
onMessage latency, first bot text = botReply latency) → think → … with heartbeats on their own
timer → then, by ``--session-mode``: close 1000 (the next conversation uses a new token), keep
the socket open, or drop it and resume with the same token (protocol.md §7.2).

With ``--script`` each conversation is one scenario of the script, picked by weight, run by
:class:`~harness.loadgen.script.runner.ScenarioRunner` in place of the N turns.

Every turn waits for the bot's whole answer (messages until ``--answer-quiet`` of silence,
see :class:`~harness.protocol.session.Pending`) before the think time starts, so no message of
one answer is ever taken for the next turn's reply.

The flow never raises a server's misbehaviour out of a Locust task: the client has already
reported it as an event, and the flow carries on (next turn, or a new connection).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.client.guest import GuestClient
from harness.client.options import ClientOptions
from harness.errors import (
    HarnessError,
    InvalidState,
    RateLimited,
    ServiceError,
    UnexpectedClose,
    UsageError,
)
from harness.loadgen.config import FlowConfig
from harness.loadgen.reporting import StepReporter
from harness.loadgen.safety import REQ_BUDGET_PER_MINUTE, SlidingWindow, TokenBucket
from harness.loadgen.script.runner import ScenarioRunner
from harness.loadgen.script.template import Context
from harness.protocol import limits

logger = logging.getLogger(__name__)

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
#: Guest texts cycle through these (short, realistic, no payload-dependent names in stats).
TEXTS = ("Where is my order?", "I need help with my account.", "Can I change my address?")
#: Back-off after a failed connect, so a refusing server is not hammered in a tight loop.
CONNECT_BACKOFF_S = 1.0
#: keep mode: how long one task call waits on a held socket before checking again
KEEP_CHECK_S = 30.0
#: the scenario tag of the default flow (no --script)
DEFAULT_SCENARIO = "default"


def guest_url(host: str, deployment_id: str) -> str:
    """The Guest API URL for a Locust host: ``/v1?deploymentId=…`` (protocol.md §1.1).

    Raises:
        UsageError: the host is not a ws/wss/http/https URL.
    """
    text = host.strip()
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise UsageError(f"--host must be a ws:// or wss:// URL: {host!r}")
    path = parts.path.rstrip("/")
    path = path if path.endswith("/v1") else path + "/v1"
    query = dict(parse_qsl(parts.query))
    query.setdefault("deploymentId", deployment_id)
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


class ConversationFlow:
    """Runs conversations for one virtual user; one :meth:`run_once` per Locust task call."""

    __slots__ = (
        "client",
        "conn_pacer",
        "flow",
        "make_client",
        "messages_sent",
        "options",
        "paced",
        "reporter",
        "rng",
        "run_id",
        "runner",
        "sleep",
        "token",
        "url",
    )

    def __init__(
        self,
        url: str,
        flow: FlowConfig,
        options: ClientOptions,
        reporter: StepReporter,
        *,
        rng: random.Random,
        sleep: Callable[[float], Any],
        conn_pacer: TokenBucket | None = None,
        paced: bool = False,
        make_client: Callable[..., GuestClient] = GuestClient,
        runner: ScenarioRunner | None = None,
        run_id: str = "",
    ) -> None:
        self.url = url
        self.flow = flow
        self.options = options
        self.reporter = reporter
        self.rng = rng
        self.sleep = sleep
        self.conn_pacer = conn_pacer
        self.paced = paced
        self.make_client = make_client
        self.runner = runner
        self.run_id = run_id
        self.client: GuestClient | None = None
        self.token: str | None = None
        self.messages_sent = 0

    # --- the flow ----------------------------------------------------------------------------
    def run_once(
        self, intended_ns: int | None = None, *, mode: str | None = None, pause: bool = True
    ) -> None:
        """One conversation (close/resume), or one idle interval of a kept session (keep).

        ``pause=False`` (open model) returns right after the close: the next start is due at
        its own slot, not after a think time.
        """
        mode = mode or self.flow.session_mode
        if mode == "keep" and self.client is not None and not self.client.closed:
            # hold: heartbeats run on the client's own timer; wake when the socket ends
            self.client.wait_closed(KEEP_CHECK_S)
            return
        # open model: how late this conversation starts; its turns keep that lag, so their
        # intended times exclude the conversation's own connect time but not the queueing
        lag_ns = max(0, time.time_ns() - intended_ns) if intended_ns is not None else None
        runner = self.runner
        scenario = runner.script.pick(self.rng) if runner is not None else None
        self.reporter.scenario = scenario.name if scenario is not None else None
        ts, started = time.time_ns(), time.perf_counter_ns()
        failed = self._open(
            new_token=mode == "close" or self.token is None,
            intended=intended_ns,
            scenario=scenario.name if scenario is not None else DEFAULT_SCENARIO,
        )
        if failed is not None:
            if runner is not None and scenario is not None:
                runner.connect_failed(
                    scenario, ts, (time.perf_counter_ns() - started) / 1e3, failed
                )
            self.sleep(CONNECT_BACKOFF_S)
            return
        if runner is not None and scenario is not None:
            assert self.client is not None
            row = runner.script.row_for(self.reporter.user_id)
            ctx = Context(self.reporter.user_id, self.run_id, scenario.name, row)
            runner.run(self.client, scenario, ctx, started)
        else:
            self._turns(lag_ns)
        if mode == "keep":
            return
        self.close()
        if mode == "close":
            self.token = None
        if pause:
            self.sleep(self._think())

    def _open(self, *, new_token: bool, intended: int | None, scenario: str) -> str | None:
        """Connect and configure; None when it worked, else the error category (the client
        has reported it)."""
        if self.conn_pacer is not None:
            self.conn_pacer.acquire()
        client = self.client
        if new_token or client is None:
            # a new guest; a resume reuses the client, so conn_id keeps counting (§7.2)
            client = self.make_client(self.url, self.options, self.reporter)
            self.client = client
            self.reporter.client = client
        self.token = client.token
        client.custom_attributes = self._tags(scenario)
        self.reporter.intended_connect_ns = intended
        try:
            client.connect()
        except ServiceError as exc:
            return getattr(exc, "category", None) or "connect"
        try:
            response = client.configure()
            if self.flow.presence_join and response.new_session:
                client.send_presence("Join")
        except (RateLimited, ServiceError) as exc:  # reported; a 429 was already waited out
            self.close()
            return "rate_limited" if isinstance(exc, RateLimited) else exc.category or "error"
        if self.flow.heartbeat_interval_s > 0:
            client.start_heartbeat()
        return None

    def _tags(self, scenario: str) -> dict[str, str] | None:
        """customAttributes marking this guest's messages as load-test traffic (README)."""
        keys = self.flow.tag_keys
        if not keys:
            return None
        run_key, user_key, scenario_key = keys
        return {run_key: self.run_id, user_key: str(self.reporter.user_id), scenario_key: scenario}

    def _turns(self, lag_ns: int | None) -> None:
        """N turns. With a start lag (open model) each turn has a planned send time, the
        previous one plus the think time, independent of response times (coordinated
        omission stays visible in ``intended_ns``)."""
        assert self.client is not None
        client = self.client
        msg_window, req_window = self._pacers()
        planned = time.time_ns() - lag_ns if lag_ns is not None else None
        for turn in range(self.flow.messages_per_session):
            if turn:
                pause = self._think()
                if planned is not None:
                    planned += int(pause * 1e9)
                    pause = max(0.0, (planned - time.time_ns()) / 1e9)
                if pause > 0:  # a zero think time adds no extra yield to the hub
                    self.sleep(pause)
            if client.closed:
                return
            try:
                self._one_turn(client, planned, msg_window, req_window)
            except RateLimited:
                continue  # reported, and the client already waited its retryAfter (§4.3)
            except (UnexpectedClose, InvalidState):
                return  # the socket is gone or read-only: reported, start over next time
            except ServiceError:
                continue  # timeout or error frame: reported; next turn

    def _one_turn(
        self,
        client: GuestClient,
        planned: int | None,
        msg_window: SlidingWindow | None,
        req_window: SlidingWindow | None,
    ) -> None:
        if self.flow.typing:
            if req_window is not None:
                req_window.acquire()
            client.send_typing()
        if msg_window is not None and req_window is not None:
            msg_window.acquire()
            req_window.acquire()
        self.messages_sent += 1
        client.send_text(TEXTS[self.messages_sent % len(TEXTS)], intended_ns=planned)

    def _pacers(self) -> tuple[SlidingWindow | None, SlidingWindow | None]:
        if not self.paced:
            return None, None
        msg = SlidingWindow(limits.MSG_RATE_PER_SESSION, limits.MSG_RATE_WINDOW_S, sleep=self.sleep)
        req = SlidingWindow(REQ_BUDGET_PER_MINUTE, limits.REQ_RATE_WINDOW_S, sleep=self.sleep)
        return msg, req

    def _think(self) -> float:
        low, high = self.flow.think_min_s, self.flow.think_max_s
        return low if high <= low else self.rng.uniform(low, high)

    # --- ending ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close 1000 if open (the client reports the close row exactly once)."""
        client = self.client
        if client is None or client.closed:
            return
        try:
            client.stop_heartbeat()
            client.close(1000)
        except HarnessError as exc:
            logger.debug("close failed: %s", exc)

    def stop(self) -> None:
        """Called from the user's on_stop: end the current connection cleanly."""
        self.close()
