"""The harness's custom Locust arguments and the frozen config built from them.

Arguments are registered on Locust's parser (``events.init_command_line_parser``) so they show
in ``locust --help`` and in the web UI. The web UI hands edited values back as strings, so every
value is parsed here from ``str`` or its native type, never trusted as already typed.
"""

from __future__ import annotations

import argparse
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.client.sources import parse_sources
from harness.errors import UsageError
from harness.protocol import limits
from harness.protocol.units import parse_duration

SESSION_MODES: Final = ("close", "keep", "resume")
SHAPES: Final = ("none", "ramp", "step", "spike", "soak", "open", "capacity")
#: Deployment id used against the local simulator when none is given (it accepts any id).
LOCAL_DEPLOYMENT_ID: Final = "00000000-0000-4000-8000-000000000000"
#: customAttributes that mark every guest message as synthetic: run id, user, scenario.
TAG_KEYS: Final = ("loadtest_run", "loadtest_user", "loadtest_scenario")


def add_arguments(parser: Any) -> None:
    """Register the custom arguments on Locust's parser (shown in the web UI too)."""
    add = parser.add_argument
    add("--deployment-id", default="", help="Messenger deployment id (required for remote)")
    add("--origin", default="", help="Origin header to send (default: none)")
    add("--messages-per-session", type=int, default=5, help="guest texts per conversation")
    add("--think-time", default="2s,4s", help="pause between turns: D, or D1,D2 (uniform)")
    add("--reply-timeout", default="30s", help="wait this long for the echo and the bot reply")
    add("--answer-quiet", default="500ms", help="a bot answer is every message after a send "
        "until the bot is quiet this long (0 = the first message only)")  # fmt: skip
    add("--answer-ends-on-quick-replies", default="on", choices=("on", "off"),
        help="a message offering quick replies or a card ends the answer at once")  # fmt: skip
    add("--script", default="", help="conversation script (YAML): weighted scenarios of "
        "say / waitForReply… steps (the web messaging tester's format runs as is)")  # fmt: skip
    add("--reorder-window", default="1s", help="scripts: messages up to this much out of "
        "order are re-sorted by channel.time before matching (counted as reordered)")  # fmt: skip
    add("--no-tagging", action="store_true", default=False, help="do not mark guest messages "
        "as load-test traffic (customAttributes)")  # fmt: skip
    add("--tag-keys", default=",".join(TAG_KEYS), help="customAttributes keys for the run, "
        "the user and the scenario (RUN,USER,SCENARIO)")  # fmt: skip
    add("--heartbeat-interval", default="60s", help="echo every D (>= 30s remote; 0 = off)")
    add("--session-mode", default="close", choices=SESSION_MODES, help="after the turns: "
        "close (1000, next user a new token), keep (hold open with heartbeats), resume "
        "(drop and reconnect with the same token)")  # fmt: skip
    add("--typing", default="on", choices=("on", "off"), help="send Typing On before a text")
    add("--presence-join", default="off", choices=("on", "off"), help="Presence Join on new")
    add("--run-dir", default="", help="run directory (default reports/<UTC time>-<id>)")
    add("--shape", default="none", choices=SHAPES, help="load shape (none = -u/-r/-t)")
    add("--peak-users", type=int, default=0, help="shape peak users (default -u)")
    add("--ramp-time", default="60s", help="ramp/soak: time to reach the peak")
    add("--hold-time", default="0s", help="ramp/spike/soak: time at the peak (soak: 1h)")
    add("--step-users", type=int, default=10, help="step: users added per step")
    add("--step-time", default="30s", help="step: time per step")
    add("--spike-users", type=int, default=0, help="spike: users during the spike (3x -u)")
    add("--spike-at", default="30s", help="spike: when the spike starts")
    add("--spike-time", default="30s", help="spike: how long the spike lasts")
    add("--arrival-rate", type=float, default=1.0, help="open: new conversations per second")
    add("--max-users", type=int, default=0, help="open: concurrency cap (default 100x rate)")
    add("--allow-remote-target", action="store_true", default=False,
        help="permit a non-loopback --host (paced within the documented limits)")  # fmt: skip
    add("--conn-rate-override", type=int, default=0, help="remote: new connections/min "
        "(default 1000 per deployment, split across workers)")  # fmt: skip
    add("--source-addresses", default="", help="spread connections over these local "
        "addresses: A-B ranges and/or a comma list, e.g. 127.0.0.2-127.0.0.9 (one address "
        "holds ~28k connections to one host:port)")  # fmt: skip
    add("--sim-args", default="", help="extra arguments for the embedded simulator")
    add("--no-record", action="store_true", default=False, help="do not write raw events")


