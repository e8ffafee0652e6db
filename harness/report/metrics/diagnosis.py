"""Diagnosis lines for close codes, only where the evidence supports one (protocol.md §6, §9).

Rules (each yields at most one line):
- refused upgrade: connects rejected with HTTP 403 (a browser reports them as a silent close
  1006): deploymentId unknown or Origin not allowed (§9 #1-2).
- idle timeout: server-side closes (1001/1006) whose idle time at close clusters (§9 #8).
- max connection age: other server-side closes whose age clusters (§9 #9).
- 1011 burst: a window holding >= 3 closes 1011 and >= 5x the run's mean per window (§6).
- rate limit: closes 1013 or with a reason naming a rate limit, and upgrades refused with
  HTTP 429 (§9 #12).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.protocol.refusals import FORBIDDEN, RefusalCause, forbidden_cause
from harness.record import schema as s
from harness.report.columns import AGE_S, CENSORED, IDLE_S
from harness.report.metrics.common import step_mask
from harness.report.metrics.survival import detect_cluster

#: A close within this long of the last request is not "after an idle time".
MIN_IDLE_S = 1.0
_RATE_REASON = re.compile(r"rate|too many|429|throttl", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    kind: str
    text: str
    evidence: dict[str, float | int | str] = field(default_factory=dict)
    value_s: float | None = None


def _refusal_causes(events: pd.DataFrame, rejected: np.ndarray) -> Counter[RefusalCause]:
    """Refused upgrades per cause, from the body quoted in each connect row's ``detail``."""
    if s.DETAIL not in events.columns:
        return Counter({FORBIDDEN: int(rejected.sum())})
    details = events[s.DETAIL][rejected].astype(object).fillna("").value_counts()
    causes: Counter[RefusalCause] = Counter()
    for detail, count in details.items():
        causes[forbidden_cause(str(detail))] += int(count)
    return causes


def refused_upgrades(events: pd.DataFrame) -> Diagnosis | None:
    con = step_mask(events, s.STEP_CONNECT)
    rejected = con & (
        np.asarray(events[s.ERROR] == "http_403", dtype=bool)
        | (events[s.HTTP_STATUS].to_numpy() == 403)
    )
    closes_1006 = step_mask(events, s.STEP_CLOSE) & (events[s.CLOSE_CODE].to_numpy() == 1006)
    after_403 = int((closes_1006 & (events[s.HTTP_STATUS].to_numpy() == 403)).sum())
    n = int(rejected.sum())
    if n + after_403 == 0:
        return None
    causes = _refusal_causes(events, rejected) + Counter({FORBIDDEN: after_403})
    ranked = sorted(causes.items(), key=lambda item: (-item[1], item[0].key))
    text = (
        f"{n + after_403} connection(s) refused at the upgrade with HTTP 403 (a browser shows "
        "this only as close 1006): "
        + "; ".join(f"{count} x {c.cause}: {c.fix} ({c.docs})" for c, count in ranked)
    )
    evidence: dict[str, float | int | str] = {"http_403": n, "close_1006_after_403": after_403}
    evidence |= {c.key: count for c, count in ranked}
    return Diagnosis("refused_upgrade_403", text, evidence)


def idle_timeout(life: pd.DataFrame) -> Diagnosis | None:
    usable = ~life[CENSORED] & ~life["close_before_activity"].astype(bool)
    server = life[usable & life["close_code"].isin([1001, 1006]) & life[IDLE_S].notna()]
    idle = server[IDLE_S].to_numpy(float)
    found = detect_cluster(idle[idle >= MIN_IDLE_S], abs_tol=0.25)
    if found is None:
        return None
    value, n = found
    text = (
        f"{n} close(s) 1001/1006 after a steady idle time: idle timeout near {value:.1f} s "
        "(send echo every 1-5 min; resume on a drop: "
        "docs/troubleshooting.md#closes-after-a-quiet-period)"
    )
    return Diagnosis("idle_timeout", text, {"closes": n, "idle_s": value}, value)


