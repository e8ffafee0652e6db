"""The run directory and its ``run.json`` (arguments, versions, host, start/end).

``run.json`` is written when the run starts and rewritten when it ends, each time atomically,
so a run killed halfway still leaves a readable file (without ``ended``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import __version__
from harness.record import schema as s

#: Argument names whose values are never written anywhere (auth codes, JWTs, passwords).
_SECRET_NAME = re.compile(r"(?i)(token|secret|passw|auth|jwt|cookie|api[_-]?key|(^|[_-])code$)")
_REDACTED = "<redacted>"
_VERSIONED = ("locust", "gevent", "websocket-client", "websockets", "pyarrow", "orjson", "wsaccel")


def utc_now_iso() -> str:
    """Wall-clock now as ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.678Z``)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def default_run_dir(base: Path = Path("reports")) -> Path:
    """``reports/<UTC timestamp>-<shortid>``: sortable by time, unique per run."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return base / f"{stamp}-{secrets.token_hex(3)}"


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Replace the value of any secret-looking option (``--auth-code X``, ``--x-token=Y``)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(_REDACTED)
            hide_next = False
            continue
        if arg.startswith("--") and _SECRET_NAME.search(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + _REDACTED)
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Parsed options as JSON-safe values, secret-looking names redacted."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key.startswith("_"):
            continue
        if _SECRET_NAME.search(key) and value not in (None, False, ""):
            out[key] = _REDACTED
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, bool | int | float | str) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def versions() -> dict[str, str]:
    """Versions of the harness, Python and the libraries that shape the measurements."""
    found = {"harness": __version__, "python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(slots=True)
class RunInfo:
    """What ``run.json`` holds; ``write`` may be called any number of times."""

    run_dir: Path
    host: str | None
    options: dict[str, Any]
    argv: list[str] = field(default_factory=lambda: redact_argv(sys.argv))
    started: str = field(default_factory=utc_now_iso)
    ended: str | None = None
    simulator_summary: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def as_json(self) -> dict[str, Any]:
        opts = redact_options(self.options)
        return {
            "schema_version": s.SCHEMA_VERSION,
            "run_id": self.run_id,
            "started": self.started,
            "ended": self.ended,
            "host": self.host,
            "users": opts.get("num_users"),
            "spawn_rate": opts.get("spawn_rate"),
            "run_time_s": opts.get("run_time"),
            "shape": opts.get("shape"),
            "harness_version": __version__,
            "versions": versions(),
            "argv": self.argv,
            "options": opts,
            "simulator_summary": self.simulator_summary,
            **self.extra,
        }

    def write(self) -> Path:
        """Write ``run_dir/run.json`` atomically."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / s.RUN_JSON
        tmp = self.run_dir / f".{s.RUN_JSON}.tmp"
        tmp.write_text(json.dumps(self.as_json(), indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
        return path
