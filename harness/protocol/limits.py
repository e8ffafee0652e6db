"""The Guest API's documented limits and timings (protocol.md §5), as constants.

The simulator enforces these by default; the load generator paces itself within them unless
the user explicitly overrides.
"""

from __future__ import annotations

from typing import Final

MSG_RATE_PER_SESSION: Final = 5  # onMessage per session per second
MSG_RATE_WINDOW_S: Final = 1.0
REQ_RATE_PER_CONNECTION: Final = 60  # data frames per connection per minute
REQ_RATE_WINDOW_S: Final = 60.0
CONFIGURE_RATE_PER_SESSION: Final = 60  # configureSession per session per minute
CONFIGURE_RATE_WINDOW_S: Final = 60.0
ECHO_RATE_PER_CONNECTION: Final = 2  # echo per connection per minute
ECHO_RATE_WINDOW_S: Final = 60.0
CONN_RATE_PER_DEPLOYMENT: Final = 1000  # new connections per deployment per minute
CONN_RATE_WINDOW_S: Final = 60.0
SOCKETS_PER_SESSION: Final = 3
TEXT_MAX_BYTES: Final = 4096
CUSTOM_ATTRIBUTES_MAX_BYTES: Final = 2048
TYPING_COOLDOWN_S: Final = 5.0  # client-side only
SESSION_TTL_S: Final = 259_200  # 72 h
ATTACHMENT_MAX_BYTES: Final = 10 * 1024 * 1024
ATTACHMENT_NAME_MAX_CHARS: Final = 1024
PING_INTERVAL_S: Final = 15.0

# Simulator defaults where the real value is unknown (protocol.md §5, [inferred]).
SIM_IDLE_TIMEOUT_S: Final = 600.0
SIM_MAX_CONNECTION_AGE_S: Final = 7200.0
SIM_MAX_FRAME_BYTES: Final = 131_072
HARD_FRAME_CAP_BYTES: Final = 1024 * 1024

#: The shortest heartbeat interval that stays within the echo limit.
MIN_HEARTBEAT_INTERVAL_S: Final = ECHO_RATE_WINDOW_S / ECHO_RATE_PER_CONNECTION

BLOCKED_EXTENSIONS: Final = (".ade", ".adp", ".bat", ".exe", ".js")
ALLOWED_MEDIA: Final = {"inbound": {"fileTypes": [{"type": "*/*"}], "maxFileSizeKB": 10240}}
