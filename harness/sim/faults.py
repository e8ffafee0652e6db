"""Deterministic fault picks (protocol.md §8.1 item 3).

Each kind of pick has its own PRNG stream seeded with ``--seed`` and the process index, so
upgrades are drawn in arrival order, sessions in creation order and turns in message order,
and one stream never shifts another: the same seed and arrivals give the same faults.
"""

from __future__ import annotations

import enum
import random

from harness.sim.config import SimConfig


def seeded_rng(config: SimConfig, stream: str) -> random.Random:
    """A PRNG for one named stream of one process (latency, quick replies, faults...)."""
    return random.Random(f"{config.seed}:{config.process_index}:{stream}")


class UpgradeFault(enum.Enum):
    NONE = "none"
    REJECT = "reject"
    SLOW = "slow"


class SessionFault(enum.Enum):
    NONE = "none"
    CLOSE = "close"
    DROP = "drop"


class FaultPicker:
    """Draws the fault, if any, of each upgrade, session and turn."""

    __slots__ = (
        "_config",
        "_session_rng",
        "_sessions",
        "_turn_rng",
        "_turns",
        "_upgrade_rng",
        "_upgrades",
    )

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._upgrade_rng = seeded_rng(config, "fault-upgrade")
        self._session_rng = seeded_rng(config, "fault-session")
        self._turn_rng = seeded_rng(config, "fault-turn")
        self._upgrades = 0
        self._sessions = 0
        self._turns = 0

    def upgrade(self) -> UpgradeFault:
        """The fault of the next upgrade in arrival order: reject beats slow (§8.2 item 5)."""
        faults = self._config.faults
        self._upgrades += 1
        rejected = faults.reject.picks(self._upgrades, self._upgrade_rng)
        slow = faults.slow_upgrade.picks(self._upgrades, self._upgrade_rng)
        if rejected:
            return UpgradeFault.REJECT
        return UpgradeFault.SLOW if slow else UpgradeFault.NONE

    def session(self) -> SessionFault:
        """The fault of the next new session in creation order: drop beats close."""
        faults = self._config.faults
        self._sessions += 1
        dropped = faults.drop.picks(self._sessions, self._session_rng)
        closed = faults.close.picks(self._sessions, self._session_rng)
        if dropped:
            return SessionFault.DROP
        return SessionFault.CLOSE if closed else SessionFault.NONE

    def turn(self) -> bool:
        """Whether the next turn (in message order) gets two frames swapped (§8.4 item 27)."""
        reorder = self._config.faults.reorder
        if not reorder.enabled:
            return False
        self._turns += 1
        return reorder.picks(self._turns, self._turn_rng)
