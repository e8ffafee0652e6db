"""``harness probe``: one guest, one conversation turn, every step explained.

A browser shows a refused upgrade as a bare close 1006 (protocol.md §1.4); this command makes
one connection and says exactly what happened at each step, with the likely cause from the
silent-drop table (§9). It sends a handful of frames, far inside every limit; a non-loopback
target still needs ``--allow-remote-target`` like any other command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import HandshakeRejected, HarnessError, ServiceError, UsageError
from harness.protocol.refusals import forbidden_cause
from harness.protocol.units import parse_duration

#: HTTP status (or error category) of a failed connect → likely cause and fix (protocol.md
#: §9); a 403 is read from its body instead (connect_hint).
CONNECT_HINTS: dict[str, str] = {
    "http_404": "wrong host or path: use wss://webmessaging.<domain>/v1 "
    "(docs/troubleshooting.md#wrong-host-or-path)",
    "http_429": "new-connection rate limit, > 1000/min per deployment: ramp slower "
    "(docs/troubleshooting.md#rate-limiting-429-1013)",
    "dns": "the host name does not resolve: check the region's domain "
    "(docs/guest-api.md#region-hosts)",
    "tls": "TLS failed: trust the proxy CA with --ca-file, or use the exact host "
    "(docs/troubleshooting.md#tls-handshake-failures)",
    "refused": "nothing listens there: check host and port",
    "timeout": "no answer in time: a firewall, proxy or the wrong host",
}


def connect_hint(exc: ServiceError) -> str:
    """The likely cause and fix of a failed connect; a 403 by what its body names."""
    if isinstance(exc, HandshakeRejected) and exc.status == 403:
        cause = forbidden_cause(exc.body)
        return f"{cause.cause}: {cause.fix} ({cause.docs})"
    return CONNECT_HINTS.get(exc.category, "")


@dataclass(frozen=True, slots=True)
class ProbeLine:
    step: str
    ok: bool
    text: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="ws:// or wss:// Guest API URL (…/v1?deploymentId=…)")
    target.add_argument("--region", help="Genesys Cloud region (docs/guest-api.md#region-hosts)")
    parser.add_argument("--deployment-id", help="Messenger deployment id (needed with --region)")
    parser.add_argument("--origin", help="Origin header to send (default: none, like most SDKs)")
    parser.add_argument("--ca-file", help="extra CA bundle (TLS-intercepting proxies)")
    parser.add_argument("--insecure", action="store_true", help="skip certificate checks")
    parser.add_argument("--message", default="Hello from harness probe", help="guest text")
    parser.add_argument("--no-message", action="store_true", help="skip the message turn")
    parser.add_argument("--timeout", default="15s", help="per-step deadline (default 15s)")
    parser.add_argument(
        "--allow-remote-target", action="store_true", help="permit a non-loopback host"
    )


def _url(args: argparse.Namespace) -> str:
    from harness.loadgen.flow import guest_url
    from harness.protocol.regions import region_url

    if args.region:
        if not args.deployment_id:
            raise UsageError("--region needs --deployment-id")
        url: str = region_url(args.region, args.deployment_id)
        return url
    if "deploymentId=" not in args.url and not args.deployment_id:
        raise UsageError("the URL has no deploymentId: add ?deploymentId=… or --deployment-id")
    built: str = guest_url(args.url, args.deployment_id or "")
    return built


def _step(lines: list[ProbeLine], step: str, action: Callable[[], str]) -> bool:
    try:
        lines.append(ProbeLine(step, True, action()))
    except ServiceError as exc:  # HandshakeRejected included: its category is http_<status>
        hint = connect_hint(exc) if step == "connect" else ""
        lines.append(ProbeLine(step, False, f"{exc}" + (f"\n    likely: {hint}" if hint else "")))
        return False
    return True


def probe(url: str, args: argparse.Namespace) -> list[ProbeLine]:
    """Run the probe against ``url`` and return one line per step."""
    from urllib.parse import parse_qs, urlsplit

    from harness.client.guest import GuestClient
    from harness.client.options import ClientOptions

    timeout = parse_duration(args.timeout)
    deployment = parse_qs(urlsplit(url).query).get("deploymentId", [""])[0] or "unknown"
    options = ClientOptions(
        deployment_id=deployment,
        origin=args.origin,
        tcp_timeout_s=timeout,
        tls_timeout_s=timeout,
        upgrade_timeout_s=timeout,
        reply_timeout_s=timeout,
        ca_file=args.ca_file,
        insecure=args.insecure,
        heartbeat_interval_s=0,
    )
    timings: dict[str, float] = {}

    def keep(outcome: object) -> None:
        step, latency = getattr(outcome, "step", ""), getattr(outcome, "latency_us", None)
        if latency is not None:
            timings[step] = latency / 1000.0

    client = GuestClient(url, options, keep)
    lines: list[ProbeLine] = []

    def connect() -> str:
        client.connect()
        return _ms("HTTP 101", timings, "connect")

    def echo() -> str:
        client.echo()
        return _ms("answered", timings, "echo")

    def configure() -> str:
        response = client.configure()
        state = "new session" if response.new_session else "resumed session"
        ro = ", READ-ONLY" if response.read_only else ""
        return _ms(f"{state}{ro}, TTL {response.duration_seconds} s", timings, "configureSession")

    def turn() -> str:
        client.send_text(args.message)
        return (
            f"echo {timings.get('onMessage', float('nan')):.1f} ms, first bot reply "
            f"{timings.get('botReply', float('nan')):.1f} ms"
        )

    if not _step(lines, "connect", connect):
        return lines
    ok = _step(lines, "configureSession", configure) and _step(lines, "echo", echo)
    if ok and not args.no_message:
        _step(lines, "onMessage", turn)
    close = client.close() if not client.closed else client.close_info
    if close is not None:
        lines.append(ProbeLine("close", close.clean, str(close)))
    return lines


def _ms(text: str, timings: dict[str, float], step: str) -> str:
    latency = timings.get(step)
    return f"{text} in {latency:.1f} ms" if latency is not None else text


def run(args: argparse.Namespace) -> int:
    from harness.loadgen.safety import is_loopback, target_hostname

    url = _url(args)
    if not is_loopback(url) and not args.allow_remote_target:
        raise UsageError(
            f"refusing to contact non-loopback host {target_hostname(url)!r}: "
            "pass --allow-remote-target to opt in"
        )
    print(f"probe {url.split('?')[0]}")
    try:
        lines = probe(url, args)
    except HarnessError as exc:
        print(f"  probe stopped: {exc}")
        return 1
    for line in lines:
        print(f"  {'ok  ' if line.ok else 'FAIL'} {line.step:<17} {line.text}")
    return 0 if all(line.ok for line in lines) else 1
