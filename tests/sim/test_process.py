"""protocol.md §8.1 items 1 and 4, §1.5: shutdown and summary, --processes N, TLS."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import sys

import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness.sim.launcher import SimProcess
from harness.sim.stats import parse_summary

from .conftest import DEPLOYMENT, open_guest

TLS_HOST = "webmessaging.example.test"


def test_sigterm_closes_1001_and_prints_summary(start_sim, guests) -> None:
    sim = start_sim("--no-limits", "--bot-latency", "0", "--quick-replies", "0")
    first, second = guests(sim.url), guests(sim.url)
    first.configure()
    second.configure()
    first.say("hello")
    second.send("not json")
    second.recv()
    sim.proc.send_signal(signal.SIGTERM)
    for guest in (first, second):
        assert guest.closed() == (1001, "server shutting down")
    assert sim.proc.wait(timeout=15) == 0
    output = sim.stop()
    lines = output.splitlines()
    assert lines[-1].startswith("SUMMARY {")
    assert any(line.startswith("connections:") for line in lines)
    stats = parse_summary(output)
    assert stats is not None
    assert stats.upgrades == 2 and stats.accepted == 2 and stats.sessions == 2
    assert stats.messages == 1 and stats.bot_replies == 1
    assert stats.closes_by_code == {"1001": 2}
    assert stats.errors_by_code == {"400": 1}


def test_summary_counts_refusals_by_status(start_sim, guests) -> None:
    sim = start_sim("--deployment-id", DEPLOYMENT)
    guests(sim.url).ws.close()
    with pytest.raises(InvalidStatus):
        open_guest(sim.url, deployment="unknown")
    stats = parse_summary(sim.stop())
    assert stats is not None
    assert stats.upgrades == 2 and stats.accepted == 1
    assert stats.rejected_by_status == {"403": 1}
    assert stats.closes_by_code == {"1000": 1}


def test_two_processes_share_one_port(start_sim, guests) -> None:
    sim = start_sim("--processes", "2", "--no-limits", "--bot-latency", "0")
    assert "2 processes" in sim.output[0]
    opened = [guests(sim.url) for _ in range(40)]
    for guest in opened:
        guest.configure()
    opened[0].say("hi")
    for guest in opened:
        guest.ws.close()
    output = sim.stop()
    stats = parse_summary(output)
    assert stats is not None and stats.processes == 2
    assert stats.accepted == 40 and stats.sessions == 40
    per_process = [int(n) for n in re.findall(r"process \d+: (\d+) accepted", output)]
    assert len(per_process) == 2 and sum(per_process) == 40
    assert min(per_process) >= 1  # the kernel spread the connections over both


def test_bad_port_is_a_clean_error() -> None:
    with SimProcess([]) as running:
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "sim", "--port", str(running.port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines()[-1].startswith("harness sim: error: cannot bind")


def _ca_file(first_line: str) -> str:
    match = re.search(r"CA file: (\S+?)\)", first_line)
    assert match, first_line
    return match.group(1)


def test_tls_self_signed(start_sim) -> None:
    sim = start_sim("--tls-self-signed", TLS_HOST)
    assert sim.url.startswith("wss://127.0.0.1:")
    url = f"{sim.url}?deploymentId={DEPLOYMENT}"
    context = ssl.create_default_context(cafile=_ca_file(sim.output[0]))
    with connect(url, ssl=context, server_hostname=TLS_HOST) as ws:  # CA bundle + host name
        ws.send('{"action":"echo"}')
        assert "4007" in str(ws.recv(timeout=5))
    with pytest.raises(ssl.SSLCertVerificationError):  # wrong host name
        connect(url, ssl=context, server_hostname="other.example.test").close()
    with pytest.raises(ssl.SSLCertVerificationError):  # system CAs only
        connect(url, ssl=ssl.create_default_context(), server_hostname=TLS_HOST).close()
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the explicit insecure flag
    with connect(url, ssl=insecure) as ws:
        ws.ping().wait(5)


def test_tls_certfile_keyfile(start_sim, tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert(TLS_HOST)
    certfile, keyfile, cafile = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    sim = start_sim("--certfile", str(certfile), "--keyfile", str(keyfile))
    assert sim.url.startswith("wss://")
    context = ssl.create_default_context(cafile=str(cafile))
    url = f"{sim.url}?deploymentId={DEPLOYMENT}"
    with connect(url, ssl=context, server_hostname=TLS_HOST) as ws:
        ws.ping().wait(5)


def test_tls_with_two_processes(start_sim) -> None:
    sim = start_sim("--processes", "2", "--tls-self-signed", TLS_HOST)
    assert sim.url.startswith("wss://") and "2 processes" in sim.output[0]
    context = ssl.create_default_context(cafile=_ca_file(sim.output[0]))
    url = f"{sim.url}?deploymentId={DEPLOYMENT}"
    for _ in range(4):
        with connect(url, ssl=context, server_hostname=TLS_HOST) as ws:
            ws.ping().wait(5)
