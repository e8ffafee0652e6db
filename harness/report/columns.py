"""Column names the report adds to the raw events (raw names live in harness.record.schema).

The loader converts ``intended_ns`` into a float offset at read time: epoch nanoseconds do not
fit a float64 exactly, and a nullable int64 column costs more memory on 10 million rows.
"""

from __future__ import annotations

from typing import Final

#: ``(ts_ns - intended_ns) / 1000``: how late a step started versus its schedule, in µs;
#: NaN when the run was not open-model (coordinated-omission view, design.md).
SCHEDULE_LAG_US: Final = "schedule_lag_us"

#: Derived per-connection columns (survival.py).
CONN_KEY: Final = "conn_key"
CONNECT_NS: Final = "connect_ns"
CLOSE_NS: Final = "close_ns"
AGE_S: Final = "age_s"
IDLE_S: Final = "idle_s"
CENSORED: Final = "censored"

#: Time-series columns.
WINDOW_S: Final = "window_start_s"
