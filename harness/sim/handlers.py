"""Action dispatch: one data frame in, its answers out (protocol.md §8.2 item 7, §8.3, §8.4).

Check order (§8.3): ``onMessage`` runs session, then ``msg-rate``, then read-only, then shape,
then feature, then size; ``configureSession`` runs the table's order, then ``configure-rate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from harness.errors import ProtocolViolation
from harness.protocol import codec, limits
from harness.protocol import frames as f
from harness.sim import wire
from harness.sim.attachments import Attachments
from harness.sim.bot import ATTACHMENT_REPLY, WELCOME, Bot
from harness.sim.clock import MessageClock
from harness.sim.config import SimConfig
from harness.sim.jwt import make_jwt
from harness.sim.rules import Answer, Utterance
from harness.sim.sessions import Session, SessionStore, Socket
from harness.sim.stats import SimStats

BAD_REQUEST = codec.BAD_REQUEST
SESSION_NOT_FOUND = "Session not found."
MISSING_TOKEN = "Missing parameter: token"
READ_ONLY = "Conversation is read-only; start a new one with startNew."
TYPING_OFF = "Turn on the Feature Toggle or fix the configuration."
CLEAR_OFF = "Presence events Conversation Clear are not supported"
_SESSION_ACTIONS = frozenset(
    {"onMessage", "echo", "getJwt", "onAttachment", "getAttachment", "deleteAttachment"}
    | {"closeSession"}
)


def lenient_tracing_id(data: str | bytes) -> str | None:
    """The ``tracingId`` of a frame we refuse before parsing it properly (429 answers)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("tracingId") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


