"""GuestClient against the real simulator: the whole guest flow, limits and fault injection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from harness.client.guest import GuestClient
from harness.errors import (
    HandshakeRejected,
    InvalidState,
    RateLimited,
    ResponseTimeout,
    ServerErrorFrame,
    UsageError,
)
from harness.protocol.session import SocketState
from harness.sim.launcher import SimProcess

from .conftest import DEPLOYMENT, Reports, options

MakeClient = Callable[..., GuestClient]


def test_full_flow(sim: SimProcess, make_client: MakeClient, reports: Reports) -> None:
    client = make_client(sim.url)
    client.connect()
    assert client.state is SocketState.UPGRADED
    response = client.configure()
    assert response.connected and response.new_session is True
    client.send_text("Where is my order?", intended_ns=123)
    client.send_quick_reply("Track an order", "track_order")
    client.send_typing()
    client.echo()
    assert client.get_jwt() > time.time()
    close = client.close()
    assert (close.code, close.initiator) == (1000, "client")

    assert [o.step for o in reports if o.step in ("connect", "close")] == ["connect", "close"]
    assert reports.one("configureSession").ok
    on_message, bot_reply = reports.steps("onMessage"), reports.steps("botReply")
    assert len(on_message) == 2 and len(bot_reply) == 2
    assert all(o.ok and o.latency_us is not None and o.latency_us > 0 for o in on_message)
    assert all(r.latency_us > e.latency_us for r, e in zip(bot_reply, on_message, strict=True))  # type: ignore[operator]
    assert on_message[0].intended_ns == 123 and on_message[0].bytes_out
    typing = reports.one("typing")
    assert typing.ok and typing.latency_us is None
    assert reports.one("echo").ok and reports.one("getJwt").ok
    close_row = reports.one("close")
    assert close_row.close_code == 1000 and close_row.close_initiator == "client"
    assert close_row.latency_us is not None and close_row.latency_us > 0  # the close handshake
    assert reports.one("connect").http_status == 101
    assert client.counters.lost == 0 and client.counters.protocol_errors == 0
    assert all("eyJ" not in (o.detail or "") for o in reports)  # no JWT leaks into reports


def test_resume_with_the_same_token(sim: SimProcess, make_client: MakeClient) -> None:
    first = make_client(sim.url)
    first.connect()
    assert first.configure().new_session is True
    first.send_text("hello")
    first.close()
    assert first.closed
    first.connect()  # a new socket, same token
    assert first.conn_id == 2
    assert first.configure().new_session is False
    other_device = make_client(sim.url, token=first.token)
    other_device.connect()
    assert other_device.configure().new_session is False
    first.send_text("fan-out")  # the other device sees this echo: not a duplicate (§7.3)
    other_device.echo()
    assert other_device.counters.duplicate == 0 and other_device.counters.protocol_errors == 0


def test_sends_before_configure_are_refused_locally(
    sim: SimProcess, make_client: MakeClient
) -> None:
    client = make_client(sim.url)
    with pytest.raises(InvalidState):
        client.send_text("not connected")
    client.connect()
    with pytest.raises(InvalidState):
        client.send_text("not configured")  # §2.1: configureSession first
    with pytest.raises(InvalidState):
        client.connect()


def test_presence_join_disconnect_and_start_new(
    sim: SimProcess, make_client: MakeClient, reports: Reports
) -> None:
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.send_presence("Join", wait_reply=True)  # the welcome is awaited, not unsolicited
    assert client.counters.unsolicited == 0
    client.send_presence("Disconnect")
    assert client.wait_read_only(5.0)
    with pytest.raises(InvalidState):
        client.send_text("read-only now")
    response = client.configure(start_new=True)
    assert response.new_session is True and not client.read_only
    client.send_text("a new conversation")
    assert len(reports.steps("presence")) == 2
    with pytest.raises(UsageError):
        client.send_presence("Leave")


def test_presence_clear_ends_with_our_1000(
    sim: SimProcess, make_client: MakeClient, reports: Reports
) -> None:
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.send_presence("Clear")
    close = client.wait_closed(10.0)
    assert close is not None and close.code == 1000
    assert close.initiator == "client"  # §3.2: after ConnectionClosedEvent the client closes
    assert reports.one("close").ok
    client.connect()
    assert client.configure().new_session is True  # the token was forgotten


def test_server_error_frame_keeps_the_socket(
    sim: SimProcess, make_client: MakeClient, reports: Reports
) -> None:
    client = make_client(sim.url)
    client.connect()
    client.configure()
    with pytest.raises(ServerErrorFrame) as info:
        client.send_text("x" * 5000)  # §8.3: 4011 over 4096 bytes
    assert info.value.code == 4011
    failed = reports.steps("onMessage")[-1]
    assert not failed.ok and failed.error == "server_error_4011"
    assert not reports.steps("botReply")  # nothing to time for a refused message
    client.send_text("short")  # still open and configured
    assert client.counters.lost == 0


def test_heartbeat_echoes_on_its_own_timer(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--limit", "echo-rate=off")
    client = make_client(sim.url, heartbeat_interval_s=0.05, allow_fast_heartbeat=True)
    client.connect()
    client.configure()
    client.start_heartbeat()
    reports.wait_for(lambda r: len(r.steps("echo")) >= 2)
    client.stop_heartbeat()
    assert all(o.ok for o in reports.steps("echo"))


def test_heartbeat_limit_is_enforced_without_the_override(
    sim: SimProcess, make_client: MakeClient
) -> None:
    with pytest.raises(UsageError):
        options(heartbeat_interval_s=10)
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.echo()
    with pytest.raises(UsageError):
        client.echo()  # the second within 30 s: refused before sending (§2.4)


def test_rate_limit_is_not_a_failure(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--limit", "echo-rate=1")
    client = make_client(sim.url, allow_fast_heartbeat=True, max_retry_after_s=0.01)
    client.connect()
    client.configure()
    client.echo()
    with pytest.raises(RateLimited) as info:
        client.echo()
    assert info.value.retry_after_s >= 1
    limited = reports.steps("echo")[-1]
    assert not limited.ok and limited.error == "rate_limited"
    assert client.counters.rate_limited == 1 and client.counters.lost == 0
    client.send_text("still fine")


def test_fault_close_1011(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--fault-close", "every:1", "--fault-close-code", "1011", "--fault-after", "1")
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.send_text("trigger")
    close = client.wait_closed(10.0)
    assert close is not None and (close.code, close.initiator) == (1011, "server")
    row = reports.one("close")
    assert not row.ok and row.close_code == 1011 and row.error == "closed"
    assert row.latency_us is None and row.close_reason == "injected fault"


def test_fault_drop_is_1006(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--fault-drop", "every:1", "--fault-after", "1")
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.send_text("trigger")
    close = client.wait_closed(10.0)
    assert close is not None and (close.code, close.initiator) == (1006, "none")
    assert reports.one("close").close_code == 1006


def test_fault_reject_403_and_unknown_deployment(
    sim_with: Callable[..., SimProcess], sim: SimProcess, make_client: MakeClient, reports: Reports
) -> None:
    rejecting = sim_with("--fault-reject", "every:1", "--fault-reject-status", "403")
    client = make_client(rejecting.url)
    with pytest.raises(HandshakeRejected) as info:
        client.connect()
    assert info.value.status == 403
    row = reports.one("connect")
    assert not row.ok and row.error == "http_403" and row.http_status == 403
    assert not reports.steps("close")  # never established: no close row

    stranger = GuestClient(f"{sim.url}?deploymentId={uuid.uuid4()}", options(), reports.append)
    with pytest.raises(HandshakeRejected) as info:
        stranger.connect()
    assert info.value.status == 403 and "deploymentId" in info.value.body
    assert DEPLOYMENT not in info.value.body


def test_reordered_turn_counts_one_out_of_order(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--fault-reorder", "every:1", "--quick-replies", "0")
    client = make_client(sim.url)
    client.connect()
    client.configure()
    client.send_text("swap me")
    assert reports.steps("botReply")[-1].ok and reports.steps("onMessage")[-1].ok
    assert client.counters.out_of_order == 1
    assert [o.error for o in reports.steps("integrity")] == ["out_of_order"]


def test_a_three_message_answer_is_one_reply_and_one_answer(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--answer-messages", "3", "--answer-gap", "40ms", "--quick-replies", "0")
    client = make_client(sim.url, answer_quiet_s=0.3)
    client.connect()
    client.configure()
    client.send_text("talk to me")
    reply, answer = reports.one("botReply"), reports.one("botAnswer")
    assert answer.messages == 3 and answer.ok and answer.detail is None
    assert reply.latency_us is not None and answer.latency_us is not None
    assert answer.latency_us - reply.latency_us >= 2 * 39_000  # two gaps of 40 ms (timer slack)
    assert client.counters.late_message == 0 and client.counters.unsolicited == 0


def test_a_message_after_the_quiet_period_is_late_not_the_next_reply(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--answer-messages", "2", "--answer-gap", "1s", "--quick-replies", "0")
    client = make_client(sim.url, answer_quiet_s=0.1)
    client.connect()
    client.configure()
    client.send_text("first")
    assert reports.one("botAnswer").messages == 1  # the bot was quiet 100 ms: answer closed
    reports.wait_for(lambda r: len(r.steps("integrity")) == 1)
    assert reports.one("integrity").error == "late_message" and client.counters.late_message == 1
    client.send_text("second")
    assert [o.messages for o in reports.steps("botAnswer")] == [1, 1]
    assert all(o.ok for o in reports.steps("botReply"))


def test_origin_allow_list(sim_with: Callable[..., SimProcess], make_client: MakeClient) -> None:
    sim = sim_with("--allowed-origin", "site.example")
    make_client(sim.url).connect()  # §1.3: no Origin is accepted
    make_client(sim.url, origin="https://site.example").connect()
    with pytest.raises(HandshakeRejected) as info:
        make_client(sim.url, origin="https://evil.example").connect()
    assert info.value.status == 403


PATCHED_FLOW = """
from gevent import monkey; monkey.patch_all()  # what Locust does, before anything else
import sys, gevent
from harness.client.guest import GuestClient
from harness.client.options import ClientOptions
rows = []
def user(i):
    c = GuestClient(sys.argv[1], ClientOptions(sys.argv[2], reply_timeout_s=10), rows.append)
    c.connect(); c.configure(); c.send_text(f"hello {i}"); c.send_typing(); c.close()
