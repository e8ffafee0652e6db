"""The protocol core is pure: importing it pulls in no gevent, locust or websocket library."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import harness.protocol.codec, harness.protocol.frames, harness.protocol.codes
import harness.protocol.limits, harness.protocol.units, harness.errors
import pkgutil, importlib, harness.protocol as p
for m in pkgutil.iter_modules(p.__path__):
    importlib.import_module("harness.protocol." + m.name)
bad = sorted(n for n in sys.modules if n.split(".")[0] in
             {"gevent", "locust", "websocket", "websockets", "asyncio", "socket", "pandas"})
print(",".join(bad))
"""


def test_protocol_imports_no_io_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
