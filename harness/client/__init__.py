"""Gevent WebSocket guest client: the only package that imports websocket-client.

- ``transport``: one WebSocket (TCP/TLS/upgrade/read timeouts, rejected-upgrade capture, the
  reader loop, close capture; 1006 when no close frame). The websocket-client boundary.
- ``guest``: ``GuestClient``, the guest flow on top (correlation via
  ``harness.protocol.session``, waits with deadlines, heartbeat, one ``StepOutcome`` per step).
- ``options`` / ``results`` / ``outcomes``: frozen configuration, reported rows, and the mapping
  of settled requests to rows and exceptions.
- ``wire``: hot-path frame building and StructuredMessage decoding, checked against the codec.
- ``heartbeat``: the echo timer.

Importing it has no side effects (no monkey-patching; see tests/client/conftest.py).
"""
