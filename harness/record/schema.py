"""The raw event schema (design.md "Raw event schema"): one row per measured thing.

This module is the contract between the load side (which writes shards) and the reports
(which read them). Column names are constants here and nowhere else.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final = 1

# Columns.
RUN_ID: Final = "run_id"
WORKER_ID: Final = "worker_id"
USER_ID: Final = "user_id"
SESSION_TOKEN: Final = "session_token"
CONN_ID: Final = "conn_id"
STEP: Final = "step"
TS_NS: Final = "ts_ns"
LATENCY_US: Final = "latency_us"
INTENDED_NS: Final = "intended_ns"
OK: Final = "ok"
ERROR: Final = "error"
HTTP_STATUS: Final = "http_status"
CLOSE_CODE: Final = "close_code"
CLOSE_INITIATOR: Final = "close_initiator"
CLOSE_REASON: Final = "close_reason"
DETAIL: Final = "detail"
BYTES_OUT: Final = "bytes_out"
BYTES_IN: Final = "bytes_in"
#: botAnswer rows: how many outbound messages the bot's answer had.
ANSWER_MESSAGES: Final = "answer_messages"
#: Scripted runs (``--script``): the scenario's name and the 1-based step of the script that
#: the row belongs to (null outside a script, or for rows of no step: connect, close, echo).
SCENARIO: Final = "scenario"
SCRIPT_STEP: Final = "script_step"
# Generator health samples (step == "generator"): the load side's own state, so a report can
# tell server latency from generator queueing (DEVELOPERS.md rule 5).
CPU_PCT: Final = "cpu_pct"
RSS_BYTES: Final = "rss_bytes"
ACTIVE_CONNECTIONS: Final = "active_connections"

# Steps.
STEP_CONNECT: Final = "connect"
STEP_CONFIGURE: Final = "configureSession"
STEP_ON_MESSAGE: Final = "onMessage"
STEP_BOT_REPLY: Final = "botReply"
STEP_BOT_ANSWER: Final = "botAnswer"  # send → last message of the bot's answer
STEP_PRESENCE: Final = "presence"
#: Scripted runs: a ``waitFor…`` step, timed from the send before it; and one row per
#: conversation at its end (ok = completed; error = why it stopped; latency = its duration).
STEP_SCRIPT_REPLY: Final = "reply"
STEP_SCENARIO: Final = "scenario"
STEP_ECHO: Final = "echo"
STEP_TYPING: Final = "typing"
STEP_CLOSE: Final = "close"
STEP_ERROR: Final = "error"
STEP_INTEGRITY: Final = "integrity"  # error = one of the INTEGRITY_* categories below
STEP_GENERATOR: Final = "generator"  # latency_us = event-loop lag; cpu_pct, rss_bytes set
LATENCY_STEPS: Final = (
    STEP_CONNECT,
    STEP_CONFIGURE,
    STEP_ON_MESSAGE,
    STEP_BOT_REPLY,
    STEP_BOT_ANSWER,
    STEP_ECHO,
)

# Error categories (column ``error``); ``http_<status>`` and ``server_error_<code>`` are open.
ERR_TIMEOUT: Final = "timeout"
ERR_REFUSED: Final = "refused"
ERR_TLS: Final = "tls"
ERR_DNS: Final = "dns"
ERR_LOCAL_PORTS: Final = "local_ports"  # the generator ran out of ephemeral ports
ERR_PROTOCOL: Final = "protocol"
ERR_RATE_LIMITED: Final = "rate_limited"
ERR_CLOSED: Final = "closed"
INTEGRITY_DUPLICATE: Final = "duplicate"
INTEGRITY_OUT_OF_ORDER: Final = "out_of_order"
INTEGRITY_EXTRA_REPLY: Final = "extra_reply"  # runs before botAnswer: a 2nd+ message of a turn
INTEGRITY_LATE_MESSAGE: Final = "late_message"  # a bot message after its answer had closed
INTEGRITY_UNSOLICITED: Final = "unsolicited"
INTEGRITY_LOST: Final = "lost"
INTEGRITY_REORDERED: Final = "reordered"  # scripts: re-sorted by channel.time within the window
# Why a scripted conversation stopped (``scenario`` rows, column ``error``; ``closed`` and
# ``timeout`` as above): a reply did not match, the bot ended the conversation, a server error.
ERR_MISMATCH: Final = "mismatch"
ERR_DISCONNECTED: Final = "disconnected"
ERR_STOPPED: Final = "stopped"  # the run ended mid-conversation

# Close initiators.
INITIATOR_CLIENT: Final = "client"
INITIATOR_SERVER: Final = "server"
INITIATOR_NONE: Final = "none"

EVENT_SCHEMA: Final = pa.schema(
    [
        pa.field(RUN_ID, pa.string()),
        pa.field(WORKER_ID, pa.string()),
        pa.field(USER_ID, pa.int64()),
        pa.field(SESSION_TOKEN, pa.string()),
        pa.field(CONN_ID, pa.int64()),
        pa.field(STEP, pa.string()),
        pa.field(TS_NS, pa.int64()),
        pa.field(LATENCY_US, pa.float64()),
        pa.field(INTENDED_NS, pa.int64()),
        pa.field(OK, pa.bool_()),
        pa.field(ERROR, pa.string()),
        pa.field(HTTP_STATUS, pa.int64()),
        pa.field(CLOSE_CODE, pa.int64()),
        pa.field(CLOSE_INITIATOR, pa.string()),
        pa.field(CLOSE_REASON, pa.string()),
        pa.field(DETAIL, pa.string()),
        pa.field(BYTES_OUT, pa.int64()),
        pa.field(BYTES_IN, pa.int64()),
        pa.field(ANSWER_MESSAGES, pa.int64()),
        pa.field(SCENARIO, pa.string()),
        pa.field(SCRIPT_STEP, pa.int64()),
        pa.field(CPU_PCT, pa.float64()),
        pa.field(RSS_BYTES, pa.int64()),
        pa.field(ACTIVE_CONNECTIONS, pa.int64()),
    ]
)

COLUMNS: Final = tuple(EVENT_SCHEMA.names)

#: Free-text columns are truncated to this many characters before they are recorded.
MAX_TEXT_CHARS: Final = 500

# Run directory layout.
EVENTS_DIR: Final = "events"
RUN_JSON: Final = "run.json"
SHARD_GLOB: Final = "*.parquet"
