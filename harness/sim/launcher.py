"""Start ``harness sim`` as a child process and wait for its readiness line.

Used by the Locust flow (the embedded simulator when no ``--host`` is given), by the
benchmarks and by the tests. Readiness is the simulator's first stdout line, which contains
its URL (protocol.md §8.1 item 1): no sleeps, no port guessing.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import TracebackType

from harness.childproc import die_with_parent
from harness.errors import UsageError

_URL = re.compile(r"wss?://\S+/v1")


class SimProcess:
    """A running simulator child process; a context manager that stops it on exit."""

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        ready_timeout_s: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        cmd = [sys.executable, "-m", "harness", "sim", "--host", host, "--port", "0"]
        cmd += list(extra_args)
        self.args = cmd
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        # stderr goes to a file: a pipe nobody drains would block a chatty simulator.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives with the child)
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            # Its own session: a terminal Ctrl-C goes to the load generator, which then stops
            # the simulator after its users have closed (their closes are then 1000, not 1001).
            start_new_session=True,
            # SIGTERM when the parent dies, even by SIGKILL: the simulator shuts down cleanly
            # and no orphan keeps its port.
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 (one syscall)
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.url = self._wait_ready(ready_timeout_s)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _wait_ready(self, timeout_s: float) -> str:
        try:
            first = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            self.stop()
            raise UsageError(f"simulator not ready after {timeout_s:g} s") from None
        if first is None:
            code = self.proc.wait()
            last = self.stderr_text().strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"simulator exited with code {code} before ready: {last[0]}")
        self.output.append(first)
        match = _URL.search(first)
        if match is None:
            self.stop()
            raise UsageError(f"simulator's first line has no ws:// URL: {first!r}")
        return match.group(0)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def stop(self, timeout_s: float = 15.0) -> str:
        """Send SIGINT, wait for a clean exit and return everything it printed after ready."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=timeout_s)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.output.append(line)
        return "\n".join(self.output[1:])

    def stderr_text(self) -> str:
        """Everything the simulator wrote to stderr so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
