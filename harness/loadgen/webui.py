"""The harness inside Locust's own web UI, through its documented extension points (no fork).

- Four tabs next to Locust's own (``template_args`` ``extended_tabs`` / ``extended_tables``):
  exact per-step latency, close codes with name and meaning, connection outcomes with the
  failure reasons, rate-limited counts. Their rows travel in the ``/stats/requests`` JSON
  that the UI polls every 2 s, as ``extended_stats: [{"key": TAB, "data": [rows]}]``, added by
  an ``after_request`` hook from the live statistics (harness.loadgen.live). Numbers are sent
  unrounded (the tables round them for display); a missing value is ``null``.
- ``POST /swarm`` is checked by a ``before_request`` hook before Locust starts anything: a
  refused or malformed host, or a harness option that does not parse, is answered with
  ``{"success": false, "message": …}``, which the start form shows under its button.
- :func:`check_port`: the UI binds its port only after the init hooks ran, so a taken port
  would surface as two tracebacks after the run directory was made; binding it once first
  turns that into a one-line error before anything is started.

Only this module knows Flask; the numbers come from a callable returning a LiveSnapshot.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, Final

from flask import Response, jsonify, request

from harness.errors import UsageError
from harness.loadgen.live import LiveSnapshot

TAB_LATENCY: Final = "guestchat-latency"
TAB_CLOSES: Final = "guestchat-closes"
TAB_CONNECTIONS: Final = "guestchat-connections"
TAB_RATE_LIMITED: Final = "guestchat-rate-limited"

TABS: Final = [
    {"title": "Latency (exact)", "key": TAB_LATENCY},
    {"title": "Close codes", "key": TAB_CLOSES},
    {"title": "Connections", "key": TAB_CONNECTIONS},
    {"title": "Rate limited", "key": TAB_RATE_LIMITED},
]
# Row keys are single lower-case words: the UI camel-cases every key it receives.
TABLES: Final = [
    {
        "key": TAB_LATENCY,
        "structure": [
            {"key": "step", "title": "Step"},
            {"key": "samples", "title": "Samples"},
            {"key": "failures", "title": "Failures"},
            {"key": "limited", "title": "Rate limited"},
            *(
                {"key": k, "title": f"{k} ms", "round": 3}
                for k in ("p50", "p95", "p99", "mean", "max")
            ),
        ],
    },
    {
        "key": TAB_CLOSES,
        "structure": [
            {"key": "code", "title": "Close code"},
            {"key": "name", "title": "Name"},
            {"key": "meaning", "title": "Meaning"},
            {"key": "count", "title": "Count"},
            {"key": "share", "title": "Share %", "round": 2},
            {"key": "client", "title": "By client"},
            {"key": "server", "title": "By server"},
            {"key": "none", "title": "No close frame"},
        ],
    },
    {
        "key": TAB_CONNECTIONS,
        "structure": [
            {"key": "outcome", "title": "Outcome"},
            {"key": "count", "title": "Connections"},
            {"key": "share", "title": "Share of attempts %", "round": 2},
        ],
    },
    {
        "key": TAB_RATE_LIMITED,
        "structure": [
            {"key": "step", "title": "Step"},
            {"key": "count", "title": "Rate-limited (429 / 4029, not failures)"},
        ],
    },
]
_SWARM: Final = "locust.swarm"
_STATS: Final = "locust.request_stats"


def check_port(host: str, port: int) -> None:
    """Bind and release the web UI's address, as gevent will (SO_REUSEADDR).

    Raises:
        UsageError: the address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = "; pick another with --web-port" if exc.errno == errno.EADDRINUSE else ""
        where = f"{host or '*'}:{port}"
        raise UsageError(f"web UI cannot listen on {where}: {why}{hint}") from None


def _clean(value: Any) -> Any:
    """NaN is not JSON: a missing number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def tab_data(snap: LiveSnapshot) -> list[dict[str, Any]]:
    """The ``extended_stats`` entries for the four tabs."""
    latency = [
        {
            "step": st.step,
            "samples": st.count,
            "failures": st.failures,
            "limited": st.rate_limited,
            "p50": st.quantiles_ms["p50"],
            "p95": st.quantiles_ms["p95"],
            "p99": st.quantiles_ms["p99"],
            "mean": st.mean_ms,
            "max": st.max_ms,
        }
        for st in snap.steps
    ]
    total_closes = sum(c.count for c in snap.closes)
    closes = [
        {
            "code": c.code,
            "name": c.name,
            "meaning": c.meaning,
            "count": c.count,
            "share": _share(c.count, total_closes),
            **{who: c.by_initiator.get(who, 0) for who in ("client", "server", "none")},
        }
        for c in snap.closes
    ]
    conn = snap.connections
    outcomes = [("attempted", conn.attempted), ("succeeded", conn.succeeded)]
    outcomes += [(f"failed: {reason}", n) for reason, n in conn.failures_by_reason.items()]
    outcomes.append(("rate limited", conn.rate_limited))
    connections = [
        {"outcome": name, "count": n, "share": _share(n, conn.attempted)} for name, n in outcomes
    ]
    limited = [{"step": step, "count": n} for step, n in snap.rate_limited.items()]
    tables: dict[str, list[dict[str, Any]]] = {
        TAB_LATENCY: latency,
        TAB_CLOSES: closes,
        TAB_CONNECTIONS: connections,
        TAB_RATE_LIMITED: limited,
    }
    return [
        {"key": key, "data": [{k: _clean(v) for k, v in r.items()} for r in rows]}
        for key, rows in tables.items()
    ]


def install_web_ui(
    web_ui: Any,
    *,
    snapshot: Callable[[], LiveSnapshot | None],
    refuse: Callable[[Mapping[str, str]], str | None],
) -> None:
    """Add the tabs, the ``extended_stats`` hook and the start-form check to a Locust WebUI.

    ``snapshot`` gives the current live statistics (None: nothing recorded, e.g.
    ``--no-record``); ``refuse`` says why a start-form submission must be refused (None: ok).
    """
    web_ui.template_args["extended_tabs"] = TABS
    web_ui.template_args["extended_tables"] = TABLES

    def _check_swarm() -> Response | None:
        if request.endpoint != _SWARM or request.method != "POST":
            return None
        reason = refuse(request.form)
        if reason is None:
            return None
        env = web_ui.environment
        return jsonify({"success": False, "message": reason, "host": env.host})

    def _extend_stats(response: Response) -> Response:
        if request.endpoint != _STATS or not response.is_json:
            return response
        snap = snapshot()
        if snap is None:
            return response
        body = dict(response.get_json())
        body["extended_stats"] = tab_data(snap)
        response.set_data(json.dumps(body))
        return response

    web_ui.app.before_request(_check_swarm)
    web_ui.app.after_request(_extend_stats)
