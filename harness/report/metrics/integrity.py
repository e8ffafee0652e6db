"""Message integrity: lost, duplicate, out-of-order, late and unsolicited message counts.

The load side records one ``integrity`` row per anomaly, the category in ``error``
(harness.record.schema). A message is *lost* when its echo never came: an ``integrity`` row
``lost`` when the recorder emits one, otherwise an ``onMessage`` that timed out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.record import schema as s
from harness.report.metrics.common import step_mask

CATEGORIES = (
    s.INTEGRITY_LOST,
    s.INTEGRITY_DUPLICATE,
    s.INTEGRITY_OUT_OF_ORDER,
    s.INTEGRITY_LATE_MESSAGE,
    s.INTEGRITY_UNSOLICITED,
)


def integrity_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Columns category, count: every known category (zero-filled), then any other one."""
    rows = events.loc[step_mask(events, s.STEP_INTEGRITY), s.ERROR]
    counts = rows.astype(object).fillna("unknown").astype(str).value_counts()
    if counts.get(s.INTEGRITY_LOST, 0) == 0:
        timed_out = step_mask(events, s.STEP_ON_MESSAGE) & np.asarray(
            events[s.ERROR] == s.ERR_TIMEOUT, dtype=bool
        )
        counts[s.INTEGRITY_LOST] = int(timed_out.sum())
    names = list(CATEGORIES) + sorted(set(counts.index) - set(CATEGORIES))
    return pd.DataFrame(
        {"category": names, "count": [int(counts.get(n, 0)) for n in names]}
    ).astype({"count": np.int64})
