"""``harness sim``: parse the §8.1 switches into a ``SimConfig`` and run the simulator.

The first stdout line contains the URL once the simulator accepts connections (the readiness
signal used by ``harness.sim.launcher``); SIGINT/SIGTERM close every socket with 1001 and print
a summary whose last line is ``SUMMARY {json}`` (protocol.md §8.1 item 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil

from harness.errors import UsageError
from harness.protocol.units import Distribution, Share, parse_duration
from harness.sim.config import FEATURES, Faults, Limits, SimConfig, Tls
from harness.sim.rules import load_rules


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The switches of protocol.md §8.1 (durations: ms/s/m/h; SHARE: 0.05 or every:N)."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    add("--deployment-id", action="append", default=[], metavar="ID", help="allowed (repeat)")
    add("--allowed-origin", action="append", default=[], metavar="HOST", help="Origin allow-list")
    add("--bot-latency", default="fixed:50ms", metavar="SPEC", help="fixed:D, uniform:D1,D2, "
        "lognormal:median=D,p99=D (default fixed:50ms)")  # fmt: skip
    add("--answer-messages", "--bot-replies", dest="bot_replies", type=int, default=1,
        metavar="N", help="messages per answer to a guest text (default 1)")  # fmt: skip
    add("--answer-gap", default=None, metavar="SPEC", help="between an answer's messages, "
        "like --bot-latency (default: a --bot-latency draw)")  # fmt: skip
    add("--bot-rules", default=None, metavar="FILE", help="answer by the rules in this YAML "
        "file (equals/contains/regex/payload → messages, quick replies, disconnect)")  # fmt: skip
    add("--quick-replies", default="0.2", metavar="SHARE", help="share sent with quick replies")
    add("--bot-typing", action="store_true", help="Outbound Typing On before each reply")
    add("--disconnect-text", default=None, metavar="TEXT", help="guest text that ends it")
    add("--seed", type=int, default=0, help="seed of latency, quick-reply and fault draws")
    add("--processes", type=int, default=1, metavar="N", help="server processes (SO_REUSEPORT)")
    add("--no-limits", action="store_true", help="switch every limit off (frame caps stay)")
    add("--limit", action="append", default=[], metavar="NAME=VALUE|off", help="set one limit")
    add("--idle-timeout", default="600s", metavar="D", help="0 = off (default 600s)")
    add("--idle-counts-pings", action="store_true", help="pings reset the idle timer")
    add("--max-age", default="7200s", metavar="D", help="max connection age, 0 = off")
    add("--session-ttl", default="259200s", metavar="D", help="session TTL (default 72h)")
    add("--max-frame-bytes", type=int, default=131072, metavar="N", help="4011 above this")
    add("--disable-feature", action="append", default=[], choices=FEATURES, metavar="F",
        help="typing, clear or attachments (repeatable)")  # fmt: skip
    add("--certfile", default=None, help="serve wss:// with this certificate chain")
    add("--keyfile", default=None, help="private key of --certfile")
    add("--tls-self-signed", default=None, metavar="HOST", help="throwaway trustme certificate")
    add("--fault-close", default="0", metavar="SHARE", help="sessions closed after N replies")
    add("--fault-close-code", type=int, default=1011, metavar="C", help="their close code")
    add("--fault-drop", default="0", metavar="SHARE", help="sessions aborted (clients see 1006)")
    add("--fault-after", type=int, default=1, metavar="N", help="after the N-th bot reply")
    add("--fault-reject", default="0", metavar="SHARE", help="upgrades refused")
    add("--fault-reject-status", type=int, default=503, metavar="S", help="their HTTP status")
    add("--fault-slow-upgrade", default="0", metavar="SHARE", help="upgrades delayed")
    add("--fault-slow-delay", default="2s", metavar="D", help="by this much (default 2s)")
    add("--fault-reorder", default="0", metavar="SHARE", help="turns with two frames swapped")


def _limits(args: argparse.Namespace) -> Limits:
    result = Limits.off() if args.no_limits else Limits()
    for spec in args.limit:
        result = result.with_setting(spec)
    return result


def _faults(args: argparse.Namespace) -> Faults:
    if not 1000 <= args.fault_close_code <= 4999 or args.fault_close_code in (1005, 1006, 1015):
        raise UsageError(f"--fault-close-code {args.fault_close_code}: not a sendable close code")
    if not 400 <= args.fault_reject_status <= 599:
        raise UsageError(f"--fault-reject-status {args.fault_reject_status}: use a 4xx or 5xx")
    if args.fault_after < 1:
        raise UsageError("--fault-after must be >= 1")
    return Faults(
        close=Share.parse(args.fault_close),
        close_code=args.fault_close_code,
        drop=Share.parse(args.fault_drop),
        after=args.fault_after,
        reject=Share.parse(args.fault_reject),
        reject_status=args.fault_reject_status,
        slow_upgrade=Share.parse(args.fault_slow_upgrade),
        slow_delay_s=parse_duration(args.fault_slow_delay),
        reorder=Share.parse(args.fault_reorder),
    )


def _tls(args: argparse.Namespace) -> Tls:
    if args.tls_self_signed and (args.certfile or args.keyfile):
        raise UsageError("use either --certfile/--keyfile or --tls-self-signed, not both")
    if bool(args.certfile) != bool(args.keyfile) and not args.certfile:
        raise UsageError("--keyfile needs --certfile")
    return Tls(certfile=args.certfile, keyfile=args.keyfile, self_signed_host=args.tls_self_signed)


def build_config(args: argparse.Namespace) -> SimConfig:
    """Turn parsed switches into a frozen ``SimConfig``.

    Raises:
        UsageError: a switch value is invalid (one-line message).
    """
    if args.processes < 1:
        raise UsageError("--processes must be >= 1")
    if args.bot_replies < 0:
        raise UsageError("--answer-messages must be >= 0")
    if args.max_frame_bytes < 1:
        raise UsageError("--max-frame-bytes must be >= 1")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port")
    return SimConfig(
        host=args.host,
        port=args.port,
        deployment_ids=frozenset(args.deployment_id),
        allowed_origins=frozenset(o.strip().lower() for o in args.allowed_origin),
        bot_latency=Distribution.parse(args.bot_latency),
        bot_replies=args.bot_replies,
        answer_gap=Distribution.parse(args.answer_gap, "--answer-gap") if args.answer_gap else None,
        bot_rules=load_rules(args.bot_rules) if args.bot_rules else None,
        quick_replies=Share.parse(args.quick_replies),
        bot_typing=args.bot_typing,
        disconnect_text=args.disconnect_text,
        seed=args.seed,
        processes=args.processes,
        limits=_limits(args),
        idle_timeout_s=parse_duration(args.idle_timeout),
        idle_counts_pings=args.idle_counts_pings,
        max_age_s=parse_duration(args.max_age),
        session_ttl_s=parse_duration(args.session_ttl),
        max_frame_bytes=args.max_frame_bytes,
        disabled_features=frozenset(args.disable_feature),
        tls=_tls(args),
        faults=_faults(args),
    )


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; print the summary; exit 0."""
    from harness.sim import multiproc, tls

    config = build_config(args)
    logging.getLogger("websockets").setLevel(logging.WARNING)  # no per-connection lines
    tls_dir: str | None = None
    if config.tls.self_signed_host:
        self_signed = tls.make_self_signed(config.tls)
        tls_dir = os.path.dirname(self_signed.ca_file or "")
        config = dataclasses.replace(config, tls=self_signed)
    try:
        stats = multiproc.run(config, print_line=lambda line: print(line, flush=True))
    finally:
        if tls_dir:
            shutil.rmtree(tls_dir, ignore_errors=True)
    for line in stats.summary_lines():
        print(line, flush=True)
    return 0
