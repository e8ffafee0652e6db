"""Connection lifetimes, the survival curve (time to close, by code) and value clusters.

A connection is identified by (worker_id, user_id, session_token, conn_id): a Locust user
runs many conversations, each with a new token whose connections count from 1. Its age at
close is the close row's ``ts_ns`` minus the connect row's ``ts_ns``; its idle time at close
is measured from the end of its last request (``ts_ns`` + latency). Connections still open
at the end of the run are censored at the last event (Kaplan-Meier).

Kept sessions (``--session-mode keep``): the harness never ends a kept session on purpose
while its user runs; it closes the socket (client close 1000) only when Locust stops the user,
at the end of the run or when a shape lowers the user count. Such a close is the end of the
observation, not a death: it is censored at its close time. It is recognised per user
(worker_id, user_id): a client-initiated 1000 close after which that user attempted no other
connect. A client 1000 close that the same user follows with a new connect (after a
``ConnectionClosedEvent``, or a failed configureSession) stays a close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.columns import AGE_S, CENSORED, CLOSE_NS, CONN_KEY, CONNECT_NS, IDLE_S
from harness.report.metrics.common import step_mask

_P = np.uint64(0x9E3779B97F4A7C15)
ACTIVITY_STEPS = (s.STEP_CONFIGURE, s.STEP_ON_MESSAGE, s.STEP_BOT_REPLY, s.STEP_ECHO, s.STEP_TYPING)


def _codes(col: pd.Series) -> np.ndarray:
    """Integer identity of each value, equal across subsets of one frame: categorical codes
    (-1 = null), else a value hash (never negative-coded, so no token filter is tried)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return np.asarray(col.cat.codes.to_numpy(np.int64))
    hashed = pd.util.hash_pandas_object(col, index=False).to_numpy(np.uint64)
    return np.asarray(hashed.view(np.int64) | np.int64(-(2**62)), dtype=np.int64)


def conn_keys(events: pd.DataFrame) -> np.ndarray:
    """A 64-bit polynomial hash of (worker, user, token, conn) per row; 0 where conn_id is
    null."""
    conn = events[s.CONN_ID].to_numpy(np.float64)
    user = np.nan_to_num(events[s.USER_ID].to_numpy(np.float64), nan=-1.0)
    with np.errstate(over="ignore"):
        key = (_codes(events[s.WORKER_ID]) + 2).astype(np.uint64)
        key = key * _P + (user + 2).astype(np.uint64)
        if s.SESSION_TOKEN in events.columns:
            key = key * _P + (_codes(events[s.SESSION_TOKEN]) + 2).astype(np.uint64)
        key = key * _P + (np.nan_to_num(conn, nan=0.0) + 2).astype(np.uint64)
    key[np.isnan(conn)] = 0
    return np.asarray(key, dtype=np.uint64)


