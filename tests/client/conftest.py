"""Fixtures for the client tests: real servers on loopback, port 0, readiness by first line.

gevent choice: these tests do NOT monkey-patch. Patching inside pytest would change every
other test module in the process. The client does not need it: the transport creates gevent
sockets itself, so the reader greenlet and the waits are cooperative with or without
patching (Locust patches; here the main greenlet simply blocks in gevent primitives and the
hub runs the readers). The client must also work when another module of the same session has
imported locust (which patches): so every server here is a subprocess (the simulator via
SimProcess, or tests/client/wsserver.py), never a thread, and the tests behave the same in
both worlds.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gevent.event
import pytest

from harness.client.guest import GuestClient
from harness.client.options import ClientOptions
from harness.client.results import StepOutcome
from harness.sim.launcher import SimProcess

DEPLOYMENT = "11111111-2222-3333-4444-555555555555"
WSSERVER = Path(__file__).with_name("wsserver.py")


class ScriptServer:
    """tests/client/wsserver.py as a child process; ``url`` comes from its first line."""

    def __init__(self, args: Sequence[str] = (), ready_timeout_s: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WSSERVER), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            self.url = lines.get(timeout=ready_timeout_s).strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError("wsserver not ready") from None
        if not self.url.startswith(("ws://", "wss://")):
            self.stop()
            raise RuntimeError(f"wsserver failed: {self.url!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def script_server() -> Iterator[Callable[..., ScriptServer]]:
    """Factory: ``script_server("--reject", "403")``; every server is stopped afterwards."""
    started: list[ScriptServer] = []

    def start(*args: str) -> ScriptServer:
        server = ScriptServer(args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    """One simulator per module: fast bot, default limits, no faults."""
    with SimProcess(
        ["--deployment-id", DEPLOYMENT, "--bot-latency", "5ms", "--quick-replies", "0"]
    ) as proc:
        yield proc


@pytest.fixture
def sim_with() -> Iterator[Callable[..., SimProcess]]:
    """Factory for a simulator with extra switches (faults, limits), stopped afterwards."""
    started: list[SimProcess] = []

    def start(*args: str) -> SimProcess:
        proc = SimProcess(["--deployment-id", DEPLOYMENT, "--bot-latency", "5ms", *args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class Reports(list[StepOutcome]):
    """The report callback's sink, with query helpers and a bounded wait."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = gevent.event.Event()

    def append(self, outcome: StepOutcome) -> None:
        super().append(outcome)
        self._changed.set()

    def steps(self, step: str) -> list[StepOutcome]:
        return [o for o in self if o.step == step]

    def one(self, step: str) -> StepOutcome:
        found = self.steps(step)
        assert len(found) == 1, (step, found)
        return found[0]

    def wait_for(self, predicate: Callable[[Reports], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds, woken by each new report (no sleeps)."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"condition not met in {timeout_s} s: {list(self)}"
            self._changed.clear()
            if not predicate(self):
                self._changed.wait(remaining)


@pytest.fixture
def reports() -> Reports:
    return Reports()


def guest_url(base: str) -> str:
    """The Guest API URL on a test server (§1.1)."""
    return f"{base}?deploymentId={DEPLOYMENT}"


def options(**kw: object) -> ClientOptions:
    """Client options with short waits for tests."""
    defaults: dict[str, object] = {
        "reply_timeout_s": 5.0,
        "close_timeout_s": 3.0,
        "answer_quiet_s": 0.1,
    }
    defaults.update(kw)
    return ClientOptions(DEPLOYMENT, **defaults)  # type: ignore[arg-type]


@pytest.fixture
def make_client(reports: Reports) -> Iterator[Callable[..., GuestClient]]:
    """Factory: ``make_client(server_url, token=None, **option_overrides)``; closed afterwards."""
    made: list[GuestClient] = []

    def make(base: str, token: str | None = None, **kw: object) -> GuestClient:
        client = GuestClient(guest_url(base), options(**kw), reports.append, token=token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop_heartbeat()
        if not client.closed:
            client.close()
