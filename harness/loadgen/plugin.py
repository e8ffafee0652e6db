"""``install(environment)``: wire the harness into a Locust environment (from ``@events.init``).

Nothing happens at import. On the master or a local runner, install checks that the web
UI's port can be bound (before anything else, so a taken port leaves nothing behind),
validates the options, starts the embedded simulator when there is no ``--host`` (before the
first user spawns), applies the safety rail, creates the run directory and ``run.json``,
starts the recorder and the live statistics, and adds the harness tabs and the start-form
check to the web UI. On a worker it only starts the recorder: the host and options arrive
with the first spawn message, so everything that depends on them is (re)built at
``test_start``.

Each test (one per start in the web UI) is recorded in run.json ``tests`` with its start and
end; ``started`` is when the first test's load started, ``ended`` when the last one's stopped,
so a report's duration is the time under load, not the idle time around it. A test started
with an empty host uses the embedded simulator (started then if none runs); one with a
refused host does not start (the form says why) or, reached another way, stops at once with
the reason in the log.

Shutdown (``quitting``, which Locust fires on normal end and after a stop signal): stop the users
so their closes are recorded, collect the workers' last events, flush, stop the simulator and
finish ``run.json``. SIGINT, SIGTERM and SIGHUP all take that one path, once: a repeat (a
terminal's Ctrl-C reaches ``harness run`` and Locust alike, and ``harness run`` forwards it) is
logged and ignored, so it can never cut the flush short. A worker stopped by its own signal
(a Ctrl-C reaches every process of the terminal) stops its users and ships their last rows in
``quitting`` too, before Locust tells the master it quits.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.event

from harness.client.options import ClientOptions
from harness.client.sources import SourceAddresses, check_bindable, describe
from harness.errors import UsageError
from harness.loadgen.arrivals import ArrivalSchedule
from harness.loadgen.capacity import CapacitySearch, Tick, search_config
from harness.loadgen.config import FlowConfig, LoadConfig, ShapeConfig, load_config, planned_peak
from harness.loadgen.embedded import EmbeddedSimulator
from harness.loadgen.flow import guest_url
from harness.loadgen.live import LiveSnapshot, LiveStats
from harness.loadgen.recording import RecordingService, role_of
from harness.loadgen.resources import OpenFiles, capacity_warnings, raise_open_files
from harness.loadgen.safety import TargetPolicy, TokenBucket, check_target
from harness.loadgen.script.model import Script
from harness.loadgen.script.parse import load_script
from harness.loadgen.webui import check_port, install_web_ui
from harness.protocol.regions import region_host
from harness.record.recorder import Recorder
from harness.record.runinfo import RunInfo, default_run_dir, redact_options, utc_now_iso

logger = logging.getLogger(__name__)

_ATTR = "guestchat_harness"
#: How long a second finish() waits for the first one to complete its flush.
FINISH_WAIT_S = 120.0
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
    live: LiveStats | None = None  # local runner or master: every batch that reached disk
    capacity: CapacitySearch | None = None  # the running test's (--shape capacity)
    simulator: EmbeddedSimulator | None = None
    run_info: RunInfo | None = None
    conn_pacer: TokenBucket | None = None
    arrivals: ArrivalSchedule | None = None
    script: Script | None = None
    sources: SourceAddresses | None = None  # --source-addresses, one rotation per process
    open_files: OpenFiles | None = None
    warned_users: int = 0  # a worker: the user count its limits were last checked against
    #: the run directory's name: tagged on every guest message (customAttributes)
    run_id: str = ""
    active_connections: int = 0
    user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    finished: bool = False
    finish_done: Any = None  # a gevent Event, set when finish() has completed
    drained: bool = False  # master: the workers' last events of this test are in
    stopping: bool = False  # a stop signal arrived: later ones are ignored
    stop_handlers: list[Any] = field(default_factory=list)
    #: one generator per process for think times (a Random per user would cost 2.5 KiB each)
    rng: random.Random = field(default_factory=random.Random)
    _options: tuple[tuple[FlowConfig, bool, bool, SourceAddresses | None], ClientOptions] | None = (
        None
    )

    def client_options(self) -> ClientOptions:
        """One frozen ClientOptions per process and test (shared by every user: memory)."""
        flow = self.config.flow
        remote = self.policy.remote if self.policy is not None else True
        key = (flow, remote, self.script is not None, self.sources)
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
                sources=self.sources,
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
    web_ui = getattr(environment, "web_ui", None) if role != "worker" else None
    if web_ui is not None and web_ui.server is None:  # not bound yet: Locust binds it next
        check_port(web_ui.host, web_ui.port)
    config = load_config(environment.parsed_options)
    _check_capacity(config, environment.parsed_options)
    ctx = HarnessContext(environment, role, config)
    _load_script(ctx)
    _use_sources(ctx)
    ctx.open_files = raise_open_files()
    logger.info("%s", ctx.open_files.describe())
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
        ctx.live = LiveStats() if role != "worker" else None
        run_dir_path: Path | None = ctx.run_info.run_dir if ctx.run_info else None
        ctx.recording = RecordingService(
            environment,
            ctx.recorder,
            run_dir=run_dir_path,
            flush_rows=flush_rows,
            flush_interval_s=flush_interval_s,
            active_connections=lambda: ctx.active_connections,
            live=ctx.live,
        )
        ctx.recording.start()
    if web_ui is not None:
        install_web_ui(web_ui, snapshot=lambda: _snapshot(ctx), refuse=lambda f: refusal(ctx, f))
    if handle_signals and role != "worker":
        ctx.stop_handlers = [
            gevent.signal_handler(signum, _on_stop_signal, ctx, signum) for signum in STOP_SIGNALS
        ]
    events = environment.events
    events.test_start.add_listener(lambda **kw: _on_test_start(ctx))
    events.test_stop.add_listener(lambda **kw: _on_test_stop(ctx))
    if role == "worker":  # the master's plan arrives as spawn messages
        events.spawning_complete.add_listener(lambda **kw: _check_worker_limits(ctx))
    events.quitting.add_listener(lambda **kw: finish(ctx))


def _use_sources(ctx: HarnessContext) -> None:
    """``--source-addresses``: check each is this machine's, keep one rotation per process."""
    addresses = ctx.config.source_addresses
    if ctx.sources is not None and ctx.sources.addresses == addresses:
        return
    if not addresses:
        ctx.sources = None
        return
    check_bindable(addresses)
    ctx.sources = SourceAddresses(addresses)
    logger.info("connections spread over source addresses %s", describe(addresses))


