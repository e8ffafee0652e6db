"""``install(environment)``: wire the harness into a Locust environment (from ``@events.init``).

Nothing happens at import. On the master or a local runner, install validates the options,
starts the embedded simulator when there is no ``--host`` (before the first user spawns),
applies the safety rail, creates the run directory and ``run.json``, and starts the recorder.
On a worker it only starts the recorder: the host and options arrive with the first spawn
message, so everything that depends on them is (re)built at ``test_start``.

Shutdown (``quitting``, which Locust fires on normal end and after a stop signal): stop the users
so their closes are recorded, collect the workers' last events, flush, stop the simulator and
finish ``run.json``. SIGINT, SIGTERM and SIGHUP all take that one path, once: a repeat (a
terminal's Ctrl-C reaches ``harness run`` and Locust alike, and ``harness run`` forwards it) is
logged and ignored, so it can never cut the flush short.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent

from harness.client.options import ClientOptions
from harness.errors import UsageError
from harness.loadgen.arrivals import ArrivalSchedule
from harness.loadgen.config import FlowConfig, LoadConfig, load_config
from harness.loadgen.embedded import EmbeddedSimulator
from harness.loadgen.recording import RecordingService, role_of
from harness.loadgen.safety import TargetPolicy, TokenBucket, check_target
from harness.loadgen.script.model import Script
from harness.loadgen.script.parse import load_script
from harness.protocol.regions import region_host
from harness.record.recorder import Recorder
from harness.record.runinfo import RunInfo, default_run_dir, redact_options, utc_now_iso

logger = logging.getLogger(__name__)

_ATTR = "guestchat_harness"
#: How long the master waits for workers to stop their users and send their last events.
DRAIN_TIMEOUT_EXTRA_S = 30.0
#: Ctrl-C, ``kill``, a closed terminal: each stops the run cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(slots=True)
class HarnessContext:
    """Per-process state shared by the users of one Locust process (never a module global)."""

    environment: Any
    role: str
    config: LoadConfig
    policy: TargetPolicy | None = None
    refusal: str | None = None
    recorder: Recorder | None = None
    recording: RecordingService | None = None
    simulator: EmbeddedSimulator | None = None
    run_info: RunInfo | None = None
    conn_pacer: TokenBucket | None = None
    arrivals: ArrivalSchedule | None = None
    script: Script | None = None
    #: the run directory's name: tagged on every guest message (customAttributes)
    run_id: str = ""
    active_connections: int = 0
    user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    finished: bool = False
    drained: bool = False  # master: the workers' last events of this test are in
    stopping: bool = False  # a stop signal arrived: later ones are ignored
    stop_handlers: list[Any] = field(default_factory=list)
    #: one generator per process for think times (a Random per user would cost 2.5 KiB each)
    rng: random.Random = field(default_factory=random.Random)
    _options: tuple[tuple[FlowConfig, bool, bool], ClientOptions] | None = None

    def client_options(self) -> ClientOptions:
        """One frozen ClientOptions per process and test (shared by every user: memory)."""
        flow = self.config.flow
        remote = self.policy.remote if self.policy is not None else True
        key = (flow, remote, self.script is not None)
        if self._options is None or self._options[0] != key:
            options = ClientOptions(
                deployment_id=flow.deployment_id,
                origin=flow.origin,
                reply_timeout_s=flow.reply_timeout_s,
                heartbeat_interval_s=flow.heartbeat_interval_s,
                allow_fast_heartbeat=not remote,  # the echo limit binds remote targets only
                answer_quiet_s=flow.answer_quiet_s,
                answer_ends_on_quick_replies=flow.answer_ends_on_quick_replies,
                keep_inbox=self.script is not None,
            )
            self._options = (key, options)
        return self._options[1]

    def next_user_id(self) -> int:
        """Unique across workers: the worker index in the high digits."""
        index = int(getattr(self.environment.runner, "worker_index", 0) or 0)
        return index * 1_000_000_000 + next(self.user_ids)


def context_of(environment: Any) -> HarnessContext:
    """The installed context.

    Raises:
        UsageError: install() was not called for this environment.
    """
    ctx = getattr(environment, _ATTR, None)
    if not isinstance(ctx, HarnessContext):
        raise UsageError("harness not installed: call harness.loadgen.install(environment)")
    return ctx


def _workers(environment: Any) -> int:
    options = environment.parsed_options
    return max(1, int(getattr(options, "expect_workers", 1) or 1)) if options else 1


def install(
    environment: Any,
    *,
    flush_rows: int = 50_000,
    flush_interval_s: float = 2.0,
    handle_signals: bool = True,
) -> None:
    """Install the harness on ``environment`` (its runner must exist).

    ``handle_signals``: without these handlers a SIGHUP kills Locust with nothing flushed, a
    SIGTERM too until a headless shape run has ended (Locust installs its own handler only
    then), and a second SIGINT interrupts the flush of the first. Each stop signal quits the
    runner instead, once, and Locust's normal shutdown (``quitting``) follows.

    Raises:
        UsageError: bad options, or a non-loopback host without ``--allow-remote-target``.
    """
    runner = environment.runner
    role = role_of(runner)
    config = load_config(environment.parsed_options)
    ctx = HarnessContext(environment, role, config)
    _load_script(ctx)
    setattr(environment, _ATTR, ctx)
    if role != "worker":
        _prepare_target(ctx)
        try:
            _start_run_dir(ctx)
        except BaseException:
            if ctx.simulator is not None:  # never leave the child behind on a failed start
                ctx.simulator.stop()
            raise
    if config.record:
        ctx.recorder = Recorder()
        run_dir_path: Path | None = ctx.run_info.run_dir if ctx.run_info else None
        ctx.recording = RecordingService(
            environment,
            ctx.recorder,
            run_dir=run_dir_path,
            flush_rows=flush_rows,
            flush_interval_s=flush_interval_s,
            active_connections=lambda: ctx.active_connections,
        )
        ctx.recording.start()
    if handle_signals and role != "worker":
        ctx.stop_handlers = [
            gevent.signal_handler(signum, _on_stop_signal, ctx, signum) for signum in STOP_SIGNALS
        ]
    events = environment.events
    events.test_start.add_listener(lambda **kw: _on_test_start(ctx))
    events.test_stop.add_listener(lambda **kw: _on_test_stop(ctx))
    events.quitting.add_listener(lambda **kw: finish(ctx))


def _load_script(ctx: HarnessContext) -> None:
    """Parse ``--script`` (a bad one stops everything before any load) and take its
    ``config:`` as defaults for what the command line left empty (deployment id, origin).

    Raises:
        UsageError: the script is unreadable or wrong (``FILE:LINE: what``).
    """
    path = ctx.config.script
    ctx.script = load_script(path) if path is not None else None
    if ctx.script is None:
        return
    given = vars(ctx.environment.parsed_options) if ctx.environment.parsed_options else {}
    cfg, flow = ctx.script.config, ctx.config.flow
    changes: dict[str, Any] = {}
    if cfg.deployment_id and not str(given.get("deployment_id") or "").strip():
        changes["deployment_id"] = cfg.deployment_id
    if cfg.origin and not str(given.get("origin") or "").strip():
        changes["origin"] = cfg.origin
    if changes:
        ctx.config = dataclasses.replace(ctx.config, flow=dataclasses.replace(flow, **changes))


def _describe_script(ctx: HarnessContext) -> None:
    """run.json "script": the scenarios' weights and step descriptions (the report's funnel)."""
    if ctx.run_info is None:
        return
    script = ctx.script
    if script is None:
        ctx.run_info.extra.pop("script", None)
        return
    ctx.run_info.extra["script"] = {
        "path": str(script.path),
        "weights": {sc.name: sc.weight for sc in script.scenarios},
        "scenarios": {sc.name: [step.describe() for step in sc.steps] for sc in script.scenarios},
    }


def _script_host(ctx: HarnessContext) -> str | None:
    """The script's ``config.region`` as the target, only when the user opted in to a remote
    target and gave no ``--host`` (otherwise the embedded simulator runs; README)."""
    script = ctx.script
    if script is None or not script.config.region:
        return None
    if not ctx.config.allow_remote:
        logger.info(
            "script config.region %s not used: running against the embedded simulator "
            "(add --allow-remote-target to load that region, or --host)",
            script.config.region,
        )
        return None
    return region_host(script.config.region)


def _start_run_dir(ctx: HarnessContext) -> None:
    """Create the run directory and write the first run.json.

    Raises:
        UsageError: the run directory cannot be written (one line, names the path).
    """
    config, env = ctx.config, ctx.environment
    if not (config.record or config.run_dir is not None):
        return
    run_dir = config.run_dir or default_run_dir()
    options = vars(env.parsed_options) if env.parsed_options else {}
    ctx.run_info = RunInfo(run_dir, env.host, redact_options(options))
    ctx.run_id = run_dir.name
    if env.parsed_options is not None:  # workers learn the run id with the spawn message
        env.parsed_options.run_dir = str(run_dir)
    _describe_script(ctx)
    try:
        ctx.run_info.write()
    except OSError as exc:
        raise UsageError(f"cannot write the run directory {run_dir}: {exc.strerror}") from exc
    logger.info("run directory: %s", run_dir)


def _on_stop_signal(ctx: HarnessContext, signum: int) -> None:
    """Quit the runner (its users close, test_stop flushes); quitting finishes the run.

    The handlers stay installed until the process exits: a repeat is absorbed here instead
    of killing the process halfway through ``finish``.
    """
    name = signal.Signals(signum).name
    if ctx.stopping or ctx.finished:
        logger.info("got %s: already stopping, flushing events", name)
        return
    ctx.stopping = True
    logger.info("got %s: stopping the users, flushing events", name)
    env = ctx.environment
    if ctx.role == "master":
        # Drain first: quitting kills the shape, Locust's main then quits again at once and
        # sends the workers "quit" before test_stop could collect their last events.
        _drain(ctx)
    env.runner.quit()
    web_ui = getattr(env, "web_ui", None)
    if web_ui is not None:  # the web UI's greenlet is what Locust's main waits for
        web_ui.stop()


def _prepare_target(ctx: HarnessContext) -> None:
    env = ctx.environment
    if not env.host:
        env.host = _script_host(ctx) or ""
    if not env.host:
        ctx.simulator = EmbeddedSimulator(ctx.config.sim_args)
        env.host = ctx.simulator.host
    ctx.policy = _policy(ctx, env.host)
    level = logging.WARNING if ctx.policy.remote else logging.INFO
    logger.log(level, "%s", ctx.policy.banner(env.host, _workers(env)))


def _policy(ctx: HarnessContext, host: str) -> TargetPolicy:
    c = ctx.config
    return check_target(
        host,
        c.flow,
        allow_remote=c.allow_remote,
        conn_rate_override=c.conn_rate_override,
        workers=_workers(ctx.environment),
    )


def _on_test_start(ctx: HarnessContext) -> None:
    """Rebuild what depends on the options and host (edited in the web UI, or on a worker)."""
    env = ctx.environment
    try:
        ctx.config = load_config(env.parsed_options)
        _load_script(ctx)
        _describe_script(ctx)
        ctx.policy = _policy(ctx, env.host or "")
        ctx.refusal = None
    except UsageError as exc:
        ctx.refusal = str(exc)
        logger.error("%s", exc)
        return
    if not ctx.run_id and ctx.config.run_dir is not None:
        ctx.run_id = ctx.config.run_dir.name  # a worker: the master's run directory
    if ctx.policy.conn_per_minute:
        ctx.conn_pacer = TokenBucket(ctx.policy.conn_per_minute / 60.0)
    shape = ctx.config.shape
    if shape.kind == "open":
        ctx.arrivals = ArrivalSchedule(shape.arrival_rate / _workers(env))
    if ctx.recording is not None:
        ctx.drained = False
        ctx.recording.start_sampling()


def _on_test_stop(ctx: HarnessContext) -> None:
    if ctx.recording is None:
        return
    ctx.recording.stop_sampling()
    _drain(ctx)
    ctx.recording.flush()


def _drain(ctx: HarnessContext) -> None:
    """Master: collect the workers' last events once per test (after a quit the workers, and
    the master's receiver, are gone: asking again would only wait out the timeout)."""
    if ctx.recording is not None and not ctx.drained:
        ctx.recording.drain_workers(_drain_timeout(ctx))
        ctx.drained = True


def _drain_timeout(ctx: HarnessContext) -> float:
    return float(ctx.environment.stop_timeout or 0.0) + DRAIN_TIMEOUT_EXTRA_S


def finish(ctx: HarnessContext) -> None:
    """Stop users, collect and flush every event, stop the simulator, complete run.json.

    Idempotent; runs from ``quitting`` (normal end, or after a stop signal).
    """
    if ctx.finished:
        return
    ctx.finished = True
    runner = ctx.environment.runner
    if ctx.role == "local":
        runner.stop()  # users close their sockets; the close rows are recorded
    if ctx.recording is not None:
        _drain(ctx)
        ctx.recording.close()
    if ctx.simulator is not None:
        summary = ctx.simulator.stop()
        if ctx.run_info is not None:
            ctx.run_info.simulator_summary = summary
    if ctx.run_info is not None:
        ctx.run_info.ended = utc_now_iso()
        ctx.run_info.host = ctx.environment.host
        if ctx.recording is not None:
            ctx.run_info.extra["events_shards"] = ctx.recording.shards_written
        ctx.run_info.write()
