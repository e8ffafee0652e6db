"""Close codes: counts, share, name and meaning of each code (protocol.md §6).

Every established connection that ended has exactly one ``close`` row (design.md); 1006
means no close frame was received.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.protocol.codes import describe_close_code
from harness.record import schema as s
from harness.report.metrics.common import step_mask

CLOSE_TABLE_COLUMNS = (
    "close_code",
    "name",
    "meaning",
    "count",
    "share",
    "client",
    "server",
    "none",
)


def close_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The close rows that carry a code (a close row without one is counted as 1006)."""
    rows = events.loc[step_mask(events, s.STEP_CLOSE)]
    codes = rows[s.CLOSE_CODE].fillna(1006).astype(np.int64)
    return rows.assign(**{s.CLOSE_CODE: codes})


def close_code_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per close code: name, meaning, count, share of all closes, count by initiator."""
    rows = close_rows(events)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CLOSE_TABLE_COLUMNS})
    initiator = rows[s.CLOSE_INITIATOR].astype(object).fillna(s.INITIATOR_NONE).astype(str)
    frame = pd.DataFrame({"close_code": rows[s.CLOSE_CODE].to_numpy(), "who": initiator})
    counts = frame.groupby("close_code").size()
    by_who = frame.groupby(["close_code", "who"]).size().unstack(fill_value=0)
    table = pd.DataFrame({"close_code": counts.index.astype(np.int64)})
    table["name"] = [describe_close_code(int(c)).name for c in table["close_code"]]
    table["meaning"] = [describe_close_code(int(c)).meaning for c in table["close_code"]]
    table["count"] = counts.to_numpy(np.int64)
    table["share"] = table["count"] / table["count"].sum()
    for who in (s.INITIATOR_CLIENT, s.INITIATOR_SERVER, s.INITIATOR_NONE):
        col = by_who[who] if who in by_who.columns else pd.Series(0, index=counts.index)
        table[who] = col.reindex(counts.index, fill_value=0).to_numpy(np.int64)
    return table.sort_values(
        ["count", "close_code"], ascending=[False, True], ignore_index=True
    ).loc[:, list(CLOSE_TABLE_COLUMNS)]
