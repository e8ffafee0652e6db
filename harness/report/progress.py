"""A dependency-free progress line on stderr for long reports (shown on a TTY or on request)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts named stages and redraws one stderr line; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.perf_counter_ns()

    def advance(self, label: str, steps: int = 1) -> None:
        """Mark ``steps`` more stages done and show ``label`` as the current activity."""
        self.done = min(self.done + steps, self.total)
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = (time.perf_counter_ns() - self._started) / 1e9
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:6.1f}s {label[:40]:<40}")
        self._stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._stream.write("\n")
            self._stream.flush()
