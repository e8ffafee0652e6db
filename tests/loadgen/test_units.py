"""Pure parts of the load side: options, safety rail, pacers, shapes, arrivals, URLs, reporting.

No gevent, no sockets: the pacers take a fake clock, the reporter a plain callable.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.client.results import StepOutcome
from harness.errors import UsageError
from harness.loadgen.arrivals import ArrivalSchedule
from harness.loadgen.config import (
    LOCAL_DEPLOYMENT_ID,
    FlowConfig,
    ShapeConfig,
    load_config,
    open_pool_size,
)
from harness.loadgen.flow import guest_url
from harness.loadgen.reporting import StepReporter
from harness.loadgen.safety import SlidingWindow, TokenBucket, check_target, is_loopback
from harness.loadgen.shapes import plan
from harness.record.recorder import Recorder


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


# --- options ---------------------------------------------------------------------------------
def test_options_from_strings_as_the_web_ui_sends_them() -> None:
    c = load_config(
        {
            "think_time": "1s,3s",
            "heartbeat_interval": "45",
            "num_users": "7",
            "messages_per_session": "2",
            "session_mode": "resume",
            "typing": "off",
            "allow_remote_target": "true",
            "sim_args": "--no-limits --seed 3",
        }
    )
    assert (c.flow.think_min_s, c.flow.think_max_s) == (1.0, 3.0)
    assert c.flow.heartbeat_interval_s == 45.0 and c.flow.messages_per_session == 2
    assert c.flow.session_mode == "resume" and not c.flow.typing and c.allow_remote
    assert c.shape.users == 7 and c.sim_args == ("--no-limits", "--seed", "3")
    assert c.flow.deployment_id == LOCAL_DEPLOYMENT_ID and c.record and c.run_dir is None


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("think_time", "3s,1s", "increasing"),
        ("think_time", "soon", "think-time"),
        ("session_mode", "forever", "session-mode"),
        ("messages_per_session", "-1", "messages-per-session"),
        ("shape", "sine", "shape"),
        ("sim_args", "'unclosed", "sim-args"),
    ],
)
def test_bad_options_give_one_line_errors(key: str, value: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        load_config({key: value})
    assert needle in str(info.value) and "\n" not in str(info.value)


# --- safety rail -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "host",
    ["ws://127.0.0.1:8080", "127.0.0.5", "ws://localhost:1", "ws://[::1]:9", "http://127.1.2.3"],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["wss://webmessaging.example.com", "ws://10.0.0.1:80", "ws://[2001:db8::1]:9"]
)
def test_remote_hosts_are_refused_without_opt_in(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(UsageError, match="--allow-remote-target"):
        check_target(host, FlowConfig(), allow_remote=False, conn_rate_override=0, workers=1)


def test_remote_opt_in_paces_within_documented_limits() -> None:
    flow = FlowConfig(deployment_id="9f3c6a1e-0000-4000-8000-000000000001")
    p = check_target(
        "wss://webmessaging.example.com",
        flow,
        allow_remote=True,
        conn_rate_override=0,
        workers=4,
    )
    assert p.remote and p.conn_per_minute == 250 and p.msg_per_second == 5
    assert p.req_per_minute is not None and p.req_per_minute <= 60
    banner = p.banner("wss://webmessaging.example.com", 4)
    assert "1000/min" in banner and "30 s" in banner
    fast = FlowConfig(deployment_id=flow.deployment_id, heartbeat_interval_s=5)
    with pytest.raises(UsageError, match="heartbeat"):
        check_target("wss://x.example", fast, allow_remote=True, conn_rate_override=0, workers=1)
    with pytest.raises(UsageError, match="deployment-id"):
        check_target(
            "wss://x.example", FlowConfig(), allow_remote=True, conn_rate_override=0, workers=1
        )
    over = check_target(
        "wss://x.example", flow, allow_remote=True, conn_rate_override=120, workers=2
    )
    assert over.conn_per_minute == 60


def test_loopback_is_unpaced() -> None:
    p = check_target(
        "ws://127.0.0.1:1", FlowConfig(), allow_remote=False, conn_rate_override=0, workers=1
    )
    assert not p.remote and p.conn_per_minute is None


def test_token_bucket_paces_to_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        bucket.acquire()
    # burst of 2 (one second's worth), then one token every 0.5 s
    assert clock.now == pytest.approx(4.0)


def test_sliding_window_never_exceeds_its_limit() -> None:
    clock = FakeClock()
    window = SlidingWindow(5, 1.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(23):
        window.acquire()
        times.append(clock.now)
    for t in times:
        assert sum(1 for u in times if t - 1.0 < u <= t) <= 5
    assert clock.now == pytest.approx(4.0)


# --- shapes --------------------------------------------------------------------------------------
def test_none_shape_follows_users_and_run_time() -> None:
    c = ShapeConfig(users=20, spawn_rate=10, run_time_s=10)
    assert plan(c, 0) == (20, 10) and plan(c, 9.9) == (20, 10) and plan(c, 10) is None
    assert plan(ShapeConfig(users=3), 1e6) == (3, 1.0)


def test_ramp_and_soak() -> None:
    ramp = ShapeConfig(kind="ramp", users=1, peak_users=100, ramp_s=50, hold_s=10)
    assert plan(ramp, 0) == (100, 2.0) and plan(ramp, 59) == (100, 2.0) and plan(ramp, 60) is None
    soak = ShapeConfig(kind="soak", peak_users=10, ramp_s=10)
    assert plan(soak, 3600 + 9) == (10, 1.0) and plan(soak, 3610) is None


def test_step_shape() -> None:
    c = ShapeConfig(kind="step", peak_users=25, step_users=10, step_s=30)
    assert [plan(c, t)[0] for t in (0, 29, 30, 60, 89)] == [10, 10, 20, 25, 25]  # type: ignore[index]
    assert plan(c, 90) is None


def test_spike_shape() -> None:
    c = ShapeConfig(kind="spike", users=10, spike_at_s=30, spike_s=10)
    assert plan(c, 0)[0] == 10 and plan(c, 30)[0] == 30 and plan(c, 40)[0] == 10  # type: ignore[index]
    assert plan(c, 70) is None


def test_open_shape_pool() -> None:
    c = ShapeConfig(kind="open", arrival_rate=2.5, hold_s=60)
    assert open_pool_size(c) == 250 and plan(c, 1)[0] == 250 and plan(c, 60) is None  # type: ignore[index]
    assert open_pool_size(ShapeConfig(kind="open", max_users=7)) == 7


def test_arrival_schedule_slots() -> None:
    now = [1_000_000_000]
    sched = ArrivalSchedule(4.0, now_ns=lambda: now[0])
    slots = [sched.claim() for _ in range(4)]
    assert slots == [1_000_000_000, 1_250_000_000, 1_500_000_000, 1_750_000_000]
    assert sched.delay_s(slots[2]) == pytest.approx(0.5)
    now[0] = 3_000_000_000
    assert sched.delay_s(slots[3]) == 0.0  # late: start now, the slot stays the intended time


# --- URLs and reporting --------------------------------------------------------------------------
def test_guest_url() -> None:
    assert guest_url("ws://127.0.0.1:9", "D") == "ws://127.0.0.1:9/v1?deploymentId=D"
    assert guest_url("https://h.example/", "D") == "wss://h.example/v1?deploymentId=D"
    assert guest_url("wss://h/v1?deploymentId=X", "D") == "wss://h/v1?deploymentId=X"
    with pytest.raises(UsageError):
        guest_url("ftp://h", "D")


class Ctx:
    active_connections = 0


class Client:
    token = "tok"
    conn_id = 3


def _reporter() -> tuple[StepReporter, list[dict[str, Any]], Recorder, Ctx]:
    fired: list[dict[str, Any]] = []
    rec, ctx = Recorder(), Ctx()
    rep = StepReporter(lambda **kw: fired.append(kw), rec, ctx, user_id=11)
    rep.client = Client()
    return rep, fired, rec, ctx


def test_reporter_rows_and_requests() -> None:
    rep, fired, rec, ctx = _reporter()
    rep.intended_connect_ns = 5
    rep(StepOutcome("connect", 10, 1500.0, True, http_status=101))
    rep(StepOutcome("typing", 11, None, True, bytes_out=40))
    rep(StepOutcome("onMessage", 12, 800.0, False, "rate_limited"))
    rep(StepOutcome("close", 13, 300.0, False, close_code=1011, close_initiator="server"))
    assert ctx.active_connections == 0
    names = [(f["name"], f["exception"] is None) for f in fired]
    assert names == [("connect", True), ("rate_limited", True), ("close", False)]
    assert fired[0]["response_time"] == 1.5 and fired[0]["request_type"] == "WS"
    assert "1011" in str(fired[2]["exception"]) and "internal error" in str(fired[2]["exception"])
    table = rec.take_batch()
    assert table is not None
    rows = table.to_pylist()
    assert [r["step"] for r in rows] == ["connect", "typing", "onMessage", "close"]
    assert rows[0]["intended_ns"] == 5 and rows[0]["user_id"] == 11 and rows[0]["conn_id"] == 3
    assert rows[1]["latency_us"] is None


@pytest.mark.parametrize("code", [1000, 1001])
def test_clean_closes_are_not_failures(code: int) -> None:
    rep, fired, _, _ = _reporter()
    rep(StepOutcome("close", 1, 100.0, True, close_code=code, close_initiator="client"))
    assert fired[0]["exception"] is None