def _duration(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise UsageError(f"--{name} must be >= 0: {value}")
        return float(value)
    try:
        return parse_duration(str(value))
    except UsageError as exc:
        raise UsageError(f"--{name}: {exc}") from None


def _int(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be an integer: {value!r}") from None
    if number < minimum:
        raise UsageError(f"--{name} must be >= {minimum}: {number}")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "1", "yes")
    return bool(value)


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip()
    if text not in choices:
        raise UsageError(f"--{name} must be one of {', '.join(choices)}: {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """How one GuestUser converses (design.md "Conversation flow")."""

    deployment_id: str = LOCAL_DEPLOYMENT_ID
    origin: str | None = None
    messages_per_session: int = 5
    think_min_s: float = 2.0
    think_max_s: float = 4.0
    reply_timeout_s: float = 30.0
    heartbeat_interval_s: float = 60.0
    session_mode: str = "close"
    typing: bool = True
    presence_join: bool = False
    answer_quiet_s: float = 0.5
    answer_ends_on_quick_replies: bool = True
    reorder_window_s: float = 1.0
    #: customAttributes keys (run, user, scenario) put on every guest message; () = none
    tag_keys: tuple[str, ...] = TAG_KEYS


@dataclass(frozen=True, slots=True)
class ShapeConfig:
    """Parameters of the load shapes (see harness.loadgen.shapes)."""

    kind: str = "none"
    users: int = 1
    spawn_rate: float = 1.0
    run_time_s: float | None = None
    peak_users: int = 0
    ramp_s: float = 60.0
    hold_s: float = 0.0
    step_users: int = 10
    step_s: float = 30.0
    spike_users: int = 0
    spike_at_s: float = 30.0
    spike_s: float = 30.0
    arrival_rate: float = 1.0
    max_users: int = 0


def open_pool_size(c: ShapeConfig) -> int:
    """Concurrency cap of the open model: ``--max-users`` or 100 x the arrival rate."""
    return c.max_users or max(1, math.ceil(100 * c.arrival_rate))


def planned_peak(c: ShapeConfig) -> int:
    """The most users the shape runs at once (what the generators must be able to hold)."""
    if c.kind == "spike":
        return max(c.users, c.spike_users or 3 * c.users)
    if c.kind == "open":
        return open_pool_size(c)
    if c.kind in ("ramp", "step", "soak", "capacity"):
        return c.peak_users or c.users
    return c.users


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Everything the harness reads from the command line, parsed and validated once."""

    flow: FlowConfig
    shape: ShapeConfig
    run_dir: Path | None
    allow_remote: bool = False
    conn_rate_override: int = 0
    sim_args: tuple[str, ...] = ()
    record: bool = True
    script: Path | None = None
    source_addresses: tuple[str, ...] = ()


def _think(value: Any) -> tuple[float, float]:
    parts = [p for p in str(value).split(",") if p.strip()]
    if len(parts) not in (1, 2):
        raise UsageError(f"--think-time takes D or D1,D2: {value!r}")
    low = _duration(parts[0], "think-time")
    high = _duration(parts[-1], "think-time")
    if high < low:
        raise UsageError(f"--think-time range must be increasing: {value!r}")
    return low, high


def _tag_keys(o: Mapping[str, Any]) -> tuple[str, ...]:
    if _flag(o.get("no_tagging", False)):
        return ()
    keys = tuple(k.strip() for k in str(o.get("tag_keys") or ",".join(TAG_KEYS)).split(","))
    if len(keys) != 3 or not all(keys) or len(set(keys)) != 3:
        raise UsageError(f"--tag-keys takes three distinct names RUN,USER,SCENARIO: {keys}")
    return keys


def flow_config(o: Mapping[str, Any]) -> FlowConfig:
    """Build the flow config from parsed options (a ``vars(namespace)`` mapping)."""
    think_min, think_max = _think(o.get("think_time", "2s,4s"))
    origin = str(o.get("origin") or "").strip() or None
    return FlowConfig(
        deployment_id=str(o.get("deployment_id") or "").strip() or LOCAL_DEPLOYMENT_ID,
        origin=origin,
        messages_per_session=_int(o.get("messages_per_session", 5), "messages-per-session"),
        think_min_s=think_min,
        think_max_s=think_max,
        reply_timeout_s=_duration(o.get("reply_timeout", "30s"), "reply-timeout"),
        heartbeat_interval_s=_duration(o.get("heartbeat_interval", "60s"), "heartbeat-interval"),
        session_mode=_choice(o.get("session_mode", "close"), "session-mode", SESSION_MODES),
        typing=_flag(o.get("typing", "on")),
        presence_join=_flag(o.get("presence_join", "off")),
        answer_quiet_s=_duration(o.get("answer_quiet", "500ms"), "answer-quiet"),
        answer_ends_on_quick_replies=_flag(o.get("answer_ends_on_quick_replies", "on")),
        reorder_window_s=_duration(o.get("reorder_window", "1s"), "reorder-window"),
        tag_keys=_tag_keys(o),
    )


def shape_config(o: Mapping[str, Any]) -> ShapeConfig:
    """Build the shape config from parsed options."""
    kind = _choice(o.get("shape", "none"), "shape", SHAPES)
    run_time = o.get("run_time")
    return ShapeConfig(
        kind=kind,
        users=_int(o.get("num_users") or 1, "users", 0),
        spawn_rate=float(o.get("spawn_rate") or 1.0),
        run_time_s=float(run_time) if run_time else None,
        peak_users=_int(o.get("peak_users") or 0, "peak-users"),
        ramp_s=_duration(o.get("ramp_time", "60s"), "ramp-time"),
        hold_s=_duration(o.get("hold_time", "0s"), "hold-time"),
        step_users=_int(o.get("step_users", 10), "step-users", 1),
        step_s=_duration(o.get("step_time", "30s"), "step-time"),
        spike_users=_int(o.get("spike_users") or 0, "spike-users"),
        spike_at_s=_duration(o.get("spike_at", "30s"), "spike-at"),
        spike_s=_duration(o.get("spike_time", "30s"), "spike-time"),
        arrival_rate=float(o.get("arrival_rate") or 1.0),
        max_users=_int(o.get("max_users") or 0, "max-users"),
    )


def load_config(options: argparse.Namespace | Mapping[str, Any] | None) -> LoadConfig:
    """Parse and validate every harness option.

    Raises:
        UsageError: a value is malformed (one line, names the option).
    """
    o: Mapping[str, Any]
    if options is None:
        o = {}
    elif isinstance(options, argparse.Namespace):
        o = vars(options)
    else:
        o = options
    run_dir = str(o.get("run_dir") or "").strip()
    script = str(o.get("script") or "").strip()
    try:
        sim_args = tuple(shlex.split(str(o.get("sim_args") or "")))
    except ValueError as exc:
        raise UsageError(f"--sim-args: {exc}") from None
    return LoadConfig(
        flow=flow_config(o),
        shape=shape_config(o),
        run_dir=Path(run_dir) if run_dir else None,
        allow_remote=_flag(o.get("allow_remote_target", False)),
        conn_rate_override=_int(o.get("conn_rate_override") or 0, "conn-rate-override"),
        sim_args=sim_args,
        record=not _flag(o.get("no_record", False)),
        script=Path(script) if script else None,
        source_addresses=parse_sources(str(o.get("source_addresses") or "")),
    )


#: The documented limits the safety rail paces a remote run within (protocol.md §5).
REMOTE_LIMITS: Final = {
    "new connections per deployment per minute": limits.CONN_RATE_PER_DEPLOYMENT,
    "onMessage per session per second": limits.MSG_RATE_PER_SESSION,
    "requests per connection per minute": limits.REQ_RATE_PER_CONNECTION,
    "minimum heartbeat interval (s)": limits.MIN_HEARTBEAT_INTERVAL_S,
}
