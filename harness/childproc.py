"""Child processes of the CLI that never outlive it and that hear its stop signals.

- :func:`die_with_parent`: a ``preexec_fn`` that asks the kernel (Linux ``PR_SET_PDEATHSIG``)
  to signal the child when its parent dies, even by SIGKILL, so no orphaned simulator keeps a
  port and no orphaned load generator keeps sending load.
- :class:`StopSignals`: while active, SIGINT, SIGTERM and SIGHUP do not kill this process;
  the first one is remembered and every one is passed on to the current child as one gentle
  signal, so the child stops cleanly and the caller decides what to do next.

Imports nothing of ours: the simulator launcher and ``harness run`` both use it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

_PR_SET_PDEATHSIG = 1
#: Resolved in the parent: after fork only a plain syscall wrapper may run (no dlopen, no locks).
_PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None

#: Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def die_with_parent(signum: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when this process dies (Linux only).

    If the parent died between fork and the ``prctl`` call, the child signals itself.
    """
    parent = os.getpid()

    def arm() -> None:
        if _PRCTL is None:
            return
        _PRCTL(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return arm


def exit_code_for(signum: int) -> int:
    """The shell's convention for a run ended by a signal: 128 + N (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + signum


class StopSignals:
    """A context manager: stop signals are caught, remembered and forwarded to the child.

    ``forward_as`` is the one signal the child gets, whatever arrived: children that handle
    it cleanly (Locust with the harness installed, ``harness report``) then have only one
    stop path to get right.
    """

    def __init__(self, forward_as: int = signal.SIGINT) -> None:
        self.forward_as = forward_as
        self.received: signal.Signals | None = None
        self._count = 0
        self._child: subprocess.Popen[Any] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)
        self._count += 1
        self._forward()

    def _forward(self) -> None:
        if self._child is not None:  # send_signal skips a child that has already exited
            self._child.send_signal(self.forward_as)

    def run(self, cmd: Sequence[str], *, death_signal: int, new_group: bool = False) -> int:
        """Run ``cmd`` to its end (a stop signal is forwarded, not fatal); its exit status.

        A signal that arrived before this call is the caller's to act on; one that arrives
        while the child is being started is forwarded as soon as it exists.
        ``new_group``: the child gets its own process group, so a terminal's Ctrl-C reaches
        it only through this process (once), not twice.
        """
        before = self._count
        self._child = subprocess.Popen(
            list(cmd),
            preexec_fn=die_with_parent(death_signal),  # noqa: PLW1509 (one syscall)
            process_group=0 if new_group else None,
        )
        try:
            if self._count != before:
                self._forward()
            return self._child.wait()
        finally:
            self._child = None