gevent.joinall([gevent.spawn(user, i) for i in range(20)], timeout=60, raise_error=True)
print(sorted({(r.step, r.ok) for r in rows}), len(rows))
"""


def test_monkey_patched_world_in_a_subprocess(sim: SimProcess) -> None:
    """Under Locust the process is monkey-patched: the same client, 20 concurrent users."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PATCHED_FLOW, f"{sim.url}?deploymentId={DEPLOYMENT}", DEPLOYMENT],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    steps = (
        "[('botAnswer', True), ('botReply', True), ('close', True), ('configureSession', True), "
    )
    assert (
        out.stdout.strip()
        == steps + "('connect', True), ('onMessage', True), ('typing', True)] 140"
    )  # 7 rows x 20 users


def test_upgrade_429_is_rate_limiting(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--limit", "conn-rate=1")
    make_client(sim.url).connect()
    throttled = make_client(sim.url, max_retry_after_s=0.01)
    with pytest.raises(HandshakeRejected) as info:
        throttled.connect()
    assert info.value.status == 429
    row = reports.steps("connect")[-1]
    assert (row.ok, row.error, row.http_status) == (False, "rate_limited", 429)
    assert throttled.counters.rate_limited == 1


def test_close_without_an_answer_is_cut_after_the_close_timeout(
    script_server: Callable[..., object], make_client: MakeClient, reports: Reports
) -> None:
    server = script_server()
    client = make_client(server.url, close_timeout_s=0.3)  # type: ignore[attr-defined]
    client.connect()
    assert client.wait_closed(0.05) is None  # still open: the bounded wait gives up
    transport = client._transport
    assert transport is not None
    transport.send_text(b"deaf")
    # "deaf-ok" is no Guest API frame: its protocol-error row says the server stopped reading
    reports.wait_for(lambda r: any(o.step == "error" for o in r))
    close = client.close()
    assert (close.code, close.initiator) == (1006, "client")
    row = reports.one("close")
    assert not row.ok and row.close_code == 1006 and row.close_initiator == "client"


def test_missing_bot_reply_is_lost_at_the_deadline(
    sim_with: Callable[..., SimProcess], make_client: MakeClient, reports: Reports
) -> None:
    sim = sim_with("--bot-latency", "fixed:1500ms")
    client = make_client(sim.url, reply_timeout_s=0.3)
    client.connect()
    client.configure()
    with pytest.raises(ResponseTimeout):
        client.send_text("anyone there?")
    echo, reply = reports.one("onMessage"), reports.one("botReply")
    assert echo.ok and not reply.ok and reply.error == "timeout"
    assert reply.latency_us is not None and reply.latency_us >= 300_000
    assert client.counters.lost == 1
    reports.wait_for(lambda r: bool(r.steps("integrity")))  # the reply comes after all
    assert [o.error for o in reports.steps("integrity")] == ["unsolicited"]
