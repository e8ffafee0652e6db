"""Frozen client configuration (no module-global config: style.md "Avoid")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.client.sources import SourceAddresses
from harness.client.transport import TransportOptions
from harness.errors import UsageError
from harness.protocol.limits import MIN_HEARTBEAT_INTERVAL_S


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How one GuestClient connects, waits and paces itself.

    Every wait has a deadline: the socket timeouts bound each connect phase and each read, the
    ``*_timeout_s`` below bound each awaited frame. ``heartbeat_interval_s`` must be at least
    30 s (the echo limit is 2 per minute per connection, protocol.md §2.4) unless
    ``allow_fast_heartbeat`` says the target runs without that limit (a local ``--no-limits``
    simulator).
    """

    deployment_id: str
    origin: str | None = None  # None: send no Origin header (protocol.md §1.3)
    headers: Mapping[str, str] = field(default_factory=dict)  # extra upgrade headers
    tcp_timeout_s: float = 10.0  # DNS + TCP connect
    tls_timeout_s: float = 10.0  # TLS handshake
    upgrade_timeout_s: float = 10.0  # HTTP upgrade, request to 101
    read_timeout_s: float = 30.0  # socket-level; an idle read just loops, sends fail
    reply_timeout_s: float = 30.0  # awaiting an echo, a bot reply or a response
    close_timeout_s: float = 5.0  # client close: wait this long for the server's close frame
    ca_file: str | None = None  # extra CA bundle; None = the system store
    insecure: bool = False  # skip certificate and host-name checks (explicit opt-in)
    heartbeat_interval_s: float = 60.0  # 0 = off
    allow_fast_heartbeat: bool = False
    max_retry_after_s: float = 10.0  # a 429's retryAfter is honoured up to this bound
    close_on_connection_closed_event: bool = True  # protocol.md §3.2: clients close with 1000
    send_custom_message_id: bool = False  # §7.3 rule 2: also tag texts with customMessageId
    #: a bot answer is every outbound message after a send until the bot is quiet this long
    #: (0 = the first message is the whole answer); see harness.protocol.session.Pending
    answer_quiet_s: float = 0.5
    answer_ends_on_quick_replies: bool = True  # a quick-reply/card message ends it at once
    keep_inbox: bool = False  # keep every outbound message for content checks (scripts)
    #: local addresses connections are spread over (beyond one address's ephemeral ports)
    sources: SourceAddresses | None = None

    def __post_init__(self) -> None:
        for name in ("tcp_timeout_s", "tls_timeout_s", "upgrade_timeout_s", "read_timeout_s"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("reply_timeout_s", "close_timeout_s"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.answer_quiet_s < 0:
            raise UsageError(f"answer_quiet_s must be >= 0, got {self.answer_quiet_s!r}")
        if self.max_retry_after_s < 0:
            raise UsageError("max_retry_after_s must be >= 0")
        hb = self.heartbeat_interval_s
        if hb < 0 or (0 < hb < MIN_HEARTBEAT_INTERVAL_S and not self.allow_fast_heartbeat):
            raise UsageError(
                f"heartbeat_interval_s must be 0 (off) or >= {MIN_HEARTBEAT_INTERVAL_S:g} s "
                f"(echo limit 2/min, docs/guest-api.md#limits), got {hb:g}; "
                "set allow_fast_heartbeat only against a target without that limit"
            )
        if not self.deployment_id:
            raise UsageError("deployment_id must not be empty")

    def transport(self) -> TransportOptions:
        """The connect-time part, for :class:`harness.client.transport.Transport`."""
        return TransportOptions(
            origin=self.origin,
            headers=self.headers,
            tcp_timeout_s=self.tcp_timeout_s,
            tls_timeout_s=self.tls_timeout_s,
            upgrade_timeout_s=self.upgrade_timeout_s,
            read_timeout_s=self.read_timeout_s,
            ca_file=self.ca_file,
            insecure=self.insecure,
            sources=self.sources,
        )
