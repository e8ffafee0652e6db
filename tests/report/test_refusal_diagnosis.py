"""A refused upgrade (HTTP 403) is diagnosed by what its body names, in the report and in
``harness probe``'s ``likely:`` hint alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HandshakeRejected
from harness.loadgen.probe import connect_hint
from harness.protocol.refusals import (
    FORBIDDEN,
    MISSING_DEPLOYMENT,
    ORIGIN_NOT_ALLOWED,
    UNKNOWN_DEPLOYMENT,
    forbidden_cause,
)
from harness.record import schema as s
from harness.report.metrics.diagnosis import refused_upgrades

from .conftest import ev, frame
from .test_report_e2e import _locust


def _rejected(t: float, body: str) -> dict[str, object]:
    """A connect row as the client records a 403 (harness.client.outcomes.connect_failure)."""
    detail = str(HandshakeRejected(403, {}, body.encode()))
    return ev(s.STEP_CONNECT, t, ok=False, error="http_403", http_status=403, detail=detail)


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ("Forbidden: unknown deploymentId\n", UNKNOWN_DEPLOYMENT),
        ("Forbidden: missing deploymentId\n", MISSING_DEPLOYMENT),
        ("Forbidden: origin not allowed\n", ORIGIN_NOT_ALLOWED),
        ("deployment id is inactive", UNKNOWN_DEPLOYMENT),
        ("Forbidden\n", FORBIDDEN),
        ("", FORBIDDEN),
    ],
)
def test_forbidden_cause_reads_the_body(body: str, cause: object) -> None:
    assert forbidden_cause(body) is cause


def test_403_diagnosis_names_each_cause_the_bodies_give() -> None:
    rows = [_rejected(t, "Forbidden: unknown deploymentId\n") for t in (1, 2, 3)]
    rows += [_rejected(4, "Forbidden: origin not allowed\n"), _rejected(5, "Forbidden")]
    found = refused_upgrades(frame(rows))
    assert found is not None
    assert found.text.startswith("5 connection(s) refused at the upgrade with HTTP 403")
    first, second, third = found.text.split(": ", 1)[1].split("; ")
    assert first.startswith("3 x deploymentId unknown (wrong, deleted, inactive")
    assert "docs/troubleshooting.md#unknown-deploymentid" in first
    assert second.startswith("1 x Origin not allowed")
    assert "docs/troubleshooting.md#origin-not-allowed" in second
    assert third.startswith("1 x deploymentId unknown or Origin not allowed (the response body")
    assert found.evidence == {
        "http_403": 5,
        "close_1006_after_403": 0,
        "unknown_deployment": 3,
        "origin_not_allowed": 1,
        "unnamed": 1,
    }


def test_origin_refusal_is_not_blamed_on_the_deployment() -> None:
    found = refused_upgrades(frame([_rejected(1, "Forbidden: origin not allowed\n")]))
    assert found is not None
    assert "Origin not allowed" in found.text and "deploymentId" not in found.text


def test_probe_hint_reads_the_body() -> None:
    origin = connect_hint(HandshakeRejected(403, {}, b"Forbidden: origin not allowed\n"))
    assert origin.startswith("Origin not allowed") and "deploymentId" not in origin
    unknown = connect_hint(HandshakeRejected(403, {}, b"Forbidden: unknown deploymentId\n"))
    assert unknown.startswith("deploymentId unknown (wrong, deleted")
    assert connect_hint(HandshakeRejected(403)).startswith("deploymentId unknown or Origin")


def test_report_of_a_real_refusal_quotes_its_cause(tmp_path: Path) -> None:
    """The simulator refuses the harness's placeholder deploymentId: the body travels through
    the client's connect row into the report's diagnosis."""
    run_dir = tmp_path / "run"
    sim = "--deployment-id 11111111-2222-3333-4444-555555555555"
    _locust(run_dir, "-u", "2", "-r", "2", "-t", "2s", "--sim-args", sim)
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    doc = json.loads((run_dir / "report.json").read_text())
    refused = doc["connections"]["failures_by_reason"]["http_403"]
    assert refused >= 2 and doc["connections"]["succeeded"] == 0
    (diagnosis,) = [d for d in doc["diagnoses"] if d["kind"] == "refused_upgrade_403"]
    assert diagnosis["evidence"]["unknown_deployment"] == refused
    assert f"{refused} x deploymentId unknown (wrong, deleted" in diagnosis["text"]
    assert "Origin" not in diagnosis["text"]