class Handlers:
    """Answers every frame of every socket of one process."""

    def __init__(
        self,
        config: SimConfig,
        stats: SimStats,
        store: SessionStore,
        bot: Bot,
        clock: MessageClock,
    ) -> None:
        self.config = config
        self.stats = stats
        self.store = store
        self.bot = bot
        self.clock = clock
        self.attachments = Attachments(self)
        self._dispatch: dict[type[Any], Callable[[Socket, Any, float], None]] = {
            f.OnMessage: self.on_message,
            f.ConfigureSession: self.configure,
            f.ConfigureAuthenticatedSession: self.configure,
            f.Echo: self.echo,
            f.GetJwt: self.get_jwt,
            f.GetConfiguration: self.get_configuration,
            f.CloseSession: self.close_session,
            f.OnAttachment: self.attachments.on_attachment,
            f.GetAttachment: self.attachments.get_attachment,
            f.DeleteAttachment: self.attachments.delete_attachment,
        }
        attr = config.limits.attr_bytes
        self._max_custom = attr if attr is not None else limits.CUSTOM_ATTRIBUTES_MAX_BYTES
        self._ttl = int(config.session_ttl_s)

    # -- answers ----------------------------------------------------------------------------

    def error(self, sock: Socket, code: int, body: str, tracing_id: str | None) -> None:
        """A ``string`` error to the requesting socket only (§4.1, §8.4 item 19)."""
        self.stats.errors_by_code[str(code)] += 1
        sock.write(codec.encode(f.ErrorResponse(code=code, body=body, tracing_id=tracing_id)))

    def too_many(self, sock: Socket, retry_after: int, message: str, tid: str | None) -> None:
        """``TooManyRequestsErrorMessage``; the socket stays open (§4.3, §8.4 item 26)."""
        self.stats.errors_by_code["429"] += 1
        frame = f.TooManyRequests(retry_after=retry_after, error_message=message, tracing_id=tid)
        sock.write(codec.encode(frame))

    # -- entry point ------------------------------------------------------------------------

    def on_frame(self, sock: Socket, data: str | bytes, now: float) -> None:
        """One data frame (§8.2 item 7): req-rate, then frame size, then §8.3."""
        self.stats.frames_in += 1
        sock.last_data = now
        window = sock.req_window
        if window is not None and (retry := window.acquire(now)):
            message = "Request rate too high for this connection"
            self.too_many(sock, retry, message, lenient_tracing_id(data))
            return
        size = len(data)
        cap = self.config.max_frame_bytes
        if isinstance(data, str) and size * 4 > cap:
            size = len(data.encode("utf-8", "surrogatepass"))
        if size > cap:
            self.error(sock, 4011, f"Message length {size} is larger than {cap}", None)
            return
        if isinstance(data, bytes):  # binary frames are refused (§1.5, §8.3)
            self.error(sock, 400, BAD_REQUEST, None)
            return
        try:
            action = codec.decode_client(data)
        except ProtocolViolation as exc:
            self.bad_shape(sock, exc, data, now)
            return
        self._dispatch[type(action)](sock, action, now)

    def bad_shape(self, sock: Socket, exc: ProtocolViolation, data: str, now: float) -> None:
        """A frame the codec refused, answered in the §8.3 check order."""
        action, tid = exc.action, exc.tracing_id
        if action in ("configureSession", "configureAuthenticatedSession"):
            code, body = exc.code, str(exc)
            if code == 400 and self._wrong_deployment(sock, data):
                code, body = 403, "HTTP authorization error"
            self.error(sock, code, body, tid)
            return
        if action not in _SESSION_ACTIONS:
            self.error(sock, exc.code, str(exc), tid)
            return
        session = self.session_for(sock, exc.token, tid, now, echo=action == "echo")
        if session is None:
            return
        if action == "onMessage" and not self._admit_message(sock, session, tid, now):
            return
        if action == "onAttachment" and not self.config.feature_on("attachments"):
            self.error(sock, 4000, "File upload is not enabled.", tid)
            return
        if action == "onAttachment" and self.attachments.errors_as_json(data):
            self.attachments.refuse(sock, None, exc.code, str(exc), tid)
            return
        self.error(sock, exc.code, str(exc), tid)

    def _wrong_deployment(self, sock: Socket, data: str) -> bool:
        obj = orjson.loads(data)
        dep = obj.get("deploymentId")
        return isinstance(dep, str) and bool(dep) and dep != sock.deployment_id

    # -- shared checks ----------------------------------------------------------------------

    def session_for(
        self, sock: Socket, token: str | None, tid: str | None, now: float, *, echo: bool = False
    ) -> Session | None:
        """The socket's session for a session action, or None after answering (§8.3)."""
        session = sock.session
        if session is None or (token is not None and token != session.token):
            self.error(sock, 4007, SESSION_NOT_FOUND, tid)
            return None
        if token is None and not echo:
            self.error(sock, 4020, MISSING_TOKEN, tid)
            return None
        if self.store.is_expired(session, now):
            self.store.expire(session, sock, tid)
            return None
        return session

    def _admit_message(self, sock: Socket, session: Session, tid: str | None, now: float) -> bool:
        """msg-rate, then read-only (§8.3 check order)."""
        window = session.msg_window
        if window is not None and window.acquire(now):
            self.too_many(sock, 1, "Message rate too high for this session", tid)
            return False
        if session.read_only:
            self.error(sock, 409, READ_ONLY, tid)
            return False
        return True

    # -- onMessage (§8.4 items 17, 20-24) -----------------------------------------------------

    def on_message(self, sock: Socket, action: f.OnMessage, now: float) -> None:
        tid = action.tracing_id
        session = self.session_for(sock, action.token, tid, now)
        if session is None or not self._admit_message(sock, session, tid, now):
            return
        message = action.message
        if message.events and not self._features_allow(sock, message.events, tid):
            return
        if not self._sizes_allow(sock, action, tid):
            return
        refs = _attachment_refs(message.content)
        if refs and not self.attachments.all_uploaded(session, refs):
            self.error(sock, 4010, "Attachment not uploaded.", tid)
            return
        self.stats.messages += 1
        if _has_attributes(action):
            self.stats.messages_with_attributes += 1
        session.last_activity = now
        self.attachments.mark_sent(session, refs)
        self._route(session, message, self._inbound_echo(action), bool(refs))

    def _features_allow(self, sock: Socket, events: tuple[Any, ...], tid: str | None) -> bool:
        for event in events:
            kind = event.get("eventType")
            if kind == "Typing" and not self.config.feature_on("typing"):
                self.error(sock, 403, TYPING_OFF, tid)
                return False
            if _presence(event) == "Clear" and not self.config.feature_on("clear"):
                self.error(sock, 403, CLEAR_OFF, tid)
                return False
        return True

    def _sizes_allow(self, sock: Socket, action: f.OnMessage, tid: str | None) -> bool:
        text = action.message.text
        cap = self.config.limits.text_bytes
        if text is not None and cap is not None and len(text) * 4 > cap:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > cap:
                self.error(sock, 4011, f"Message length {size} is larger than {cap}", tid)
                return False
        attr_cap = self.config.limits.attr_bytes
        has_channel = action.channel is not None or action.message.channel is not None
        if attr_cap is not None and has_channel and codec.custom_attributes_size(action) > attr_cap:
            body = f"Custom Attributes in channel metadata is larger than {attr_cap} bytes"
            self.error(sock, 4013, body, tid)
            return False
        return True

    def _inbound_echo(self, action: f.OnMessage) -> bytes:
        """The §3.4 inbound echo, pushed to every socket of the session (item 17)."""
        message = action.message
        clock = self.clock
        metadata = {}
        if message.metadata:
            metadata = {k: v for k, v in message.metadata.items() if isinstance(v, str)}
        metadata["correlationId"] = clock.uuid()
        return wire.inbound_echo(
            tracing_id=action.tracing_id,
            type=message.type,
            id=clock.hex_id(),
            text=message.text,
            content=message.content,
            events=message.events,
            time=clock.channel_time(),
            message_id=clock.uuid(),
            metadata=metadata,
        )

    def _route(self, session: Session, message: f.Message, echo: bytes, attached: bool) -> None:
        """What the bot does after the echo (§8.4 items 20, 22-24), or what ``--bot-rules``
        says for texts, quick-reply choices and the welcome."""
        bot, rules = self.bot, self.config.bot_rules
        if message.type == "Event":
            presence = [_presence(e) for e in message.events or ()]
            if "Clear" in presence:
                session.push(echo)
                self.store.clear(session)
            elif "Disconnect" in presence:
                session.push(echo)
                bot.disconnect_now(session)
            elif "Join" in presence:
                welcome = rules.welcome if rules is not None else None
                bot.start_turn(session, echo, welcome or _WELCOME, timed=False)
            else:
                bot.start_turn(session, echo, None)
            return
        payload = _button_payload(message.content)
        answer = rules.answer(message.text, payload) if rules is not None else None
        if answer is not None:
            bot.start_turn(session, echo, answer, guest_text=payload is None)
        elif payload is not None:
            bot.start_turn(session, echo, _say(f"You chose: {payload}"))
        elif attached and not message.text:
            bot.start_turn(session, echo, _say(ATTACHMENT_REPLY))
        elif (
            self.config.disconnect_text is not None and message.text == self.config.disconnect_text
        ):
            bot.schedule_disconnect(session, echo)
        else:
            bot.start_turn(session, echo, bot.default_answer(message.text or ""), guest_text=True)

    # -- configureSession (§8.4 items 9, 11) ---------------------------------------------------

    def configure(
        self,
        sock: Socket,
        action: f.ConfigureSession | f.ConfigureAuthenticatedSession,
        now: float,
    ) -> None:
        tid = action.tracing_id
        if action.deployment_id != sock.deployment_id:
            self.error(sock, 403, "HTTP authorization error", tid)
            return
        authenticated = isinstance(action, f.ConfigureAuthenticatedSession)
        store = self.store
        session = store.sessions.get(action.token)
        if session is not None and store.is_expired(session, now):
            store.expire(session, None, None)
            session = None
        if session is None and action.token in store.expired:
            self.error(sock, 4006, "Session expired.", tid)
            return
        if session is not None and session.deployment_id != sock.deployment_id:
            self.error(sock, 4007, SESSION_NOT_FOUND, tid)
            return
        if session is not None and session.authenticated and not authenticated:
            self.error(sock, 4017, "Cannot downgrade to an unauthenticated session.", tid)
            return
        window = session.configure_window if session is not None else None
        if window is not None and (retry := window.acquire(now)):
            self.too_many(sock, retry, "Configure rate too high for this session", tid)
            return
        new = session is None
        if session is None:
            session = store.create(action.token, sock.deployment_id, authenticated, now)
            if session.configure_window is not None:
                session.configure_window.acquire(now)
        elif action.start_new and session.read_only:  # item 11; ignored otherwise
            session.read_only = False
            session.attachments.clear()
            self.stats.sessions += 1
            new = True
        session.last_activity = now
        store.attach(sock, session)
        sock.write(codec.encode(self._session_response(session, new, tid)))

    def _session_response(self, session: Session, new: bool, tid: str | None) -> f.SessionResponse:
        return f.SessionResponse(
            tracing_id=tid,
            connected=True,
            new_session=new,
            read_only=session.read_only,
            cleared_existing_session=False,
            max_custom_data_bytes=self._max_custom,
            allowed_media=limits.ALLOWED_MEDIA,
            blocked_extensions=limits.BLOCKED_EXTENSIONS,
            duration_seconds=self._ttl,
            expiration_date=int(time.time()) + self._ttl,
        )

    # -- other actions (§8.4 items 13-16) ------------------------------------------------------

    def echo(self, sock: Socket, action: f.Echo, now: float) -> None:
        tid = action.tracing_id
        session = self.session_for(sock, action.token, tid, now, echo=True)
        if session is None:
            return
        window = sock.echo_window
        if window is not None and (retry := window.acquire(now)):
            self.too_many(sock, retry, "Echo rate too high for this connection", tid)
            return
        text = action.message.text if action.message and action.message.text else "ping"
        expires = int(time.time() - (now - session.last_activity)) + self._ttl
        frame = f.StructuredMessage(
            kind=f.RESPONSE,
            tracing_id=tid,
            direction=f.INBOUND,
            type="Text",
            id=self.clock.hex_id(),
            text=text,
            channel={"time": self.clock.channel_time(), "messageId": self.clock.uuid()},
            metadata={"durationSeconds": str(self._ttl), "expirationDate": str(expires)},
        )
        sock.write(codec.encode(frame))

    def get_jwt(self, sock: Socket, action: f.GetJwt, now: float) -> None:
        session = self.session_for(sock, action.token, action.tracing_id, now)
        if session is None:
            return
        jwt, exp = make_jwt(session.token, session.deployment_id, int(time.time()))
        sock.write(codec.encode(f.JwtResponse(tracing_id=action.tracing_id, jwt=jwt, exp=exp)))

    def get_configuration(self, sock: Socket, action: f.GetConfiguration, now: float) -> None:
        frame = f.GetConfigurationResponse(
            tracing_id=action.tracing_id,
            allowed_media=limits.ALLOWED_MEDIA,
            blocked_extensions=limits.BLOCKED_EXTENSIONS,
            max_custom_data_bytes=self._max_custom,
            message_routing_enabled=True,
            session_duration_seconds=self._ttl,
        )
        sock.write(codec.encode(frame))

    def close_session(self, sock: Socket, action: f.CloseSession, now: float) -> None:
        session = self.session_for(sock, action.token, action.tracing_id, now)
        if session is None:
            return
        if action.close_all_connections:
            self.store.close_others(session, sock)
        self.store.detach(sock)
        frame = f.SessionResponse(
            tracing_id=action.tracing_id, connected=False, read_only=session.read_only
        )
        sock.write(codec.encode(frame))


_WELCOME = Answer((Utterance(WELCOME),))


def _say(text: str) -> Answer:
    return Answer((Utterance(text),))


def _has_attributes(action: f.OnMessage) -> bool:
    for channel in (action.message.channel, action.channel):
        metadata = channel.get("metadata") if isinstance(channel, dict) else None
        if isinstance(metadata, dict) and metadata.get("customAttributes"):
            return True
    return False


def _presence(event: Any) -> str | None:
    if not isinstance(event, dict) or event.get("eventType") != "Presence":
        return None
    presence = event.get("presence")
    return presence.get("type") if isinstance(presence, dict) else None


def _button_payload(content: tuple[Any, ...] | None) -> str | None:
    for item in content or ():
        if item.get("contentType") == "ButtonResponse":
            button = item.get("buttonResponse")
            if isinstance(button, dict):
                payload = button.get("payload")
                return str(payload) if payload is not None else ""
    return None


def _attachment_refs(content: tuple[Any, ...] | None) -> list[str]:
    refs: list[str] = []
    for item in content or ():
        if item.get("contentType") == "Attachment":
            attachment = item.get("attachment")
            ref = attachment.get("id") if isinstance(attachment, dict) else None
            refs.append(ref if isinstance(ref, str) else "")
    return refs