def _check_limits(ctx: HarnessContext) -> None:
    """Say at start what will stop this process below the planned users (per process)."""
    if ctx.open_files is None:
        return
    peak = planned_peak(ctx.config.shape)
    processes = _workers(ctx.environment) if ctx.role == "master" else 1
    per_process = -(-peak // max(1, processes))
    _warn_limits(ctx, per_process)


def _check_worker_limits(ctx: HarnessContext) -> None:
    users = int(getattr(ctx.environment.runner, "target_user_count", 0) or 0)
    if users > ctx.warned_users:
        _warn_limits(ctx, users)


def _warn_limits(ctx: HarnessContext, users: int) -> None:
    assert ctx.open_files is not None
    lines = capacity_warnings(users, ctx.open_files, ctx.config.source_addresses)
    if lines:
        ctx.warned_users = users
    for line in lines:
        logger.warning("%s", line)


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


def _snapshot(ctx: HarnessContext) -> LiveSnapshot | None:
    return ctx.live.snapshot() if ctx.live is not None else None


#: Start-form fields that Locust itself parses and validates (they are not harness options).
_LOCUST_FORM_FIELDS = frozenset(
    {"user_count", "spawn_rate", "host", "run_time", "user_classes", "shape_class", "profile"}
)


def refusal(ctx: HarnessContext, form: Mapping[str, str]) -> str | None:
    """Why a web UI start form must be refused (None: it may start).

    The form's harness options are parsed as a test start would parse them; a non-empty
    host must be a ws(s)/http(s) URL the safety rail allows (empty = embedded simulator).
    """
    env = ctx.environment
    options = dict(vars(env.parsed_options)) if env.parsed_options is not None else {}
    options |= {k: v for k, v in form.items() if k in options and k not in _LOCUST_FORM_FIELDS}
    host = str(form.get("host", env.host or "")).replace("<", "").replace(">", "").strip()
    try:
        config = load_config(options)
        _check_capacity(config, options)
        if config.script is not None:
            load_script(config.script)  # a bad script is refused in the form, with its line
        if host:
            _check_host(ctx, host, config)
    except UsageError as exc:
        return str(exc)
    return None


def _check_capacity(config: LoadConfig, options: Any) -> None:
    """The capacity search's gates parse, and it has the recorded events it judges.

    Raises:
        UsageError: a bad gate or threshold, or ``--shape capacity`` with ``--no-record``.
    """
    o = vars(options) if options is not None and not isinstance(options, Mapping) else options
    search_config(o or {})
    if config.shape.kind == "capacity" and not config.record:
        raise UsageError(
            "--shape capacity judges each level from the recorded events: drop --no-record"
        )


def capacity_tick(environment: Any, shape: ShapeConfig, *, first: bool) -> Tick:
    """The capacity search's next target for the shape (None: the search is over).

    ``first``: the shape's first tick of a test (it comes before ``test_start``): a new
    search starts, so level 1's window begins when its users are spawned.
    """
    try:
        ctx = context_of(environment)
        if first or ctx.capacity is None:
            ctx.capacity = _new_search(ctx, shape)
    except UsageError as exc:
        logger.error("capacity search stopped: %s", exc)
        return None
    return ctx.capacity.tick()


def _new_search(ctx: HarnessContext, shape: ShapeConfig) -> CapacitySearch:
    if ctx.live is None or ctx.recording is None:
        raise UsageError("no live statistics (--shape capacity needs the recorded events)")
    ctx.live.reset(windowed=True)
    options = ctx.environment.parsed_options
    recording = ctx.recording
    return CapacitySearch(
        shape,
        search_config(vars(options) if options is not None else {}),
        ctx.live,
        sources=recording.live_sources,
        wait_s=3 * recording.flush_interval_s + 2.0,
        on_done=lambda summary: _save_search(ctx, summary),
    )


def _save_search(ctx: HarnessContext, summary: dict[str, Any]) -> None:
    """run.json ``capacity_search`` (the last capacity test's), and the verdict in the log."""
    logger.info("%s", summary["verdict"])
    if ctx.run_info is None:
        return
    ctx.run_info.extra["capacity_search"] = summary
    try:
        ctx.run_info.write()
    except OSError as exc:
        logger.error("cannot update %s: %s", ctx.run_info.run_dir, exc.strerror)


def _check_host(ctx: HarnessContext, host: str, config: LoadConfig) -> TargetPolicy:
    """The safety rail's policy for ``host``.

    Raises:
        UsageError: malformed, or non-loopback without ``--allow-remote-target``.
    """
    try:
        guest_url(host, config.flow.deployment_id)
    except ValueError as exc:  # urlsplit: e.g. an unclosed IPv6 bracket
        raise UsageError(f"--host is not a URL: {host!r} ({exc})") from None
    return check_target(
        host,
        config.flow,
        allow_remote=config.allow_remote,
        conn_rate_override=config.conn_rate_override,
        workers=_workers(ctx.environment),
    )


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
    return _check_host(ctx, host, ctx.config)


def _use_embedded_simulator(ctx: HarnessContext) -> None:
    """An empty host means the embedded simulator, as at start-up (started now if none).

    Raises:
        UsageError: the simulator did not start (e.g. bad ``--sim-args``).
    """
    if ctx.simulator is None:
        ctx.simulator = EmbeddedSimulator(ctx.config.sim_args)
    ctx.environment.host = ctx.simulator.host
    logger.info("empty host: using the embedded simulator at %s", ctx.simulator.host)


def _on_test_start(ctx: HarnessContext) -> None:
    """Rebuild what depends on the options and host (edited in the web UI, or on a worker)."""
    env = ctx.environment
    try:
        ctx.config = load_config(env.parsed_options)
        _load_script(ctx)
        _use_sources(ctx)
        _describe_script(ctx)
        _check_capacity(ctx.config, env.parsed_options)
        if ctx.role != "worker" and not (env.host or "").strip():
            env.host = _script_host(ctx) or ""
        if ctx.role != "worker" and not (env.host or "").strip():
            _use_embedded_simulator(ctx)
        ctx.policy = _policy(ctx, env.host or "")
        ctx.refusal = None
    except UsageError as exc:
        ctx.refusal = str(exc)
        logger.error("test not started: %s", exc)  # also in the web UI's log tab
        return
    if not ctx.run_id and ctx.config.run_dir is not None:
        ctx.run_id = ctx.config.run_dir.name  # a worker: the master's run directory
    if ctx.policy.conn_per_minute:
        ctx.conn_pacer = TokenBucket(ctx.policy.conn_per_minute / 60.0)
    shape = ctx.config.shape
    if shape.kind == "open":
        ctx.arrivals = ArrivalSchedule(shape.arrival_rate / _workers(env))
    if ctx.live is not None:  # the tabs show this test, as Locust's own statistics do
        ctx.live.reset(windowed=shape.kind == "capacity")
    if ctx.recording is not None:
        ctx.drained = False
        ctx.recording.start_sampling()
    if ctx.role != "worker":
        _check_limits(ctx)
    _record_test(ctx, start=True)


def _on_test_stop(ctx: HarnessContext) -> None:
    stopped = utc_now_iso()
    if ctx.recording is not None:
        ctx.recording.stop_sampling()
        _drain(ctx)
        ctx.recording.flush()
    if ctx.capacity is not None and not ctx.finished:
        ctx.capacity.interrupt()  # no-op when the search itself ended the test
    _record_test(ctx, start=False, now=stopped)


def _record_test(ctx: HarnessContext, *, start: bool, now: str | None = None) -> None:
    """run.json ``tests``: append a started test, or set the open one's ``ended``."""
    info = ctx.run_info
    if info is None or ctx.finished or (start and ctx.refusal is not None):
        return
    tests: list[dict[str, Any]] = info.extra.setdefault("tests", [])
    now = now or utc_now_iso()
    if start:
        if not tests:
            info.started = now  # the load started now, not when Locust did
        options = ctx.environment.parsed_options
        users = getattr(options, "num_users", None) if options is not None else None
        host, shape = ctx.environment.host, ctx.config.shape.kind
        tests.append({"started": now, "ended": None, "host": host, "users": users, "shape": shape})
    elif tests and tests[-1]["ended"] is None:
        tests[-1]["ended"] = now
    else:
        return
    try:
        info.write()
    except OSError as exc:
        logger.error("cannot update %s: %s", info.run_dir, exc.strerror)


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

    Idempotent; runs from ``quitting`` (normal end, or after a stop signal). A second call
    while the first is still flushing (Locust's own SIGTERM handler and its main loop can both
    shut down) waits for the first, so the process never exits halfway through the flush.
    """
    if ctx.finished:
        if ctx.finish_done is not None:
            ctx.finish_done.wait(FINISH_WAIT_S)
        return
    ctx.finish_done = gevent.event.Event()
    try:
        _finish(ctx)
    finally:
        ctx.finish_done.set()


def _finish(ctx: HarnessContext) -> None:
    _record_test(ctx, start=False)  # a test still running ends now
    ctx.finished = True
    runner = ctx.environment.runner
    if ctx.role != "master":
        # Users close their sockets; the close rows are recorded. On a worker stopped by its
        # own signal this must happen here: quitting runs this before Locust tells the
        # master "quit" (and the master, once its last worker quit, stops listening), while
        # Locust itself only stops the users after quitting, too late to ship their rows.
        runner.stop()
    if ctx.recording is not None:
        _drain(ctx)
        ctx.recording.close()
    if ctx.simulator is not None:
        summary = ctx.simulator.stop()
        if ctx.run_info is not None:
            ctx.run_info.simulator_summary = summary
    if ctx.run_info is not None:
        tests = ctx.run_info.extra.get("tests") or []
        ended = tests[-1]["ended"] if tests else None
        ctx.run_info.ended = ended or utc_now_iso()
        ctx.run_info.host = ctx.environment.host
        if ctx.recording is not None:
            ctx.run_info.extra["events_shards"] = ctx.recording.shards_written
        ctx.run_info.write()
