"""Load shapes: ramp, step, spike, soak, an open model and the capacity search.

Locust runs the first LoadTestShape it finds in the locustfile, so the locustfile exposes ONE
shape class, :class:`HarnessShape`, which delegates to the schedule chosen by ``--shape``. With
``--shape none`` it follows ``-u``/``-r``/``-t`` exactly as if there were no shape class
(``use_common_options`` keeps those fields in the web UI).

Every schedule is ``plan(config, t) -> (users, spawn_rate) | None``; None ends the test. ``-t``
also ends every shape. The capacity search is not a function of time alone: each tick asks
the test's CapacitySearch (harness.loadgen.capacity), which steps up until a gate breaks or
the generator saturates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from locust import LoadTestShape
from locust.runners import STATE_INIT

from harness.errors import UsageError
from harness.loadgen.capacity import LEVEL_RATE_PER_S, level_users
from harness.loadgen.config import ShapeConfig, open_pool_size, shape_config
from harness.loadgen.plugin import capacity_tick, context_of

logger = logging.getLogger(__name__)

Tick = tuple[int, float] | None
#: Spawn rate used when a shape wants a step change "at once" (per second, all workers).
FAST_RATE_PER_S = 100.0


def _peak(c: ShapeConfig) -> int:
    return c.peak_users or c.users


def plan_none(c: ShapeConfig, t: float) -> Tick:
    """Plain ``-u``/``-r``: hold the user count (``-t`` is applied by :func:`plan`)."""
    return c.users, c.spawn_rate


def plan_ramp(c: ShapeConfig, t: float) -> Tick:
    """Linear ramp from 0 to the peak over ``--ramp-time``, then ``--hold-time`` at the peak."""
    if t >= c.ramp_s + c.hold_s:
        return None
    peak = _peak(c)
    return peak, peak / c.ramp_s if c.ramp_s > 0 else FAST_RATE_PER_S


def plan_step(c: ShapeConfig, t: float) -> Tick:
    """Add ``--step-users`` every ``--step-time`` up to the peak; hold the last step one step."""
    peak = _peak(c)
    steps = max(1, math.ceil(peak / c.step_users))
    if c.step_s <= 0 or t >= steps * c.step_s:
        return None
    users = min(peak, c.step_users * (int(t // c.step_s) + 1))
    return users, max(float(c.step_users), FAST_RATE_PER_S)


def plan_spike(c: ShapeConfig, t: float) -> Tick:
    """``-u`` users, then ``--spike-users`` (default 3x) for ``--spike-time``, then ``-u`` again
    for ``--hold-time`` (default: as long as the time before the spike)."""
    spike = c.spike_users or 3 * c.users
    after = c.hold_s or c.spike_at_s
    if t >= c.spike_at_s + c.spike_s + after:
        return None
    users = spike if c.spike_at_s <= t < c.spike_at_s + c.spike_s else c.users
    return users, max(float(spike), FAST_RATE_PER_S)


def plan_soak(c: ShapeConfig, t: float) -> Tick:
    """Ramp to the peak over ``--ramp-time``, then hold it for ``--hold-time`` (default 1 h)."""
    hold = c.hold_s or 3600.0
    if t >= c.ramp_s + hold:
        return None
    peak = _peak(c)
    return peak, peak / c.ramp_s if c.ramp_s > 0 else FAST_RATE_PER_S


def plan_open(c: ShapeConfig, t: float) -> Tick:
    """Open model: a pool of users that start conversations at ``--arrival-rate`` per second
    (see harness.loadgen.arrivals); ends after ``--hold-time`` when set, else with ``-t``."""
    if c.hold_s and t >= c.hold_s:
        return None
    size = open_pool_size(c)
    return size, max(float(size), FAST_RATE_PER_S)


def plan_capacity_start(c: ShapeConfig, t: float) -> Tick:
    """The capacity search's first level (under Locust the search itself picks every level)."""
    return level_users(c)[0], max(float(c.step_users), LEVEL_RATE_PER_S)


PLANS: dict[str, Callable[[ShapeConfig, float], Tick]] = {
    "none": plan_none,
    "ramp": plan_ramp,
    "step": plan_step,
    "spike": plan_spike,
    "soak": plan_soak,
    "open": plan_open,
    "capacity": plan_capacity_start,
}


def plan(c: ShapeConfig, t: float) -> Tick:
    """The shape's target at ``t`` seconds, or None once it (or ``-t``) is over."""
    if c.run_time_s is not None and t >= c.run_time_s:
        return None
    return PLANS[c.kind](c, t)


class HarnessShape(LoadTestShape):
    """The one shape class of the locustfile; ``--shape`` picks the schedule."""

    use_common_options = True

    def tick(self) -> Tick:
        runner: Any = self.runner
        options = runner.environment.parsed_options if runner is not None else None
        try:
            config = shape_config(vars(options) if options is not None else {})
        except UsageError as exc:  # e.g. a bad value typed into the web UI: stop, say why
            logger.error("shape stopped: %s", exc)
            return None
        if runner is not None and runner.state != STATE_INIT and _refused(runner.environment):
            # refused at this test's start (the reason is in the log); before the start
            # (state init: the first tick comes first) the previous test's refusal is stale
            return None
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]  # Locust API
        if config.kind == "capacity" and runner is not None:
            if config.run_time_s is not None and elapsed >= config.run_time_s:
                return None
            return capacity_tick(runner.environment, config, first=runner.state == STATE_INIT)
        return plan(config, elapsed)


def _refused(environment: Any) -> bool:
    try:
        return context_of(environment).refusal is not None
    except UsageError:  # not installed (a bare Environment): nothing to refuse
        return False
