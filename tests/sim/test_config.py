"""Pure unit tests: switches and defaults (§8.1), latency models, windows, picks, summary."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import statistics

import pytest

from harness.errors import UsageError
from harness.protocol import limits
from harness.protocol.units import Distribution, Share
from harness.sim import cli
from harness.sim.clock import MessageClock
from harness.sim.config import Limits, SimConfig
from harness.sim.faults import FaultPicker, SessionFault, UpgradeFault
from harness.sim.ratelimit import SlidingWindow
from harness.sim.server import origin_host
from harness.sim.sessions import ExpiredTokens
from harness.sim.stats import SimStats, parse_summary


def parse(*argv: str) -> SimConfig:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.build_config(parser.parse_args(list(argv)))


def test_defaults_are_the_documented_ones() -> None:
    config = parse()
    assert config.idle_timeout_s == 600 and config.max_age_s == 7200
    assert config.session_ttl_s == 259200 and config.max_frame_bytes == 131072
    assert config.bot_latency == Distribution.parse("fixed:50ms")
    assert config.quick_replies == Share(fraction=0.2) and config.bot_replies == 1
    assert config.limits == Limits(
        msg_rate=limits.MSG_RATE_PER_SESSION,
        req_rate=limits.REQ_RATE_PER_CONNECTION,
        configure_rate=limits.CONFIGURE_RATE_PER_SESSION,
        echo_rate=limits.ECHO_RATE_PER_CONNECTION,
        conn_rate=limits.CONN_RATE_PER_DEPLOYMENT,
        text_bytes=limits.TEXT_MAX_BYTES,
        attr_bytes=limits.CUSTOM_ATTRIBUTES_MAX_BYTES,
        sockets=limits.SOCKETS_PER_SESSION,
    )
    assert (config.limits.msg_rate, config.limits.echo_rate, config.limits.sockets) == (5, 2, 3)
    assert config.deployment_ids == frozenset() and config.allowed_origins == frozenset()
    assert config.faults.close_code == 1011 and config.faults.reject_status == 503
    assert config.faults.slow_delay_s == 2.0 and config.faults.after == 1


def test_switches() -> None:
    config = parse(
        "--no-limits", "--limit", "sockets=5", "--idle-timeout", "90s", "--max-age", "1h",
        "--session-ttl", "15m", "--deployment-id", "a", "--deployment-id", "b",
        "--allowed-origin", "Site.Example", "--fault-close", "every:3",
        "--bot-latency", "uniform:20ms,200ms", "--disable-feature", "typing",
        "--processes", "2",
    )  # fmt: skip
    assert config.limits == dataclasses.replace(Limits.off(), sockets=5)
    assert (config.idle_timeout_s, config.max_age_s, config.session_ttl_s) == (90, 3600, 900)
    assert config.deployment_ids == {"a", "b"} and config.allowed_origins == {"site.example"}
    assert config.faults.close == Share(every=3)
    assert not config.feature_on("typing") and config.feature_on("clear")
    assert config.conn_rate_per_process is None
    assert parse("--processes", "2").conn_rate_per_process == 500  # split across processes


@pytest.mark.parametrize(
    "argv",
    [
        ["--limit", "nope=3"],
        ["--limit", "msg-rate=0"],
        ["--limit", "msg-rate"],
        ["--bot-latency", "gaussian:5ms"],
        ["--bot-latency", "uniform:50ms,10ms"],
        ["--bot-latency", "lognormal:median=80ms"],
        ["--idle-timeout", "soon"],
        ["--fault-drop", "1.5"],
        ["--fault-close-code", "1006"],
        ["--processes", "0"],
        ["--keyfile", "k.pem"],
    ],
)
def test_bad_switches_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse(*argv)


def test_latency_models() -> None:
    rng = random.Random(1)
    assert Distribution.parse("50ms").draw(rng) == 0.05
    assert Distribution.parse("fixed:0").is_zero
    uniform = Distribution.parse("uniform:20ms,200ms")
    draws = [uniform.draw(rng) for _ in range(2000)]
    assert min(draws) >= 0.02 and max(draws) <= 0.2
    lognormal = Distribution.parse("lognormal:median=80ms,p99=900ms")
    draws = sorted(lognormal.draw(rng) for _ in range(20000))
    assert statistics.median(draws) == pytest.approx(0.08, rel=0.08)
    assert draws[int(0.99 * len(draws))] == pytest.approx(0.9, rel=0.15)


def test_call_forms_of_scripts_parse_like_the_switches() -> None:
    assert Distribution.parse("uniform(2s, 8s)").a == 2.0
    assert Distribution.parse("uniform(2s,8s)").b == 8.0
    call = Distribution.parse("lognormal(median=4s,p99=20s)")
    assert (call.kind, call.a, call.b) == ("lognormal", 4.0, 20.0)
    with pytest.raises(UsageError, match="think"):
        Distribution.parse("uniform(8s,2s)", "think")


def test_latency_draws_are_seeded() -> None:
    model = Distribution.parse("uniform:0,1s")
    first = [model.draw(random.Random("0:0:latency")) for _ in range(3)]
    second = [model.draw(random.Random("0:0:latency")) for _ in range(3)]
    assert first == second


def test_sliding_window() -> None:
    window = SlidingWindow(2, 60.0)
    assert window.acquire(0.0) == 0 and window.acquire(10.0) == 0
    assert window.acquire(10.5) == 50  # whole seconds until the oldest leaves: 60 - 10.5
    assert window.acquire(59.9) == 1  # at least 1
    assert window.acquire(60.0) == 0  # the first one left; refusals were not counted
    assert len(window) == 2


def test_fault_picks_every_n_and_drop_beats_close() -> None:
    config = parse("--fault-close", "every:2", "--fault-drop", "every:3")
    picker = FaultPicker(config)
    picks = [picker.session() for _ in range(6)]
    assert picks == [
        SessionFault.NONE,
        SessionFault.CLOSE,
        SessionFault.DROP,
        SessionFault.CLOSE,
        SessionFault.NONE,
        SessionFault.DROP,  # picked for both: drop wins
    ]


def test_fault_picks_depend_on_seed_and_process_index() -> None:
    config = parse("--fault-reject", "0.5", "--seed", "9")

    def pattern(cfg: SimConfig) -> list[UpgradeFault]:
        picker = FaultPicker(cfg)
        return [picker.upgrade() for _ in range(32)]

    assert pattern(config) == pattern(config)
    assert pattern(config) != pattern(dataclasses.replace(config, process_index=1))
    assert pattern(config) != pattern(dataclasses.replace(config, seed=10))


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://site.example", "site.example"),
        ("site.example", "site.example"),
        ("site.example:443", "site.example"),
        ("http://Site.Example:8080/x/y", "site.example"),
        ("https://[::1]:8443", "::1"),
        ("null", "null"),
    ],
)
def test_origin_host(origin: str, host: str) -> None:
    assert origin_host(origin) == host


def test_stats_merge_and_summary_roundtrip() -> None:
    a, b = SimStats(), SimStats()
    a.accepted, b.accepted = 3, 4
    a.closes_by_code["1000"] += 2
    b.closes_by_code["1000"] += 1
    b.rejected_by_status["403"] += 1
    merged = SimStats.merge([a, b])
    lines = merged.summary_lines()
    assert lines[-1].startswith("SUMMARY {")
    parsed = parse_summary("\n".join(lines))
    assert parsed is not None
    assert parsed.accepted == 7 and parsed.processes == 2
    assert parsed.accepted_per_process == [3, 4]
    assert parsed.closes_by_code == {"1000": 3} and parsed.rejected_by_status == {"403": 1}


def test_channel_time_strictly_increases() -> None:
    clock = MessageClock()
    stamps = [clock.next_ms() for _ in range(1000)]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert len(clock.hex_id()) == 32


def test_expired_tokens_are_bounded_oldest_forgotten_first() -> None:
    tokens = ExpiredTokens(limit=3)
    for name in ("a", "b", "c", "d"):
        tokens.add(name)
    assert len(tokens) == 3 and "a" not in tokens and "d" in tokens
    tokens.discard("c")
    tokens.discard("zzz")
    assert "c" not in tokens and len(tokens) == 2
