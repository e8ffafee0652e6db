"""Bot latency models (protocol.md §8.1 ``--bot-latency``), drawn from a seeded PRNG."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from harness.errors import UsageError
from harness.protocol.units import parse_duration

#: z-score of the 99th percentile of a standard normal (sigma = ln(p99/median) / 2.3263, §8.1).
_Z99 = 2.3263


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """A latency distribution in seconds: ``fixed``, ``uniform`` or ``lognormal``.

    For ``fixed`` ``a`` is the value; for ``uniform`` [a, b]; for ``lognormal`` a = median,
    b = p99.
    """

    kind: str
    a: float
    b: float = 0.0
    spec: str = ""

    @classmethod
    def parse(cls, spec: str) -> LatencyModel:
        """Parse ``D``, ``fixed:D``, ``uniform:D1,D2`` or ``lognormal:median=D,p99=D``.

        Raises:
            UsageError: the spec is malformed or its bounds are inconsistent.
        """
        kind, sep, rest = spec.strip().partition(":")
        kind = kind.lower()
        if not sep:
            return cls("fixed", parse_duration(kind), spec=spec)
        if kind == "fixed":
            return cls("fixed", parse_duration(rest), spec=spec)
        if kind == "uniform":
            low, comma, high = rest.partition(",")
            if not comma:
                raise UsageError(f"--bot-latency {spec!r}: use uniform:D1,D2")
            a, b = parse_duration(low), parse_duration(high)
            if b < a:
                raise UsageError(f"--bot-latency {spec!r}: D2 must be >= D1")
            return cls("uniform", a, b, spec=spec)
        if kind == "lognormal":
            return cls._parse_lognormal(spec, rest)
        raise UsageError(f"--bot-latency {spec!r}: kind must be fixed, uniform or lognormal")

    @classmethod
    def _parse_lognormal(cls, spec: str, rest: str) -> LatencyModel:
        params: dict[str, float] = {}
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or key.strip() not in ("median", "p99"):
                raise UsageError(f"--bot-latency {spec!r}: use lognormal:median=D,p99=D")
            params[key.strip()] = parse_duration(value)
        if set(params) != {"median", "p99"}:
            raise UsageError(f"--bot-latency {spec!r}: needs both median= and p99=")
        median, p99 = params["median"], params["p99"]
        if not 0 < median <= p99:
            raise UsageError(f"--bot-latency {spec!r}: needs 0 < median <= p99")
        return cls("lognormal", median, p99, spec=spec)

    def draw(self, rng: random.Random) -> float:
        """One latency in seconds."""
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
