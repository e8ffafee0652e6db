"""WebSocket close codes and Guest API error codes, as data (protocol.md §4 and §6).

Close codes and error codes are different namespaces: error codes 4000-4029 arrive inside
``class:"string"`` frames, close codes 4000-4999 arrive in close frames (§6).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple


class CloseCode(enum.IntEnum):
    """RFC 6455 close codes that a Guest API client can meet (protocol.md §6)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


class CodeInfo(NamedTuple):
    """Name, meaning and the likely cause → fix of one close code (protocol.md §6)."""

    name: str
    meaning: str
    advice: str


CLOSE_CODE_INFO: dict[int, CodeInfo] = {
    1000: CodeInfo(
        "Normal Closure",
        "intended close",
        "expected; if unexpected and preceded by ConnectionClosedEvent, more than 3 sockets "
        "share a token: use one token per user",
    ),
    1001: CodeInfo(
        "Going Away",
        "endpoint leaving (shutdown, redeploy, idle timeout or max connection age)",
        "resume with the same token; if it clusters at one idle time or age, heartbeat or "
        "reconnect early",
    ),
    1002: CodeInfo("Protocol Error", "RFC 6455 violation", "update the library; bypass the proxy"),
    1003: CodeInfo("Unsupported Data", "data type refused", "send JSON text frames only"),
    1005: CodeInfo(
        "No Status Received",
        "close frame without a code (local)",
        "treat as a server close; check proxies",
    ),
    1006: CodeInfo(
        "Abnormal Closure",
        "no close frame (local): refused upgrade in browsers, TCP reset, proxy/NAT idle cut, "
        "killed process",
        "check the HTTP status of the upgrade (deploymentId, region, Origin); heartbeat; "
        "check proxies",
    ),
    1007: CodeInfo("Invalid Payload", "text not UTF-8", "encode UTF-8"),
    1008: CodeInfo("Policy Violation", "generic refusal", "check Origin, deployment and limits"),
    1009: CodeInfo(
        "Message Too Big",
        "frame over the size limit",
        "text <= 4096 bytes, custom attributes <= 2048 bytes",
    ),
    1010: CodeInfo("Mandatory Extension", "extension not negotiated", "read the reason"),
    1011: CodeInfo(
        "Internal Error",
        "server fault; a burst means an incident or overload",
        "back off and resume; report bursts",
    ),
    1012: CodeInfo("Service Restart", "server restarting", "reconnect after a short random delay"),
    1013: CodeInfo(
        "Try Again Later",
        "overloaded or throttled",
        "back off; keep new connections under 1000/min",
    ),
    1014: CodeInfo("Bad Gateway", "gateway got an invalid response", "read the reason"),
    1015: CodeInfo(
        "TLS Handshake",
        "TLS failed (local)",
        "trust the proxy CA (CA bundle); use the exact webmessaging.<domain> host",
    ),
}

#: Codes that libraries report locally and that never travel in a close frame (§6).
LOCAL_ONLY_CLOSE_CODES = frozenset({1005, 1006, 1015})

#: Closes that are not failures from a guest's point of view.
CLEAN_CLOSE_CODES = frozenset({1000, 1001})


def describe_close_code(code: int) -> CodeInfo:
    """Return name, meaning and advice for any close code, including unknown ones."""
    info = CLOSE_CODE_INFO.get(code)
    if info is not None:
        return info
    if 3000 <= code <= 3999:
        return CodeInfo("Registered", "registered (library/framework) code", "read the reason")
    if 4000 <= code <= 4999:
        return CodeInfo(
            "Application",
            "private-use application code; none documented for Genesys",
            "read the reason; these are not Guest API error codes",
        )
    return CodeInfo("Unknown", "not a standard close code", "read the reason")


