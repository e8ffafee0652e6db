"""Parsing of the human units used by every command line: durations, shares, distributions.

protocol.md §8.1: durations take ``ms``/``s``/``m``/``h`` and a bare number means seconds;
a SHARE is a fraction (a seeded draw) or ``every:N`` (exactly every N-th); a distribution of
durations is ``D``, ``fixed:D``, ``uniform:D1,D2`` or ``lognormal:median=D,p99=D`` (also
written ``uniform(D1,D2)`` / ``lognormal(median=D,p99=D)`` in conversation scripts).
"""

from __future__ import annotations

import math
import random
import re
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


#: z-score of the 99th percentile of a standard normal (sigma = ln(p99/median) / 2.3263, §8.1).
_Z99 = 2.3263
_CALL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


@dataclass(frozen=True, slots=True)
class Distribution:
    """A distribution of durations in seconds: ``fixed``, ``uniform`` or ``lognormal``.

    For ``fixed`` ``a`` is the value; for ``uniform`` [a, b]; for ``lognormal`` a = median,
    b = p99 (mu = ln median, sigma = ln(p99/median) / 2.3263).
    """

    kind: str
    a: float
    b: float = 0.0
    spec: str = ""

    @classmethod
    def parse(cls, spec: str, name: str = "--bot-latency") -> Distribution:
        """Parse ``D``, ``fixed:D``, ``uniform:D1,D2``, ``lognormal:median=D,p99=D``, or the
        call forms ``uniform(D1,D2)`` / ``lognormal(median=D,p99=D)``; ``name`` is the option
        or key quoted in errors.

        Raises:
            UsageError: the spec is malformed or its bounds are inconsistent.
        """
        text = spec.strip()
        call = _CALL.match(text)
        kind, sep, rest = (call[1], ":", call[2]) if call else text.partition(":")
        kind = kind.strip().lower()
        try:
            if not sep:
                return cls("fixed", parse_duration(kind), spec=spec)
            if kind == "fixed":
                return cls("fixed", parse_duration(rest), spec=spec)
            if kind == "uniform":
                low, comma, high = rest.partition(",")
                if not comma:
                    raise UsageError("use uniform:D1,D2")
                a, b = parse_duration(low), parse_duration(high)
                if b < a:
                    raise UsageError("D2 must be >= D1")
                return cls("uniform", a, b, spec=spec)
            if kind == "lognormal":
                return cls._lognormal(spec, rest)
        except UsageError as exc:
            raise UsageError(f"{name} {spec!r}: {exc}") from None
        raise UsageError(f"{name} {spec!r}: kind must be fixed, uniform or lognormal")

    @classmethod
    def _lognormal(cls, spec: str, rest: str) -> Distribution:
        params: dict[str, float] = {}
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in ("median", "p99"):
                raise UsageError("use lognormal:median=D,p99=D")
            params[key.strip()] = parse_duration(value)
        if set(params) != {"median", "p99"}:
            raise UsageError("needs both median= and p99=")
        median, p99 = params["median"], params["p99"]
        if not 0 < median <= p99:
            raise UsageError("needs 0 < median <= p99")
        return cls("lognormal", median, p99, spec=spec)

    def draw(self, rng: random.Random) -> float:
        """One duration in seconds."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        mu = math.log(self.a)
        sigma = math.log(self.b / self.a) / _Z99
        return rng.lognormvariate(mu, sigma)

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0.0
