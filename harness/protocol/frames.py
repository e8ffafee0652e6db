"""Typed Guest API frames (protocol.md §2 client actions, §3 server frames).

Every frame is a frozen, slotted, keyword-only dataclass with snake_case fields; the JSON keys
are their camelCase forms. Optional fields default to ``None`` and are left out on the wire, so a
frame parsed from the canonical fixtures serialises back to the same JSON object.
Encoding and decoding live in :mod:`harness.protocol.codec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

JsonObject = Mapping[str, Any]

RESPONSE = "response"
MESSAGE = "message"

INBOUND = "Inbound"
OUTBOUND = "Outbound"
MESSAGE_TYPES = frozenset({"Text", "Structured", "Event"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """The ``message`` object of ``onMessage`` and ``echo`` (§2.3)."""

    type: str = "Text"
    text: str | None = None
    content: tuple[JsonObject, ...] | None = None
    events: tuple[JsonObject, ...] | None = None
    metadata: Mapping[str, str] | None = None
    channel: JsonObject | None = None


# --- client → server actions (§2) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigureSession:
    """§2.1: must be the first frame on every new socket."""

    ACTION: ClassVar[str] = "configureSession"
    token: str
    deployment_id: str
    tracing_id: str | None = None
    start_new: bool | None = None
    journey_context: JsonObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigureAuthenticatedSession:
    """§2.2: out of guest scope; ``code`` is an auth JWT and is never shown in ``repr``."""

    ACTION: ClassVar[str] = "configureAuthenticatedSession"
    token: str
    deployment_id: str
    code: str = field(repr=False)
    tracing_id: str | None = None
    start_new: bool | None = None
    journey_context: JsonObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OnMessage:
    """§2.3: ``channel`` is the top-level placement of custom attributes."""

    ACTION: ClassVar[str] = "onMessage"
    token: str
    message: Message
    tracing_id: str | None = None
    channel: JsonObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Echo:
    """§2.4: the health check; at most 2 per minute per connection."""

    ACTION: ClassVar[str] = "echo"
    token: str | None = None
    tracing_id: str | None = None
    message: Message | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetJwt:
    """§2.5."""

    ACTION: ClassVar[str] = "getJwt"
    token: str
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConfiguration:
    """§2.5 (schema only)."""

    ACTION: ClassVar[str] = "getConfiguration"
    token: str | None = None
    deployment_id: str | None = None
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OnAttachment:
    """§2.6: asks for a presigned upload URL."""

    ACTION: ClassVar[str] = "onAttachment"
    token: str
    file_name: str
    file_type: str
    file_size: int
    tracing_id: str | None = None
    attachment_id: str | None = None
    file_md5: str | None = None
    errors_as_json: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAttachment:
    """§2.6."""

    ACTION: ClassVar[str] = "getAttachment"
    token: str
    attachment_id: str
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteAttachment:
    """§2.6: only works on files not yet sent."""

    ACTION: ClassVar[str] = "deleteAttachment"
    token: str
    attachment_id: str
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseSession:
    """§2.7: ``closeAllConnections`` is required."""

    ACTION: ClassVar[str] = "closeSession"
    token: str
    close_all_connections: bool
    tracing_id: str | None = None


ClientAction = (
    ConfigureSession
    | ConfigureAuthenticatedSession
    | OnMessage
    | Echo
    | GetJwt
    | GetConfiguration
    | OnAttachment
    | GetAttachment
    | DeleteAttachment
    | CloseSession
)

CLIENT_ACTIONS: dict[str, type[ClientAction]] = {
    cls.ACTION: cls
    for cls in (
        ConfigureSession,
        ConfigureAuthenticatedSession,
        OnMessage,
        Echo,
        GetJwt,
        GetConfiguration,
        OnAttachment,
        GetAttachment,
        DeleteAttachment,
        CloseSession,
    )
}

# --- server → client frames (§3) --------------------------------------------------------------
# Envelope fields: ``kind`` is the JSON ``type`` (response | message), then ``code`` and
# ``tracing_id``. The remaining fields are the body's.


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionResponse:
    """§3.3: the answer to ``configure*`` and ``closeSession``."""

    CLASS: ClassVar[str] = "SessionResponse"
    kind: str = RESPONSE
    code: int = 200
    tracing_id: str | None = None
    connected: bool
    new_session: bool | None = None
    read_only: bool | None = None
    cleared_existing_session: bool | None = None
    max_custom_data_bytes: int | None = None
    allowed_media: JsonObject | None = None
    blocked_extensions: tuple[str, ...] | None = None
    duration_seconds: int | None = None
    expiration_date: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StructuredMessage:
    """§3.4: inbound echoes, the echo reply, bot/agent messages and outbound events."""

    CLASS: ClassVar[str] = "StructuredMessage"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    direction: str
    type: str
    id: str | None = None
    text: str | None = None
    channel: JsonObject | None = None
    content: tuple[JsonObject, ...] | None = None
    events: tuple[JsonObject, ...] | None = None
    metadata: Mapping[str, Any] | None = None
    originating_entity: str | None = None

    @property
    def channel_time(self) -> str | None:
        """``channel.time`` (ISO-8601, ms, ``Z``) when present and a string."""
        if self.channel is None:
            return None
        value = self.channel.get("time")
        return value if isinstance(value, str) else None

    @property
    def is_bot_reply(self) -> bool:
        """§7.3 rule 4: an Outbound ``Text`` or ``Structured`` message (events do not count)."""
        return self.direction == OUTBOUND and self.type in ("Text", "Structured")

    @property
    def read_only_disconnect(self) -> bool:
        """§3.4: an Outbound Presence Disconnect with ``metadata.readOnly == "true"``."""
        if self.direction != OUTBOUND or self.type != "Event" or not self.events:
            return False
        if self.metadata is None or self.metadata.get("readOnly") != "true":
            return False
        return any(_presence_type(event) == "Disconnect" for event in self.events)


def _presence_type(event: JsonObject) -> str | None:
    if event.get("eventType") != "Presence":
        return None
    presence = event.get("presence")
    return presence.get("type") if isinstance(presence, Mapping) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorResponse:
    """§4.1: a ``class:"string"`` error; match on ``code``, the body is free text."""

    CLASS: ClassVar[str] = "string"
    kind: str = RESPONSE
    code: int
    tracing_id: str | None = None
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TooManyRequests:
    """§4.3: the answer to every rate limit; wait ``retry_after`` seconds."""

    CLASS: ClassVar[str] = "TooManyRequestsErrorMessage"
    kind: str = RESPONSE
    code: int = 429
    tracing_id: str | None = None
    retry_after: int
    error_code: int = 4029
    error_message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtResponse:
    """§2.5: ``jwt`` is a bearer token and never appears in ``repr`` or logs."""

    CLASS: ClassVar[str] = "JwtResponse"
    kind: str = RESPONSE
    code: int = 200
    tracing_id: str | None = None
    jwt: str = field(repr=False)
    exp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PresignedUrlResponse:
    """§2.6: the upload (or download) URL for an attachment."""

    CLASS: ClassVar[str] = "PresignedUrlResponse"
    kind: str = RESPONSE
    code: int = 200
    tracing_id: str | None = None
    attachment_id: str | None = None
    headers: Mapping[str, str] | None = None
    url: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    file_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentDeletedResponse:
    """§2.6."""

    CLASS: ClassVar[str] = "AttachmentDeletedResponse"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    attachment_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadSuccessEvent:
    """§2.6 step 3."""

    CLASS: ClassVar[str] = "UploadSuccessEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    attachment_id: str | None = None
    download_url: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadFailureEvent:
    """§2.6 step 3."""

    CLASS: ClassVar[str] = "UploadFailureEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    attachment_id: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateUrlError:
    """§2.6: an upload refusal when the request had ``errorsAsJson:true``."""

    CLASS: ClassVar[str] = "GenerateUrlError"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    attachment_id: str | None = None
    error_code: int | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosedEvent:
    """§3.2: this socket was detached (4th socket, closeSession elsewhere, Clear)."""

    CLASS: ClassVar[str] = "ConnectionClosedEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClearedEvent:
    """§2.3 Presence Clear."""

    CLASS: ClassVar[str] = "SessionClearedEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionExpiredEvent:
    """§8.4 item 12: ``response`` when it answers a request, ``message`` when pushed."""

    CLASS: ClassVar[str] = "SessionExpiredEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutEvent:
    """Authenticated sessions only."""

    CLASS: ClassVar[str] = "LogoutEvent"
    kind: str = MESSAGE
    code: int = 200
    tracing_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConfigurationResponse:
    """§2.5 (schema only)."""

    CLASS: ClassVar[str] = "GetConfigurationResponse"
    kind: str = RESPONSE
    code: int = 200
    tracing_id: str | None = None
    allowed_media: JsonObject | None = None
    blocked_extensions: tuple[str, ...] | None = None
    max_custom_data_bytes: int | None = None
    message_routing_enabled: bool | None = None
    session_duration_seconds: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeTokenResponse:
    """Schema only."""

    CLASS: ClassVar[str] = "ResumeTokenResponse"
    kind: str = RESPONSE
    code: int = 200
    tracing_id: str | None = None
    resume_token: str | None = field(default=None, repr=False)
    exp: int | None = None


ServerFrame = (
    SessionResponse
    | StructuredMessage
    | ErrorResponse
    | TooManyRequests
    | JwtResponse
    | PresignedUrlResponse
    | AttachmentDeletedResponse
    | UploadSuccessEvent
    | UploadFailureEvent
    | GenerateUrlError
    | ConnectionClosedEvent
    | SessionClearedEvent
    | SessionExpiredEvent
    | LogoutEvent
    | GetConfigurationResponse
    | ResumeTokenResponse
)

SERVER_CLASSES: dict[str, type[ServerFrame]] = {
    cls.CLASS: cls
    for cls in (
        SessionResponse,
        StructuredMessage,
        ErrorResponse,
        TooManyRequests,
        JwtResponse,
        PresignedUrlResponse,
        AttachmentDeletedResponse,
        UploadSuccessEvent,
        UploadFailureEvent,
        GenerateUrlError,
        ConnectionClosedEvent,
        SessionClearedEvent,
        SessionExpiredEvent,
        LogoutEvent,
        GetConfigurationResponse,
        ResumeTokenResponse,
    )
}

ENVELOPE_FIELDS = frozenset({"kind", "code", "tracing_id"})
