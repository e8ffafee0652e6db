"""``harness probe`` against the real simulator: it names the HTTP status a browser hides."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.sim.launcher import SimProcess

DEPLOYMENT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with SimProcess(["--deployment-id", DEPLOYMENT, "--allowed-origin", "site.example"]) as sim:
        yield sim.url


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_probe_walks_every_step(sim_url: str) -> None:
    out = _probe("--url", f"{sim_url}?deploymentId={DEPLOYMENT}", "--timeout", "10s")
    assert out.returncode == 0, out.stdout + out.stderr
    for step in ("connect", "configureSession", "echo", "onMessage", "close"):
        assert f"ok   {step}" in out.stdout
    assert "1000 (normal closure" in out.stdout


@pytest.mark.parametrize(
    ("extra", "reason", "likely"),
    [
        (["--deployment-id", "not-this-one"], "unknown deploymentId", "deploymentId unknown"),
        (
            ["--deployment-id", DEPLOYMENT, "--origin", "https://other.example"],
            "origin",
            "Origin not allowed",
        ),
    ],
)
def test_probe_explains_a_refused_upgrade(
    sim_url: str, extra: list[str], reason: str, likely: str
) -> None:
    out = _probe("--url", sim_url, *extra)
    assert out.returncode == 1
    assert "FAIL connect           upgrade rejected with HTTP 403" in out.stdout
    assert reason in out.stdout.lower() or reason in out.stdout
    assert f"likely: {likely}" in out.stdout


def test_probe_refuses_a_remote_host_without_opt_in() -> None:
    out = _probe("--region", "eu-west-1", "--deployment-id", DEPLOYMENT)
    assert out.returncode == 3
    assert "refusing to contact non-loopback host" in out.stderr
    assert out.stdout == ""
