"""The simulator's configuration: one frozen dataclass tree, built once by the CLI.

Defaults are the documented limits (protocol.md §5) and the simulator choices of §8.1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from harness.errors import UsageError
from harness.protocol import limits as documented
from harness.protocol.units import Distribution, Share
from harness.sim.rules import BotRules

#: Features that ``--disable-feature`` may switch off (protocol.md §8.1).
FEATURES = ("typing", "clear", "attachments")


@dataclass(frozen=True, slots=True)
class Limits:
    """The §5 limits the simulator enforces; ``None`` means off (protocol.md §8.1 ``--limit``)."""

    msg_rate: int | None = documented.MSG_RATE_PER_SESSION
    req_rate: int | None = documented.REQ_RATE_PER_CONNECTION
    configure_rate: int | None = documented.CONFIGURE_RATE_PER_SESSION
    echo_rate: int | None = documented.ECHO_RATE_PER_CONNECTION
    conn_rate: int | None = documented.CONN_RATE_PER_DEPLOYMENT
    text_bytes: int | None = documented.TEXT_MAX_BYTES
    attr_bytes: int | None = documented.CUSTOM_ATTRIBUTES_MAX_BYTES
    sockets: int | None = documented.SOCKETS_PER_SESSION

    @classmethod
    def off(cls) -> Limits:
        """Every limit off (``--no-limits``); the frame caps stay (§8.1)."""
        return cls(*([None] * len(dataclasses.fields(cls))))

    def with_setting(self, spec: str) -> Limits:
        """Apply one ``NAME=VALUE|off`` setting, e.g. ``echo-rate=2`` or ``sockets=off``.

        Raises:
            UsageError: unknown name, or a value that is not a positive integer or ``off``.
        """
        name, sep, raw = spec.partition("=")
        attr = name.strip().replace("-", "_")
        if not sep or attr not in {f.name for f in dataclasses.fields(self)}:
            known = ", ".join(f.name.replace("_", "-") for f in dataclasses.fields(self))
            raise UsageError(f"--limit {spec!r}: use NAME=VALUE|off with NAME one of {known}")
        raw = raw.strip().lower()
        if raw == "off":
            return dataclasses.replace(self, **{attr: None})
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"--limit {spec!r}: value must be an integer or off") from None
        if value < 1:
            raise UsageError(f"--limit {spec!r}: value must be >= 1 (or off)")
        return dataclasses.replace(self, **{attr: value})


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault injection switches (protocol.md §8.1, items 3 and 27)."""

    close: Share = Share()
    close_code: int = 1011
    drop: Share = Share()
    after: int = 1
    reject: Share = Share()
    reject_status: int = 503
    slow_upgrade: Share = Share()
    slow_delay_s: float = 2.0
    reorder: Share = Share()


@dataclass(frozen=True, slots=True)
class Tls:
    """``--certfile/--keyfile`` or ``--tls-self-signed HOST`` (protocol.md §8.1)."""

    certfile: str | None = None
    keyfile: str | None = None
    self_signed_host: str | None = None
    #: CA file written by the self-signed mode; filled in before the workers start.
    ca_file: str | None = None

    @property
    def enabled(self) -> bool:
        return self.certfile is not None or self.self_signed_host is not None


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything one simulator process needs; immutable after parsing."""

    host: str = "127.0.0.1"
    port: int = 0
    deployment_ids: frozenset[str] = frozenset()  # empty = accept any
    allowed_origins: frozenset[str] = frozenset()  # empty = all origins pass (§1.3)
    bot_latency: Distribution = field(default_factory=lambda: Distribution.parse("fixed:50ms"))
    bot_replies: int = 1  # --answer-messages: messages per answer to a guest text
    answer_gap: Distribution | None = None  # between an answer's messages; None = bot_latency
    bot_rules: BotRules | None = None  # --bot-rules: answers by rule instead of "You said"
    quick_replies: Share = Share(fraction=0.2)
    bot_typing: bool = False
    disconnect_text: str | None = None
    seed: int = 0
    processes: int = 1
    process_index: int = 0
    limits: Limits = Limits()
    idle_timeout_s: float = documented.SIM_IDLE_TIMEOUT_S
    idle_counts_pings: bool = False
    max_age_s: float = documented.SIM_MAX_CONNECTION_AGE_S
    session_ttl_s: float = float(documented.SESSION_TTL_S)
    max_frame_bytes: int = documented.SIM_MAX_FRAME_BYTES
    disabled_features: frozenset[str] = frozenset()
    tls: Tls = Tls()
    faults: Faults = Faults()

    def feature_on(self, name: str) -> bool:
        return name not in self.disabled_features

    @property
    def answer_gap_is_zero(self) -> bool:
        gap = self.answer_gap
        return gap.is_zero if gap is not None else self.bot_latency.is_zero

    @property
    def conn_rate_per_process(self) -> int | None:
        """``conn-rate`` is split across processes (protocol.md §8.1 item 4)."""
        rate = self.limits.conn_rate
        if rate is None:
            return None
        return max(1, rate // max(1, self.processes))
