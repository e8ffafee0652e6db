"""The container, compose and Kubernetes files parse and say what the harness understands.

CI has no Docker: `docker build` and a compose smoke run are the manual check in
docs/scaling.md. These tests catch what breaks silently: a renamed flag, a wrong image name, a
worker pointed at a master service that does not exist, a locust.conf key Locust ignores.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.loadgen.config import add_arguments as add_harness_arguments
from harness.sim.cli import add_arguments as add_sim_arguments

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = "guestchat-harness"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@cache
def locust_flags() -> frozenset[str]:
    """Every long flag of ``locust -f locustfiles/guest.py``: Locust's own (from its help,
    which does not list a locustfile's arguments) and the harness's (from its parser)."""
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "locustfiles/guest.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return frozenset(FLAG.findall(proc.stdout)) | _flags(add_harness_arguments)


def _flags(add: Any) -> frozenset[str]:
    parser = argparse.ArgumentParser()
    add(parser)
    return frozenset(s for a in parser._actions for s in a.option_strings if s.startswith("--"))


def sim_flags() -> frozenset[str]:
    return _flags(add_sim_arguments)


def _yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def check_command(argv: list[str]) -> None:
    """argv is a locust or harness sim command whose every long flag exists."""
    program, *args = argv
    flags = [a for a in args if a.startswith("--")]
    if program == "locust":
        known = locust_flags()
    elif argv[:2] == ["harness", "sim"]:
        known = sim_flags()
    else:
        pytest.fail(f"unexpected program: {argv}")
    unknown = [f for f in flags if f not in known]
    assert not unknown, f"{argv}: unknown flags {unknown}"


def conf_keys(text: str) -> list[str]:
    return [
        line.split("=")[0].strip()
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    ]


def test_locust_conf_keys_are_real_options() -> None:
    keys = conf_keys((DEPLOY / "locust.conf").read_text())
    assert keys and all(f"--{k}" in locust_flags() for k in keys), keys


def test_compose_runs_master_workers_and_simulator() -> None:
    (compose,) = _yaml(DEPLOY / "compose.yml")
    services = compose["services"]
    assert set(services) == {"master", "worker", "sim"}
    assert {s["image"] for s in services.values()} == {IMAGE}
    master, worker = services["master"]["command"], services["worker"]["command"]
    for argv in (master, worker, services["sim"]["command"]):
        check_command([a for a in argv if not a.startswith("${")])
    assert "--master" in master and "--host" in master  # a --host: the embedded simulator is off
    assert worker[worker.index("--master-host") + 1] == "master"
    assert "8089:8089" in services["master"]["ports"]
    assert any(v.endswith(":/app/reports") for v in services["master"]["volumes"])
    assert "volumes" not in services["worker"]  # workers ship their events to the master


def test_kubernetes_master_workers_and_config() -> None:
    files = sorted((DEPLOY / "k8s").glob("*.yaml"))
    docs = [d for f in files if f.name != "kustomization.yaml" for d in _yaml(f)]
    by_name = {(d["kind"], d["metadata"]["name"]) for d in docs if "metadata" in d}
    service = next(d for d in docs if d["kind"] == "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == {5557, 8089}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert all(f"--{k}" in locust_flags() for k in conf_keys(config["data"]["locust.conf"]))
    yaml.safe_load(config["data"]["conversations.yml"])
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert set(pods) == {"guestchat-master", "guestchat-worker"}
    for spec in pods.values():
        (container,) = spec["containers"]
        assert container["image"] == IMAGE
        assert container["resources"]["requests"]["memory"]
        check_command(container["args"])
    worker_args = pods["guestchat-worker"]["containers"][0]["args"]
    master_host = worker_args[worker_args.index("--master-host") + 1]
    assert ("Service", master_host) in by_name
    kustomize = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomize["resources"]) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install ." in text and re.search(r"^USER (?!root)\w+", text, re.M)
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), copied
