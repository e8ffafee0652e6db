"""The local Guest API simulator (asyncio + websockets), run in its own process(es).

protocol.md §8 is its contract. Modules, one job each:

- ``cli``: ``harness sim`` switches → frozen ``config.SimConfig``; ``launcher``: start it as a
  child process and wait for its readiness line.
- ``multiproc``: one process, or N on one port (SO_REUSEPORT); ``tls``: wss:// and trustme.
- ``server``: upgrade checks, per-socket timers, shutdown; ``connection``: frames answered
  straight from ``data_received``.
- ``handlers``: action dispatch in the §8.3 check order; ``attachments``; ``jwt``.
- ``sessions``: sockets, sessions, fan-out, socket limit, TTL sweep, batched writes.
- ``bot``: replies, order, typing, quick replies, ReadOnly end, fault injection after replies.
- ``latency``, ``ratelimit``, ``faults``: seeded latency models, sliding windows, fault picks.
- ``clock`` and ``wire``: message times and ids; hot-path encoders held to the codec's bytes.
- ``stats``: counters and the ``SUMMARY {json}`` line.
"""
