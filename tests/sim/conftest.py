"""Fixtures for the simulator tests: a real ``harness sim`` process on port 0, plain clients.

Readiness is the simulator's first stdout line (``SimProcess``); every wait has a timeout.
The clients are the ``websockets`` sync client sending hand-written JSON, so the simulator is
checked against the protocol text, not against our own codec.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from harness.sim.launcher import SimProcess

DEPLOYMENT = "11111111-2222-3333-4444-555555555555"
RECV_TIMEOUT_S = 5.0


class Guest:
    """One guest socket with small helpers; frames are plain dicts."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.token = str(uuid.uuid4())

    def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            self.ws.send(orjson.dumps(frame).decode())
        else:
            self.ws.send(frame)

    def recv(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        data = self.ws.recv(timeout=timeout)
        obj = orjson.loads(data)
        assert isinstance(obj, dict)
        return obj

    def recv_many(self, n: int, timeout: float = RECV_TIMEOUT_S) -> list[dict[str, Any]]:
        return [self.recv(timeout) for _ in range(n)]

    def configure(self, token: str | None = None, **extra: Any) -> dict[str, Any]:
        if token is not None:
            self.token = token
        frame = {"action": "configureSession", "deploymentId": DEPLOYMENT, "token": self.token}
        frame.update(extra)
        self.send(frame)
        return self.recv()

    def on_message(self, text: str | None = None, **extra: Any) -> str:
        """Send an onMessage Text; return its tracingId."""
        tracing_id = str(uuid.uuid4())
        message: dict[str, Any] = extra.pop("message", {"type": "Text", "text": text})
        frame = {"action": "onMessage", "token": self.token, "tracingId": tracing_id}
        frame["message"] = message
        frame.update(extra)
        self.send(frame)
        return tracing_id

    def say(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A guest text: returns (inbound echo, first bot reply)."""
        tracing_id = self.on_message(text)
        echo = self.recv()
        assert echo["tracingId"] == tracing_id, echo
        return echo, self.recv()

    def closed(self, timeout: float = RECV_TIMEOUT_S) -> tuple[int | None, str | None]:
        """Read until the server closes; return (code, reason). 1006 = no close frame."""
        for _ in range(100):
            try:
                self.ws.recv(timeout=timeout)
            except ConnectionClosed:
                break
        rcvd = self.ws.protocol.close_rcvd
        if rcvd is None:
            return 1006, None
        return rcvd.code, rcvd.reason

    def expect_silence(self, timeout: float = 0.3) -> None:
        """Nothing arrives within ``timeout`` (used only to check a frame was NOT sent)."""
        with pytest.raises(TimeoutError):
            self.ws.recv(timeout=timeout)


ConnectFn = Callable[..., Guest]


def open_guest(
    url: str,
    *,
    deployment: str | None = DEPLOYMENT,
    origin: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Guest:
    target = url
    params = []
    if deployment is not None:
        params.append(f"deploymentId={deployment}")
    if query:
        params.append(query)
    if params:
        target += "?" + "&".join(params)
    headers = dict(headers or {})
    if origin is not None:
        headers["Origin"] = origin
    kwargs.setdefault("compression", None)
    ws = connect(  # used directly, closed by the fixture: the historical ("legacy") form
        target,
        legacy=True,
        additional_headers=headers,
        open_timeout=RECV_TIMEOUT_S,
        close_timeout=2,
        **kwargs,
    )
    return Guest(ws)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimProcess]]:
    """Factory: start a simulator with the given switches; every one is stopped after."""
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        sim = SimProcess(list(args), ready_timeout_s=30)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def guests() -> Iterator[Callable[..., Guest]]:
    """Factory: open guest sockets (``guests(sim.url, ...)``); all are closed after the test."""
    opened: list[Guest] = []

    def make(url: str, **kwargs: Any) -> Guest:
        guest = open_guest(url, **kwargs)
        opened.append(guest)
        return guest

    yield make
    for guest in opened:
        guest.ws.close()
