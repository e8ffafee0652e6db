"""The harness's one exception tree.

Blame is split the h11 way: a ``UsageError`` means our own scenario or configuration misused
the API (stop loudly, it is a bug or a typo); a ``ServiceError`` means the system under test
misbehaved, and that is what counts as a failure in the statistics::

    HarnessError
    ├── UsageError                 our side: bad flag, bad config, illegal call order
    │   └── InvalidState           a send that the guest session state does not allow
    ├── RateLimited                429 / 4029 with retryAfter: paced, not a failure
    └── ServiceError               the server (or the network) misbehaved
        ├── ConnectError           TCP, DNS, TLS or upgrade failure (``category`` says which)
        │   └── HandshakeRejected  HTTP status other than 101, with headers and body kept
        ├── ProtocolViolation      a frame we cannot accept (bad JSON, unknown class, ...)
        ├── ServerErrorFrame       a ``class:"string"`` error answer (code + body)
        ├── UnexpectedClose        the socket closed while we still expected something
        └── ResponseTimeout        a deadline passed without the awaited frame

This module is pure: it imports nothing but the standard library, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.protocol.codes import Close


class HarnessError(Exception):
    """Root of every exception the harness raises on purpose."""


class UsageError(HarnessError):
    """Our scenario or configuration is wrong; this is never the server's fault."""


class InvalidState(UsageError):
    """A send was attempted that the current guest session state does not allow."""


class RateLimited(HarnessError):
    """The server answered 429 / 4029; the request was refused, not failed (protocol.md §4.3)."""

    def __init__(self, retry_after_s: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after_s:g} s)")
        self.retry_after_s = retry_after_s


class ServiceError(HarnessError):
    """The system under test misbehaved. ``category`` is the raw-event error category."""

    category: str = "service"


class ConnectError(ServiceError):
    """The connection could not be established (DNS, TCP, TLS, upgrade)."""

    def __init__(self, message: str, category: str = "connect") -> None:
        super().__init__(message)
        self.category = category


class HandshakeRejected(ConnectError):
    """The HTTP upgrade was answered with a status other than 101 (protocol.md §1.4).

    A browser shows this only as close 1006; we keep the status, headers and body.
    """

    def __init__(
        self, status: int, headers: Mapping[str, str] | None = None, body: bytes | str = b""
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        first_line = self.body.strip().splitlines()[0][:200] if self.body.strip() else ""
        super().__init__(
            f"upgrade rejected with HTTP {status}" + (f": {first_line}" if first_line else ""),
            category=f"http_{status}",
        )


class ProtocolViolation(ServiceError):
    """A frame that does not follow the Guest API (protocol.md §3).

    When raised by the client-side decoder of the simulator, ``code`` is the Guest API error
    code the server answers with (protocol.md §8.3), and ``action``, ``token`` and
    ``tracing_id`` are whatever could be read leniently from the frame.
    """

    category = "protocol"

    def __init__(
        self,
        message: str,
        *,
        code: int = 400,
        action: str | None = None,
        token: str | None = None,
        tracing_id: str | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.action = action
        self.token = token
        self.tracing_id = tracing_id
        self.raw = raw


class ServerErrorFrame(ServiceError):
    """The server answered a request with a ``class:"string"`` error frame (protocol.md §4)."""

    def __init__(self, code: int, body: str, tracing_id: str | None = None) -> None:
        super().__init__(f"server error {code}: {body[:200]}")
        self.code = code
        self.body = body
        self.tracing_id = tracing_id
        self.category = f"server_error_{code}"


class UnexpectedClose(ServiceError):
    """The socket closed while a reply was still awaited."""

    category = "closed"

    def __init__(self, close: Close) -> None:
        super().__init__(str(close))
        self.close = close


class ResponseTimeout(ServiceError):
    """An awaited frame did not arrive before its deadline."""

    category = "timeout"