@dataclass(frozen=True, slots=True)
class Close:
    """A close code and reason, plus who closed first (``client``, ``server`` or ``none``)."""

    code: int
    reason: str = ""
    initiator: str = "server"

    @classmethod
    def parse(cls, payload: bytes, initiator: str = "server") -> Close:
        """Parse a close frame payload (RFC 6455 §5.5.1); an empty payload means 1005."""
        if len(payload) == 0:
            return cls(CloseCode.NO_STATUS_RCVD, "", initiator)
        if len(payload) == 1:
            return cls(CloseCode.PROTOCOL_ERROR, "1-byte close payload", initiator)
        (code,) = struct.unpack("!H", payload[:2])
        reason = payload[2:].decode("utf-8", "replace")
        return cls(code, reason, initiator)

    @classmethod
    def abnormal(cls, reason: str = "") -> Close:
        """The close recorded when the connection ended without any close frame (1006)."""
        return cls(CloseCode.ABNORMAL_CLOSURE, reason, "none")

    def serialize(self) -> bytes:
        """Encode as a close frame payload."""
        return struct.pack("!H", self.code) + self.reason.encode("utf-8")

    @property
    def clean(self) -> bool:
        """True for 1000 and 1001: closes that are not failures."""
        return self.code in CLEAN_CLOSE_CODES

    def __str__(self) -> str:
        info = describe_close_code(self.code)
        text = f"{self.code} ({info.name.lower()}: {info.meaning})"
        if self.reason:
            text += f" reason={self.reason!r}"
        return text


class ErrorScope(enum.StrEnum):
    """Whether an error ends the session (``fatal``) or only the request (protocol.md §4.1)."""

    FATAL = "fatal"
    FATAL_IN_CONFIGURE = "fatal in configure"
    PER_REQUEST = "per request"


ERROR_CODE_INFO: dict[int, tuple[str, ErrorScope]] = {
    400: ("bad request", ErrorScope.FATAL_IN_CONFIGURE),
    401: ("unauthorized", ErrorScope.FATAL),
    403: ("forbidden / feature off", ErrorScope.FATAL_IN_CONFIGURE),
    404: ("not found", ErrorScope.FATAL),
    408: ("timeout", ErrorScope.FATAL),
    409: ("conversation is read-only", ErrorScope.PER_REQUEST),
    429: ("rate limited", ErrorScope.PER_REQUEST),
    4000: ("feature unavailable (uploads off)", ErrorScope.PER_REQUEST),
    4001: ("file type not supported", ErrorScope.PER_REQUEST),
    4002: ("file too large", ErrorScope.PER_REQUEST),
    4003: ("invalid file content", ErrorScope.PER_REQUEST),
    4004: ("invalid file name", ErrorScope.PER_REQUEST),
    4005: ("file name too long", ErrorScope.PER_REQUEST),
    4006: ("session expired", ErrorScope.FATAL),
    4007: ("session not found", ErrorScope.FATAL),
    4008: ("attachment expired", ErrorScope.PER_REQUEST),
    4009: ("attachment not found", ErrorScope.PER_REQUEST),
    4010: ("attachment not uploaded", ErrorScope.PER_REQUEST),
    4011: ("message too long", ErrorScope.PER_REQUEST),
    4013: ("custom attributes too large", ErrorScope.PER_REQUEST),
    4017: ("cannot downgrade to unauthenticated", ErrorScope.FATAL),
    4020: ("missing parameter", ErrorScope.FATAL_IN_CONFIGURE),
    4029: ("rate too high", ErrorScope.PER_REQUEST),
    4102: ("file size zero", ErrorScope.PER_REQUEST),
    5000: ("unexpected error", ErrorScope.FATAL),
}


def describe_error_code(code: int) -> str:
    """Meaning of a Guest API error code; parsers accept any integer (§4.2)."""
    info = ERROR_CODE_INFO.get(code)
    return info[0] if info else "undocumented error code"


def error_is_fatal(code: int, *, during_configure: bool) -> bool:
    """True when an error code ends the session or connect attempt (protocol.md §4.1)."""
    info = ERROR_CODE_INFO.get(code)
    if info is None:
        return during_configure
    scope = info[1]
    return scope is ErrorScope.FATAL or (
        scope is ErrorScope.FATAL_IN_CONFIGURE and during_configure
    )