def max_age(life: pd.DataFrame, idle: Diagnosis | None) -> Diagnosis | None:
    usable = ~life[CENSORED] & ~life["close_before_activity"].astype(bool)
    closed = life[usable & (life["initiator"] != s.INITIATOR_CLIENT)]
    if idle is not None and idle.value_s is not None:
        near = (closed[IDLE_S] - idle.value_s).abs() <= max(0.05 * idle.value_s, 1.0)
        closed = closed[~near.fillna(False)]
    found = detect_cluster(closed[AGE_S].to_numpy(float))
    if found is None or found[0] < 1.0:
        return None
    value, n = found
    text = (
        f"{n} server-side close(s) clustered at one connection age: max connection age near "
        f"{value:.1f} s (reconnect with the same token: "
        "docs/troubleshooting.md#closes-at-one-connection-age)"
    )
    return Diagnosis("max_age", text, {"closes": n, "age_s": value}, value)


def bursts_1011(events: pd.DataFrame, t0_ns: int, window_s: float = 10.0) -> Diagnosis | None:
    mask = step_mask(events, s.STEP_CLOSE) & (events[s.CLOSE_CODE].to_numpy() == 1011)
    if mask.sum() < 3:
        return None
    ts = events[s.TS_NS].to_numpy()
    win = (ts[mask] - t0_ns) // int(window_s * 1e9)
    per = np.bincount(win, minlength=int((ts.max() - t0_ns) // int(window_s * 1e9)) + 1)
    burst = np.flatnonzero((per >= 3) & (per >= 5 * per.mean()))
    if burst.size == 0:
        return None
    starts = ", ".join(f"+{w * window_s:.0f} s ({per[w]})" for w in burst[:5])
    text = (
        f"1011 burst(s): {int(per[burst].sum())} of {int(mask.sum())} internal-error closes in "
        f"{burst.size} {window_s:.0f}-s window(s) starting {starts}: server incident or "
        "overload (back off and resume; report bursts: docs/troubleshooting.md#bursts-of-1011)"
    )
    return Diagnosis(
        "burst_1011", text, {"windows": int(burst.size), "closes": int(per[burst].sum())}
    )


def rate_limit_closes(events: pd.DataFrame) -> Diagnosis | None:
    cl = events.loc[step_mask(events, s.STEP_CLOSE), [s.CLOSE_CODE, s.CLOSE_REASON]]
    reason = cl[s.CLOSE_REASON].astype(object).fillna("").astype(str)
    by_close = int(((cl[s.CLOSE_CODE] == 1013) | reason.str.contains(_RATE_REASON)).sum())
    con = step_mask(events, s.STEP_CONNECT)
    http_429 = int(
        (
            con
            & (
                np.asarray(events[s.ERROR] == "http_429", dtype=bool)
                | (events[s.HTTP_STATUS].to_numpy() == 429)
            )
        ).sum()
    )
    if by_close + http_429 == 0:
        return None
    text = (
        f"rate limiting: {by_close} close(s) 1013 or with a rate-limit reason, {http_429} "
        "upgrade(s) refused with HTTP 429 (keep new connections under 1000/min; honour "
        "retryAfter: docs/troubleshooting.md#rate-limiting-429-1013)"
    )
    return Diagnosis("rate_limit", text, {"closes": by_close, "http_429": http_429})


def diagnose(events: pd.DataFrame, life: pd.DataFrame, t0_ns: int) -> list[Diagnosis]:
    """Every diagnosis the evidence supports, in a fixed order."""
    idle = idle_timeout(life)
    found = [
        refused_upgrades(events),
        idle,
        max_age(life, idle),
        bursts_1011(events, t0_ns),
        rate_limit_closes(events),
    ]
    return [d for d in found if d is not None]
