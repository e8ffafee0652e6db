"""Run one simulator process, or N of them on one port (protocol.md §8.1 items 1 and 4).

With ``--processes N`` the parent binds the port once (port 0 picks a free one) with
SO_REUSEPORT and keeps it until every child has bound the same port and is serving; it prints
the URL only then, forwards SIGINT/SIGTERM, and merges the children's counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.errors import UsageError
from harness.sim.config import SimConfig
from harness.sim.server import bind_socket, run_until_stopped
from harness.sim.stats import SimStats

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def _runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _ready_line(url: str, config: SimConfig) -> str:
    line = f"harness sim: listening on {url}"
    if config.processes > 1:
        line += f" ({config.processes} processes)"
    tls = config.tls
    if tls.self_signed_host:
        line += f" (tls: self-signed for {tls.self_signed_host}; CA file: {tls.ca_file})"
    return line


def serve_process(
    config: SimConfig, sock: socket.socket, on_ready: Callable[[str], None]
) -> SimStats:
    """Serve on ``sock`` in this process until SIGINT or SIGTERM; return the counters."""
    ssl_context: Any = None
    if config.tls.enabled:
        from harness.sim.tls import server_context

        ssl_context = server_context(config.tls)

    async def main() -> SimStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_until_stopped(config, sock, ssl_context, stop, on_ready)

    with _runner() as runner:
        return runner.run(main())


def _child(config: SimConfig, pipe: Connection) -> None:
    """Entry point of one child process: report ready (or an error), then the summary."""
    try:
        sock = bind_socket(config.host, config.port, reuse_port=True)
        stats = serve_process(config, sock, lambda url: pipe.send(("ready", url)))
    except Exception as exc:
        pipe.send(("error", f"process {config.process_index}: {exc}"))
        raise
    pipe.send(("summary", stats.to_dict()))
    pipe.close()


def run(config: SimConfig, print_line: Callable[[str], None]) -> SimStats:
    """Run the simulator as configured; ``print_line`` receives the readiness line.

    Raises:
        UsageError: the port cannot be bound, or a child failed to start.
    """
    if config.processes <= 1:
        try:
            sock = bind_socket(config.host, config.port, reuse_port=False)
        except OSError as exc:
            raise UsageError(f"cannot bind {config.host}:{config.port}: {exc}") from exc
        return serve_process(config, sock, lambda url: print_line(_ready_line(url, config)))
    return _run_parent(config, print_line)


def _run_parent(config: SimConfig, print_line: Callable[[str], None]) -> SimStats:
    try:
        holder = bind_socket(config.host, config.port, reuse_port=True)
    except OSError as exc:
        raise UsageError(f"cannot bind {config.host}:{config.port}: {exc}") from exc
    port = holder.getsockname()[1]
    stop_requested: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _frame: stop_requested.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    context = multiprocessing.get_context("spawn")
    children: list[tuple[Any, Connection]] = []
    try:
        for index in range(config.processes):
            child_config = dataclasses.replace(config, port=port, process_index=index)
            ours, theirs = context.Pipe()
            proc = context.Process(target=_child, args=(child_config, theirs), daemon=True)
            proc.start()
            theirs.close()
            children.append((proc, ours))
        url = _await_ready(children, stop_requested)
        holder.close()
        print_line(_ready_line(url, config))
        _await_stop(children, stop_requested)
        return _collect(children)
    finally:
        holder.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for proc, _pipe in children:
            if proc.is_alive():
                proc.kill()


def _await_ready(children: list[tuple[Any, Connection]], stop: list[int]) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = ""
    pending = {pipe for _proc, pipe in children}
    while pending:
        if stop or time.monotonic() > deadline:
            raise UsageError("simulator processes did not all become ready")
        for pipe in wait(list(pending), timeout=0.2):
            assert isinstance(pipe, Connection)
            try:
                kind, value = pipe.recv()
            except EOFError:
                raise UsageError("a simulator process exited before it was ready") from None
            if kind == "error":
                raise UsageError(str(value))
            url = str(value)
            pending.discard(pipe)
    return url


def _await_stop(children: list[tuple[Any, Connection]], stop: list[int]) -> None:
    """Wait for SIGINT/SIGTERM (or a child's death), then forward SIGTERM to every child."""
    while not stop and all(proc.is_alive() for proc, _pipe in children):
        time.sleep(0.1)
    for proc, _pipe in children:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the child closes its sockets with 1001


def _collect(children: list[tuple[Any, Connection]]) -> SimStats:
    parts: list[SimStats] = []
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc, pipe in children:
        while time.monotonic() < deadline:
            if pipe.poll(0.1):
                try:
                    kind, value = pipe.recv()
                except EOFError:
                    break
                if kind == "summary":
                    parts.append(SimStats.from_dict(value))
                    break
            elif not proc.is_alive():
                break
        proc.join(max(0.1, deadline - time.monotonic()))
    if len(parts) < len(children):
        log.warning("only %d of %d processes reported a summary", len(parts), len(children))
    return SimStats.merge(parts)
