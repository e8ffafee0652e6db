"""guests.csv: which virtual user and scenario each guest token belonged to, for joins with
the deployment's own logs and analytics (the tokens are the ones the harness sent; the
same user and scenario are also on every message as customAttributes, see the README)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import step_mask


def guests_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per guest token: session_token, user_id, worker_id, scenario, first_seen
    (UTC ISO), connections (connect attempts with that token)."""
    connects = events[step_mask(events, s.STEP_CONNECT) & events[s.SESSION_TOKEN].notna()]
    columns = ["session_token", "user_id", "worker_id", "scenario", "first_seen", "connections"]
    if connects.empty:
        return pd.DataFrame(columns=columns)
    token = connects[s.SESSION_TOKEN].astype(str)
    grouped = connects.groupby(token, sort=False)
    first = grouped[s.TS_NS].min()
    table = pd.DataFrame(
        {
            "session_token": first.index,
            "user_id": grouped[s.USER_ID].first().to_numpy().astype(np.int64),
            "worker_id": grouped[s.WORKER_ID].first().astype(str).to_numpy(),
            "scenario": _scenarios(events).reindex(first.index).to_numpy(),
            "first_seen": pd.to_datetime(first.to_numpy(), unit="ns", utc=True).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "connections": grouped.size().to_numpy(),
        }
    )
    return table.sort_values("first_seen", ignore_index=True)


def _scenarios(events: pd.DataFrame) -> pd.Series:
    """The scenario(s) each token ran, joined with '|' (the default flow: empty)."""
    if s.SCENARIO not in events:
        return pd.Series(dtype=object)
    rows = events[events[s.SCENARIO].notna() & events[s.SESSION_TOKEN].notna()]
    if rows.empty:
        return pd.Series(dtype=object)
    pairs = pd.DataFrame(
        {"token": rows[s.SESSION_TOKEN].astype(str), "scenario": rows[s.SCENARIO].astype(str)}
    ).drop_duplicates()
    return pairs.groupby("token", sort=False)["scenario"].agg("|".join)
