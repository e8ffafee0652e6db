"""The interactive web UI (``locust -f locustfiles/guest.py``), driven over HTTP on loopback:
the harness tabs' data against the events on disk (exactly), refused and empty hosts in the
start form, a taken port, and run.json's load span."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.protocol.codes import describe_close_code
from harness.record import schema as s
from harness.record.shards import read_events
from harness.sim.launcher import SimProcess

from .conftest import ROOT, free_port, locust_cmd, master_args

NOT_LATENCY = {"close", "generator", "typing", "error", "integrity"}
DEADLINE_S = 40.0


class UI:
    """A running ``locust -f locustfiles/guest.py`` web UI on a free loopback port."""

    def __init__(self, proc: subprocess.Popen[str], port: int, run_dir: Path) -> None:
        self.proc, self.url, self.run_dir = proc, f"http://127.0.0.1:{port}", run_dir

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, form: dict[str, Any] | None = None) -> Any:
        data = urllib.parse.urlencode(form or {}).encode()
        with urllib.request.urlopen(self.url + path, data=data, timeout=30) as resp:
            return json.loads(resp.read())

    def tabs(self) -> dict[str, list[dict[str, Any]]]:
        stats = self.get("/stats/requests")
        return {t["key"]: t["data"] for t in stats["extended_stats"]}

    def run_json(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads((self.run_dir / s.RUN_JSON).read_text())
        return info

    def wait_for(self, what: str, check: Any, timeout_s: float = DEADLINE_S) -> Any:
        """Poll ``check()`` until it returns something truthy (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def web_ui(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[UI]:
    port = free_port()
    run_dir = tmp_path / "run"
    cmd = locust_cmd("--web-host", "127.0.0.1", "--web-port", str(port), "--run-dir", str(run_dir))
    log = (tmp_path / "locust.log").open("w")
    proc = subprocess.Popen(
        [*cmd, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    ui = UI(proc, port, run_dir)
    try:
        ui.wait_for("the web UI", lambda: proc.poll() is not None or _answers(ui))
        assert proc.poll() is None, (tmp_path / "locust.log").read_text()[-3000:]
        yield ui
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _answers(ui: UI) -> bool:
    try:
        ui.get("/stats/requests")
    except OSError:
        return False
    return True


# --- the expected tab contents, computed from the shards with pandas -------------------------
def _latency_rows(ev: pd.DataFrame) -> list[dict[str, Any]]:
    present = list(dict.fromkeys(ev[s.STEP]))
    timed = {st for st in present if ev.loc[ev[s.STEP] == st, s.LATENCY_US].notna().any()}
    known = [st for st in s.LATENCY_STEPS if st in present]
    others = sorted(st for st in timed - set(s.LATENCY_STEPS) - NOT_LATENCY)
    rows = []
    for st in known + others:
        mine = ev[ev[s.STEP] == st]
        ok = mine[mine[s.OK] & mine[s.LATENCY_US].notna()][s.LATENCY_US].to_numpy() / 1000.0
        limited = mine[s.ERROR] == s.ERR_RATE_LIMITED
        p50, p95, p99 = (
            np.percentile(ok, [50, 95, 99], method="linear") if ok.size else [math.nan] * 3
        )
        rows.append(
            {
                "step": st,
                "samples": int(ok.size),
                "failures": int((~mine[s.OK] & ~limited).sum()),
                "limited": int(limited.sum()),
                "p50": float(p50),
                "p95": float(p95),
                "p99": float(p99),
                "mean": float(ok.mean()) if ok.size else math.nan,
                "max": float(ok.max()) if ok.size else math.nan,
            }
        )
    return rows


def _close_rows(ev: pd.DataFrame) -> dict[int, dict[str, int]]:
    closes = ev[ev[s.STEP] == s.STEP_CLOSE]
    codes = closes[s.CLOSE_CODE].fillna(1006).astype(int)
    who = closes[s.CLOSE_INITIATOR].fillna("none")
    out: dict[int, dict[str, int]] = {}
    for code, initiator in zip(codes, who, strict=True):
        out.setdefault(code, {"client": 0, "server": 0, "none": 0})[initiator] += 1
    return out


def _connection_rows(ev: pd.DataFrame) -> dict[str, int]:
    conns = ev[ev[s.STEP] == s.STEP_CONNECT]
    limited = ~conns[s.OK] & (conns[s.ERROR] == s.ERR_RATE_LIMITED)
    failed = conns[~conns[s.OK] & ~limited]
    out = {"attempted": len(conns), "succeeded": int(conns[s.OK].sum())}
    for reason, n in failed[s.ERROR].fillna("unknown").value_counts().items():
        out[f"failed: {reason}"] = int(n)
    out["rate limited"] = int(limited.sum())
    return out


def _same_as_disk(tabs: dict[str, list[dict[str, Any]]], ev: pd.DataFrame) -> list[str]:
    """What differs between the tab data and the events on disk (empty: all equal)."""
    problems = []
    got_lat = tabs["guestchat-latency"]
    want_lat = _latency_rows(ev)
    if [r["step"] for r in got_lat] != [r["step"] for r in want_lat]:
        problems.append(f"steps {[r['step'] for r in got_lat]} != {[r['step'] for r in want_lat]}")
    for got, want in zip(got_lat, want_lat, strict=False):
        for key in ("samples", "failures", "limited", "p50", "p95", "p99", "max"):
            g, w = got[key], want[key]
            if not (g == w or (g is None and math.isnan(w))):  # exact: same floats
                problems.append(f"{want['step']}.{key}: tab {g!r} != disk {w!r}")
        if want["samples"] and not math.isclose(got["mean"], want["mean"], rel_tol=1e-12):
            problems.append(f"{want['step']}.mean: tab {got['mean']!r} != disk {want['mean']!r}")
    got_closes = {
        r["code"]: {k: r[k] for k in ("client", "server", "none")} for r in tabs["guestchat-closes"]
    }
    if got_closes != _close_rows(ev):
        problems.append(f"closes {got_closes} != {_close_rows(ev)}")
    got_conns = {r["outcome"]: r["count"] for r in tabs["guestchat-connections"]}
    if got_conns != _connection_rows(ev):
        problems.append(f"connections {got_conns} != {_connection_rows(ev)}")
    limited = ev[ev[s.ERROR] == s.ERR_RATE_LIMITED][s.STEP].value_counts()
    got_limited = {r["step"]: r["count"] for r in tabs["guestchat-rate-limited"]}
    if got_limited != {k: int(v) for k, v in limited.items()}:
        problems.append(f"rate limited {got_limited} != {dict(limited)}")
    return problems


def _events(run_dir: Path) -> pd.DataFrame:
    frame: pd.DataFrame = read_events(run_dir).to_pandas()
    return frame


def _tabs_equal_disk(ui: UI) -> dict[str, list[dict[str, Any]]]:
    """The tab data once it equals the shards on disk (a last close can land in the next
    2-s flush: polled, bounded); fails with the differences otherwise."""
    last: list[str] = []

    def check() -> dict[str, list[dict[str, Any]]] | None:
        nonlocal last
        tabs = ui.tabs()
        last = _same_as_disk(tabs, _events(ui.run_dir))
        return None if last else tabs

    try:
        result: dict[str, list[dict[str, Any]]] = ui.wait_for("tab == disk", check, 15.0)
    except AssertionError:
        raise AssertionError("\n".join(last)) from None
    return result


# --- tests ------------------------------------------------------------------------------------
FAULTS = "--fault-close every:2 --fault-close-code 1011 --fault-reject every:5"


def test_live_tabs_equal_the_events_on_disk(tmp_path: Path, locust_env: dict[str, str]) -> None:
    flow = ["--messages-per-session", "3", "--think-time", "0.1s", "--sim-args", FAULTS]
    with web_ui(tmp_path, locust_env, *flow) as ui:
        page = urllib.request.urlopen(ui.url + "/", timeout=10).read().decode()
        assert '"extended_tabs"' in page and "guestchat-latency" in page  # Locust's own page
        idle = ui.run_json()
        assert "tests" not in idle
        started = ui.post("/swarm", {"user_count": 6, "spawn_rate": 6, "host": ""})
        assert started["success"], started
        # updated while the run goes: samples and 1011 closes show up before the stop
        ui.wait_for(
            "live botReply samples and 1011 closes",
            lambda: (
                any(r["step"] == "botReply" and r["samples"] for r in _lat(ui))
                and any(r["code"] == 1011 for r in ui.tabs()["guestchat-closes"])
            ),
        )
        assert ui.post("/stop")["success"]
        tabs = _tabs_equal_disk(ui)
        info = ui.run_json()
    closes = {r["code"]: r for r in tabs["guestchat-closes"]}
    assert closes[1011]["name"] == describe_close_code(1011).name == "Internal Error"
    assert closes[1011]["meaning"] == describe_close_code(1011).meaning
    assert closes[1011]["server"] == closes[1011]["count"] > 0
    conns = {r["outcome"]: r["count"] for r in tabs["guestchat-connections"]}
    assert conns["failed: http_503"] > 0  # every 5th upgrade refused
    steps = [r["step"] for r in tabs["guestchat-latency"]]
    assert steps[:4] == ["connect", "configureSession", "onMessage", "botReply"]
    # run.json: the load span, not the idle time before the swarm
    (test,) = info["tests"]
    assert info["started"] == test["started"] and test["ended"] and test["host"].startswith("ws://")
    final = json.loads((ui.run_dir / s.RUN_JSON).read_text())
    assert final["ended"] == test["ended"] and final["started"] == test["started"]
    report = subprocess.run(
        [*_harness(), "report", str(ui.run_dir), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    run = json.loads((ui.run_dir / "report.json").read_text())["run"]
    assert _seconds(test["started"]) > _seconds(idle["started"])  # the swarm came later
    span = _seconds(test["ended"]) - _seconds(test["started"])
    assert math.isclose(run["duration_s"], span, abs_tol=1e-6)


def _lat(ui: UI) -> list[dict[str, Any]]:
    return ui.tabs()["guestchat-latency"]


def _harness() -> list[str]:
    return [sys.executable, "-m", "harness"]


def _seconds(iso: str) -> float:
    return pd.Timestamp(iso).timestamp()


def test_tabs_merge_every_worker(tmp_path: Path, locust_env: dict[str, str]) -> None:
    args = ["--processes", "2", *master_args(), "--think-time", "0.2s", "--sim-args", FAULTS]
    with web_ui(tmp_path, locust_env, *args) as ui:
        ui.wait_for("2 workers", lambda: ui.get("/stats/requests").get("worker_count") == 2)
        assert ui.post("/swarm", {"user_count": 8, "spawn_rate": 8, "host": ""})["success"]
        ui.wait_for(
            "onMessage samples from both workers",
            lambda: any(r["step"] == "onMessage" and r["samples"] >= 10 for r in _lat(ui)),
        )
        assert ui.post("/stop")["success"]
        tabs = _tabs_equal_disk(ui)
        ev = _events(ui.run_dir)
    assert set(ev[s.WORKER_ID]) == {"worker0", "worker1"}
    for worker in ("worker0", "worker1"):
        assert ((ev[s.WORKER_ID] == worker) & (ev[s.STEP] == "onMessage")).any()
    on_msg = next(r for r in tabs["guestchat-latency"] if r["step"] == "onMessage")
    assert on_msg["samples"] == int(((ev[s.STEP] == "onMessage") & ev[s.OK]).sum())


def test_refused_and_malformed_hosts_answer_in_the_form(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    with web_ui(tmp_path, locust_env) as ui:
        for host, says in [
            ("ws://example.com", "refusing to load non-loopback host 'example.com'"),
            ("ftp://127.0.0.1", "must be a ws:// or wss:// URL"),
            ("ws://", "must be a ws:// or wss:// URL"),
            ("http://[::1", "is not a URL"),
        ]:
            answer = ui.post("/swarm", {"user_count": 2, "spawn_rate": 2, "host": host})
            assert answer["success"] is False and says in answer["message"], answer
        bad = ui.post("/swarm", {"user_count": 2, "spawn_rate": 2, "host": "", "think_time": "x"})
        assert bad["success"] is False and "--think-time" in bad["message"]
        stats = ui.get("/stats/requests")
        assert stats["state"] == "ready" and stats["user_count"] == 0
        assert "tests" not in ui.run_json()
        # after a refusal a good start still works: a capacity search with a gate typed into
        # the form (that bound to fail: the simulator's bot answers in 50 ms)
        form = {"user_count": 4, "spawn_rate": 4, "host": "", "shape": "capacity"}
        form |= {"step_users": 2, "step_time": "2s", "slo": "botReply.p95 < 1ms min=1"}
        assert ui.post("/swarm", form)["success"]
        search = ui.wait_for("the search's end", lambda: ui.run_json().get("capacity_search"))
        assert search["stopped_by"] == "gate" and search["first_failing"]["users"] == 2
        ui.wait_for("the test to stop", lambda: ui.get("/stats/requests")["state"] == "stopped")


def test_a_test_that_cannot_start_stops_and_says_why(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    """An empty host with no simulator running starts one; when that fails the test stops
    at once (not 'RUNNING, 0 users' forever) and the reason is in the UI's log."""
    with SimProcess() as sim, web_ui(tmp_path, locust_env, "--host", sim.url) as ui:
        form = {"user_count": 2, "spawn_rate": 2, "host": "", "sim_args": "--no-such-switch"}
        assert ui.post("/swarm", form)["success"]
        ui.wait_for("the test to stop", lambda: ui.get("/stats/requests")["state"] == "stopped")
        logs = "\n".join(ui.get("/logs")["master"])
        assert "test not started: simulator exited" in logs
        assert "tests" not in ui.run_json()
        # the form's empty host then means an embedded simulator that does start
        form["sim_args"] = ""
        assert ui.post("/swarm", form)["success"]
        ui.wait_for("2 users", lambda: ui.get("/stats/requests")["user_count"] == 2)
        (test,) = ui.wait_for("run.json tests", lambda: ui.run_json().get("tests"))
        assert test["host"] != sim.url.removesuffix("/v1")


def test_taken_port_is_one_line_exit_3_and_leaves_nothing(
    tmp_path: Path, locust_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run_dir = tmp_path / "run"
        proc = subprocess.run(
            locust_cmd(
                "--web-host", "127.0.0.1", "--web-port", str(port), "--run-dir", str(run_dir)
            ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=locust_env,
            check=False,
        )
    assert proc.returncode == 3, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"locust: error: web UI cannot listen on 127.0.0.1:{port}: Address already in use; "
        "pick another with --web-port"
    ]
    assert "Traceback" not in proc.stderr
    assert not run_dir.exists()
