"""Parsing of the human units used by every command line: durations and shares.

protocol.md §8.1: durations take ``ms``/``s``/``m``/``h`` and a bare number means seconds;
a SHARE is a fraction (a seeded draw) or ``every:N`` (exactly every N-th).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.errors import UsageError

_UNITS = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def parse_duration(text: str) -> float:
    """Return seconds for ``"50ms"``, ``"2s"``, ``"1.5m"``, ``"2h"`` or ``"3"``.

    Raises:
        UsageError: the text is not a non-negative duration.
    """
    raw = text.strip().lower()
    number, scale = raw, 1.0
    for suffix, unit_scale in _UNITS:
        if raw.endswith(suffix) and not (suffix == "s" and raw.endswith("ms")):
            number, scale = raw[: -len(suffix)], unit_scale
            break
    try:
        value = float(number) * scale
    except ValueError:
        raise UsageError(f"not a duration: {text!r} (use e.g. 50ms, 2s, 5m, 1h)") from None
    if not value >= 0:  # also refuses NaN
        raise UsageError(f"duration must be >= 0: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Share:
    """Which items of a sequence are picked: a seeded fraction, or exactly every N-th."""

    fraction: float = 0.0
    every: int = 0

    @classmethod
    def parse(cls, text: str) -> Share:
        """Parse ``0.05`` or ``every:20``.

        Raises:
            UsageError: not a fraction in [0, 1] nor ``every:N`` with N >= 1.
        """
        raw = text.strip().lower()
        if raw.startswith("every:"):
            try:
                n = int(raw[6:])
            except ValueError:
                raise UsageError(f"not a share: {text!r} (use 0.05 or every:20)") from None
            if n < 1:
                raise UsageError(f"every:N needs N >= 1: {text!r}")
            return cls(every=n)
        try:
            fraction = float(raw)
        except ValueError:
            raise UsageError(f"not a share: {text!r} (use 0.05 or every:20)") from None
        if not 0.0 <= fraction <= 1.0:
            raise UsageError(f"share must be within [0, 1]: {text!r}")
        return cls(fraction=fraction)

    @property
    def enabled(self) -> bool:
        return self.every > 0 or self.fraction > 0.0

    def picks(self, index: int, rng: random.Random) -> bool:
        """Whether the item with 1-based ``index`` is picked. Draws from ``rng`` only for
        fractions, so the sequence of picks is deterministic under a seed."""
        if self.every:
            return index % self.every == 0
        if self.fraction <= 0.0:
            return False
        return rng.random() < self.fraction