def user_keys(events: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of (worker, user) per row: one Locust user across its connections."""
    user = np.nan_to_num(events[s.USER_ID].to_numpy(np.float64), nan=-1.0)
    with np.errstate(over="ignore"):
        key = (_codes(events[s.WORKER_ID]) + 2).astype(np.uint64)
        key = key * _P + (user + 2).astype(np.uint64)
    return np.asarray(key, dtype=np.uint64)


def _closed_by_harness(events: pd.DataFrame, closes: pd.DataFrame) -> np.ndarray:
    """Kept sessions: client 1000 closes after which their user attempted no connect (the
    module docstring's rule). ``closes`` has user, close_ns, close_code, initiator."""
    attempts = step_mask(events, s.STEP_CONNECT)
    ts = events[s.TS_NS].to_numpy()[attempts]
    last_attempt = pd.Series(ts).groupby(user_keys(events.iloc[np.flatnonzero(attempts)])).max()
    after = closes["user"].map(last_attempt).to_numpy(np.float64)
    clean = (closes["initiator"] == s.INITIATOR_CLIENT) & (closes["close_code"] == 1000)
    return np.asarray(clean.to_numpy(bool) & ~(after > closes[CLOSE_NS].to_numpy(np.float64)))


def _last_activity(events: pd.DataFrame, wanted: pd.DataFrame) -> pd.Series:
    """End of the last request (ts + latency, epoch ns) per wanted connection key.

    ``wanted`` has the keys and token codes of the connections asked about. Only their rows
    are hashed: a token-code filter (cheap int compare) first when tokens were recorded.
    """
    if wanted.empty:
        return pd.Series(dtype=np.int64)
    rows = np.zeros(len(events), dtype=bool)
    for step in ACTIVITY_STEPS:
        rows |= step_mask(events, step)
    tokens = _codes(events[s.SESSION_TOKEN]) if s.SESSION_TOKEN in events.columns else None
    if tokens is not None and (wanted["token"] >= 0).all():
        rows &= pd.Series(tokens, copy=False).isin(wanted["token"].to_numpy()).to_numpy()
    idx = np.flatnonzero(rows)
    sub = events.iloc[idx]
    keys = conn_keys(sub)
    keep = pd.Series(keys, copy=False).isin(wanted[CONN_KEY].to_numpy(np.uint64)).to_numpy()
    lat_ns = np.nan_to_num(sub[s.LATENCY_US].to_numpy()[keep], nan=0.0) * 1000.0
    end = sub[s.TS_NS].to_numpy()[keep] + lat_ns.astype(np.int64)
    return pd.Series(end).groupby(keys[keep]).max()


def _ends(events: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Keys, token codes and timestamps of the masked (connect or close) rows."""
    sub = events.iloc[np.flatnonzero(mask)]
    tokens = (
        _codes(sub[s.SESSION_TOKEN]) if s.SESSION_TOKEN in sub.columns else np.full(len(sub), -1)
    )
    return pd.DataFrame(
        {CONN_KEY: conn_keys(sub), "token": tokens, "ts": sub[s.TS_NS].to_numpy()}, index=sub.index
    )


def connection_lifetimes(
    events: pd.DataFrame, run_end_ns: int, *, kept_sessions: bool = False
) -> pd.DataFrame:
    """One row per connection: conn_key, connect_ns, close_ns, age_s, close_code (NaN when
    still open), initiator, reason, idle_s (non-client closes only), closed_by_harness,
    censored (still open, or closed_by_harness), close_before_activity (the close row's
    timestamp precedes the last request's end).

    ``kept_sessions``: the run kept its sessions open (module docstring), so the closes the
    harness made when it stopped its users are censored.
    """
    has_conn = ~np.isnan(events[s.CONN_ID].to_numpy(np.float64))
    ok = events[s.OK].to_numpy(dtype=bool)
    con = _ends(events, step_mask(events, s.STEP_CONNECT) & ok & has_conn)
    connects = pd.DataFrame({CONN_KEY: con[CONN_KEY], CONNECT_NS: con["ts"]})
    connects = connects.drop_duplicates(CONN_KEY)
    cl_mask = step_mask(events, s.STEP_CLOSE) & has_conn
    cl = _ends(events, cl_mask)
    closes = pd.DataFrame(
        {
            CONN_KEY: cl[CONN_KEY].to_numpy(),
            "token": cl["token"].to_numpy(),
            CLOSE_NS: cl["ts"].to_numpy(),
            "close_code": events[s.CLOSE_CODE].to_numpy()[cl_mask],
            "initiator": events[s.CLOSE_INITIATOR][cl_mask].astype(object).to_numpy(),
            "reason": events[s.CLOSE_REASON][cl_mask].astype(object).to_numpy(),
            "user": user_keys(events.iloc[np.flatnonzero(cl_mask)]),
        }
    ).drop_duplicates(CONN_KEY)
    closes["close_code"] = closes["close_code"].fillna(1006.0)
    closes["closed_by_harness"] = (
        _closed_by_harness(events, closes) if kept_sessions else np.zeros(len(closes), bool)
    )
    life = connects.merge(closes.drop(columns=["user"]), on=CONN_KEY, how="outer", sort=True)
    life["closed_by_harness"] = life["closed_by_harness"].eq(True)  # NaN: still open
    life[CENSORED] = life[CLOSE_NS].isna() | life["closed_by_harness"]
    end = life[CLOSE_NS].fillna(run_end_ns).to_numpy(np.float64)
    life[AGE_S] = (end - life[CONNECT_NS].to_numpy(np.float64)) / 1e9
    server_side = ~life[CENSORED] & (life["initiator"] != s.INITIATOR_CLIENT)
    last = _last_activity(events, life.loc[server_side, [CONN_KEY, "token"]])
    since = life[CONN_KEY].map(last).fillna(life[CONNECT_NS]).to_numpy(np.float64)
    life[IDLE_S] = np.where(server_side, (end - since) / 1e9, np.nan)
    # Data check: a close stamped before the connection's last request end is not the time
    # the connection ended, so its age and idle time are unreliable.
    life["close_before_activity"] = server_side & (life[IDLE_S].to_numpy() < -0.001)
    return life.drop(columns=["token"]).reset_index(drop=True)


def survival_curve(life: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier: columns age_s, at_risk, closed, survival (one row per distinct close age,
    starting with age 0 / survival 1)."""
    known = life[life[AGE_S].notna()]
    ages = known[AGE_S].to_numpy(float)
    events_ages = np.sort(ages[~known[CENSORED].to_numpy(bool)])
    sorted_all = np.sort(ages)
    t, d = np.unique(events_ages, return_counts=True)
    at_risk = sorted_all.size - np.searchsorted(sorted_all, t, side="left")
    surv = np.cumprod(1.0 - d / np.maximum(at_risk, 1))
    return pd.DataFrame(
        {
            AGE_S: np.concatenate(([0.0], t)),
            "at_risk": np.concatenate(([sorted_all.size], at_risk)).astype(np.int64),
            "closed": np.concatenate(([0], d)).astype(np.int64),
            "survival": np.concatenate(([1.0], surv)),
        }
    )


def closes_by_code_curve(life: pd.DataFrame) -> pd.DataFrame:
    """Cumulative incidence of closes per code over age: close_code, age_s, cumulative_share
    (share of all connections closed with that code by that age; censoring-aware)."""
    curve = survival_curve(life)
    c_age, c_surv = curve[AGE_S].to_numpy(float), curve["survival"].to_numpy(float)
    c_risk = curve["at_risk"].to_numpy(float)
    closed = life[~life[CENSORED] & life[AGE_S].notna()]
    frames = []
    codes = closed["close_code"].to_numpy(float)
    ages = closed[AGE_S].to_numpy(float)
    for code in np.unique(codes):
        t, d = np.unique(ages[codes == code], return_counts=True)
        idx = np.searchsorted(c_age[1:], t) + 1  # row of age t in the curve
        inc = c_surv[idx - 1] / c_risk[idx] * d
        frames.append(
            pd.DataFrame({"close_code": int(code), AGE_S: t, "cumulative_share": np.cumsum(inc)})
        )
    if not frames:
        return pd.DataFrame({"close_code": [], AGE_S: [], "cumulative_share": []})
    return pd.concat(frames, ignore_index=True)


def detect_cluster(
    values: np.ndarray,
    *,
    rel_tol: float = 0.05,
    abs_tol: float = 1.0,
    min_count: int = 3,
    min_share: float = 0.5,
) -> tuple[float, int] | None:
    """The densest band of values (half-width max(rel_tol·v, abs_tol)) if it holds at least
    ``min_count`` values and ``min_share`` of them: returns (median of the band, size)."""
    v = np.sort(values[~np.isnan(values)])
    if v.size < min_count:
        return None
    width = 2 * np.maximum(rel_tol * v, abs_tol)
    ends = np.searchsorted(v, v + width, side="right")
    best = int(np.argmax(ends - np.arange(v.size)))
    band = v[best : ends[best]]
    if band.size < min_count or band.size < min_share * v.size:
        return None
    return float(np.median(band)), int(band.size)
