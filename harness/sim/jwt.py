"""The simulator's ``getJwt`` token (protocol.md §8.4 item 15): well-formed, not verifiable."""

from __future__ import annotations

import base64
import os

import orjson

JWT_LIFETIME_S = 3600
_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(token: str, deployment_id: str, now_s: int) -> tuple[str, int]:
    """``<b64url header>.<b64url payload>.<b64url signature>`` and its ``exp`` (now + 1 h).

    The payload is ``{sub, deploymentId, iat, exp}``; the signature is random bytes.
    """
    exp = now_s + JWT_LIFETIME_S
    payload = {"sub": token, "deploymentId": deployment_id, "iat": now_s, "exp": exp}
    parts = (orjson.dumps(_HEADER), orjson.dumps(payload), os.urandom(32))
    return ".".join(_b64url(p) for p in parts), exp
