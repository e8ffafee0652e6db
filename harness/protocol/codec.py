"""Encode and decode Guest API frames with orjson (protocol.md §2, §3, §8.3).

``decode_server`` is lenient the way §3.1 asks: unknown keys are ignored and minimal frames are
accepted, but anything a client cannot safely act on (not JSON, not an object, a missing
envelope field, an unknown class, a known field of the wrong type) raises
:class:`~harness.errors.ProtocolViolation` and nothing else.

``decode_client`` is the server side's shape check. Its ``ProtocolViolation.code`` is the §8.3
answer (400 or 4020); ``action``, ``token`` and ``tracing_id`` are read leniently so that a
server can apply the §8.3 check order (session, then rate, then read-only, then shape).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from harness.errors import ProtocolViolation
from harness.protocol import frames as f

BAD_REQUEST: Final = "Request failed."
_MISSING: Final = object()

# --- field specs, derived once per class from the dataclass annotations -----------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    key: str
    kind: str  # str | int | bool | obj | objs | strs | message
    required: bool


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _kind_of(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
        args = list(typing.get_args(annotation))
    if annotation in (str, int, bool):
        return str(annotation.__name__)
    if annotation is f.Message:
        return "message"
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return "strs" if args and args[0] is str else "objs"
    return "obj"


_SPEC_CACHE: Final[dict[type, tuple[_Field, ...]]] = {}


def _specs(cls: type) -> tuple[_Field, ...]:
    cached = _SPEC_CACHE.get(cls)
    if cached is None:
        cached = _SPEC_CACHE[cls] = _derive_specs(cls)
    return cached


def _derive_specs(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    skip = f.ENVELOPE_FIELDS if hasattr(cls, "CLASS") else frozenset()
    return tuple(
        _Field(
            fld.name,
            _camel(fld.name),
            _kind_of(hints[fld.name]),
            fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING,
        )
        for fld in dataclasses.fields(cls)
        if fld.name not in skip
    )


_CHECKS: Final[dict[str, Any]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "obj": lambda v: isinstance(v, dict),
    "objs": lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
    "strs": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}

# --- encoding ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, f.Message):
        return _fields_to_json(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _fields_to_json(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in _specs(type(obj)):
        value = getattr(obj, spec.name)
        if value is not None:
            out[spec.key] = _plain(value)
    return out


def to_json(frame: f.ClientAction | f.ServerFrame) -> dict[str, Any]:
    """The JSON object of a frame, as sent on the wire."""
    if isinstance(frame, f.ErrorResponse):
        out: dict[str, Any] = {"type": frame.kind, "class": frame.CLASS, "code": frame.code}
        if frame.tracing_id is not None:
            out["tracingId"] = frame.tracing_id
        out["body"] = frame.body
        return out
    if isinstance(frame, f.ConfigureAuthenticatedSession):
        body = _fields_to_json(frame)
        body["data"] = {"code": body.pop("code")}
        return {"action": frame.ACTION, **body}
    if hasattr(frame, "ACTION"):
        return {"action": frame.ACTION, **_fields_to_json(frame)}
    out = {"type": frame.kind, "class": frame.CLASS, "code": frame.code}
    if frame.tracing_id is not None:
        out["tracingId"] = frame.tracing_id
    out["body"] = _fields_to_json(frame)
    return out


def encode(frame: f.ClientAction | f.ServerFrame) -> bytes:
    """Serialise a frame to UTF-8 JSON bytes; send them as a *text* frame (§1.5)."""
    return orjson.dumps(to_json(frame))


# --- decoding: server frames ------------------------------------------------------------------


def _loads(data: str | bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolViolation(f"frame is not JSON: {exc}", raw=data) from None
    if not isinstance(obj, dict):
        raise ProtocolViolation(f"frame is not a JSON object: {type(obj).__name__}", raw=data)
    return obj


def _convert(spec: _Field, value: Any) -> Any:
    if spec.kind == "message":
        return _message(value)
    if spec.kind in ("objs", "strs"):
        return tuple(value)
    return value


def decode_server(data: str | bytes) -> f.ServerFrame:
    """Parse one server frame (§3).

    Raises:
        ProtocolViolation: the frame cannot be accepted; ``str(exc)`` says why.
    """
    return decode_server_object(_loads(data))


def decode_server_object(obj: Any) -> f.ServerFrame:
    """:func:`decode_server` for JSON already parsed (a caller with a fast path of its own).

    Raises:
        ProtocolViolation: as :func:`decode_server`.
    """
    if not isinstance(obj, dict):
        raise ProtocolViolation(f"frame is not a JSON object: {type(obj).__name__}")
    kind, cls_name, code = obj.get("type"), obj.get("class"), obj.get("code")
    if kind not in (f.RESPONSE, f.MESSAGE):
        raise ProtocolViolation(f"envelope 'type' must be response or message, got {kind!r}")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ProtocolViolation(f"envelope 'code' must be an integer, got {code!r}")
    if "body" not in obj:
        raise ProtocolViolation("envelope has no 'body'")
    cls = SERVER_LOOKUP.get(cls_name) if isinstance(cls_name, str) else None
    if cls is None:
        raise ProtocolViolation(f"unknown frame class {cls_name!r}")
    tracing_id = obj.get("tracingId")
    if tracing_id is not None and not isinstance(tracing_id, str):
        raise ProtocolViolation(f"'tracingId' must be a string, got {tracing_id!r}")
    body = obj["body"]
    if cls is f.ErrorResponse:
        if not isinstance(body, str):
            body = orjson.dumps(body).decode()  # keep it: the code is what matters (§4.1)
        return f.ErrorResponse(kind=kind, code=code, tracing_id=tracing_id, body=body)
    if not isinstance(body, dict):
        raise ProtocolViolation(f"{cls_name} body must be an object")
    kwargs: dict[str, Any] = {"kind": kind, "code": code, "tracing_id": tracing_id}
    for spec in _specs(cls):
        value = body.get(spec.key, _MISSING)
        if value is _MISSING or value is None:
            if spec.required:
                raise ProtocolViolation(f"{cls_name} body has no {spec.key!r}")
            continue
        if not _CHECKS[spec.kind](value):
            raise ProtocolViolation(f"{cls_name} body field {spec.key!r} has the wrong type")
        kwargs[spec.name] = _convert(spec, value)
    return cls(**kwargs)


SERVER_LOOKUP: Final = f.SERVER_CLASSES

# --- decoding: client actions (server side, §8.3) ---------------------------------------------


def _bad(message: str, code: int, obj: Mapping[str, Any] | None = None) -> ProtocolViolation:
    obj = obj or {}
    action, token, tracing_id = obj.get("action"), obj.get("token"), obj.get("tracingId")
    return ProtocolViolation(
        message,
        code=code,
        action=action if isinstance(action, str) else None,
        token=token if isinstance(token, str) and token else None,
        tracing_id=tracing_id if isinstance(tracing_id, str) else None,
    )


def _message(value: Any, obj: Mapping[str, Any] | None = None) -> f.Message:
    """Validate a ``message`` object (§8.3 row "message not an object; type not ...")."""
    if not isinstance(value, dict):
        raise _bad(BAD_REQUEST, 400, obj)
    mtype = value.get("type", "Text")
    text, content = value.get("text"), value.get("content")
    events, metadata, channel = value.get("events"), value.get("metadata"), value.get("channel")
    if (
        mtype not in f.MESSAGE_TYPES
        or (text is not None and not isinstance(text, str))
        or (content is not None and not _CHECKS["objs"](content))
        or (events is not None and not _CHECKS["objs"](events))
        or (metadata is not None and not isinstance(metadata, dict))
        or (channel is not None and not isinstance(channel, dict))
    ):
        raise _bad(BAD_REQUEST, 400, obj)
    if mtype == "Event" and not events:
        raise _bad(BAD_REQUEST, 400, obj)
    if mtype != "Event" and not text and not content:
        raise _bad(BAD_REQUEST, 400, obj)
    return f.Message(
        type=mtype,
        text=text,
        content=tuple(content) if content is not None else None,
        events=tuple(events) if events is not None else None,
        metadata=metadata,
        channel=channel,
    )


def _client_kwargs(cls: type, obj: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for spec in _specs(cls):
        if spec.name == "code":  # configureAuthenticatedSession: data.code (§2.2)
            data = obj.get("data")
            value = data.get("code") if isinstance(data, dict) else None
            if not isinstance(value, str) or not value:
                raise _bad("Missing parameter: data.code", 4020, obj)
            kwargs["code"] = value
            continue
        value = obj.get(spec.key)
        if spec.name == "token" and value is not None and (not isinstance(value, str) or not value):
            value = None  # missing, empty or not a string are all "missing" (§8.3)
        if value is None:
            if spec.required:
                if spec.kind == "message":
                    raise _bad(BAD_REQUEST, 400, obj)
                raise _bad(f"Missing parameter: {spec.key}", 4020, obj)
            continue
        if spec.kind == "message":
            kwargs[spec.name] = _message(value, obj)
            continue
        if not _CHECKS[spec.kind](value) or (spec.kind == "str" and spec.required and not value):
            code = 4020 if spec.kind == "str" and value == "" else 400
            raise _bad(BAD_REQUEST if code == 400 else f"Missing parameter: {spec.key}", code, obj)
        kwargs[spec.name] = _convert(spec, value)
    return kwargs


def decode_client(data: str | bytes) -> f.ClientAction:
    """Parse and shape-check one client action (§2, §8.3).

    Raises:
        ProtocolViolation: with ``code`` 400 (not JSON, not an object, unknown action, wrong
            types, empty message) or 4020 (a missing parameter such as ``token``).
    """
    try:
        obj = _loads(data)
    except ProtocolViolation:
        raise _bad(BAD_REQUEST, 400) from None
    action = obj.get("action")
    cls = f.CLIENT_ACTIONS.get(action) if isinstance(action, str) else None
    if cls is None:
        raise _bad(BAD_REQUEST, 400, obj)
    return cls(**_client_kwargs(cls, obj))


# --- helpers ----------------------------------------------------------------------------------


def format_channel_time(epoch_ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (§3.4)."""
    seconds, millis = divmod(epoch_ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def parse_channel_time(text: str) -> int | None:
    """Epoch milliseconds of a ``channel.time`` string, or None when it is not one."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (ValueError, TypeError):
        return None
    return int(moment.timestamp() * 1000 + 0.5) if moment.microsecond % 1000 == 0 else None


def custom_attributes_size(action: f.OnMessage) -> int:
    """Largest compact-JSON size in bytes of the custom attributes in either placement (§2.3)."""
    sizes = [0]
    for channel in (action.message.channel, action.channel):
        if isinstance(channel, Mapping):
            metadata = channel.get("metadata")
            if isinstance(metadata, Mapping) and "customAttributes" in metadata:
                sizes.append(len(orjson.dumps(metadata["customAttributes"])))
    return max(sizes)
