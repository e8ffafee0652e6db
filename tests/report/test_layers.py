"""design.md layers: the report imports only the record schema, protocol codes and refusal
causes (and the shared exception tree and gate grammar) from the rest of the harness, and
nothing from the
load side."""

from __future__ import annotations

import ast
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "harness" / "report"
ALLOWED = (
    "harness.report",
    "harness.record.schema",
    "harness.protocol.codes",
    "harness.protocol.refusals",
    "harness.errors",
    "harness.gates",
)
FORBIDDEN_TOP = {"locust", "gevent", "websocket", "websockets"}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_report_layer_imports() -> None:
    files = sorted(REPORT.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            if name.startswith("harness"):
                assert name.startswith(ALLOWED), f"{path.name} imports {name}"
            assert name.split(".")[0] not in FORBIDDEN_TOP, f"{path.name} imports {name}"
