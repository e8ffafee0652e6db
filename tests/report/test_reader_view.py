"""What a reader of report.md / report.html sees: the header, no empty placeholder plots, and
gaps in the time series drawn as gaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.cli import main
from harness.record import schema as s

from .conftest import ev, write_run

INFO: dict[str, Any] = {
    "run_id": "r1",
    "started": "2026-01-01T00:00:00.000Z",
    "ended": "2026-01-01T00:01:05.000Z",
    "host": "ws://127.0.0.1:4321",
    "users": 20,
    "spawn_rate": 10.0,
    "run_time_s": 60,
    "shape": "ramp",
    "options": {"shape": "ramp", "peak_users": 40, "ramp_time": "30s", "session_mode": "keep"},
    "simulator_summary": {"upgrades": 2},
}


def _conversation(cid: int, start: float, end: float) -> list[dict[str, Any]]:
    """One connection with a turn at ``start + 1`` and a client close 1000 at ``end``."""
    ids = {"conn_id": cid, "user_id": cid}
    return [
        ev(s.STEP_CONNECT, start, lat_ms=2.0, **ids),
        ev(s.STEP_CONFIGURE, start + 0.1, lat_ms=1.0, **ids),
        ev(s.STEP_ON_MESSAGE, start + 1, lat_ms=1.0, **ids),
        ev(s.STEP_BOT_REPLY, start + 1, lat_ms=50.0, **ids),
        ev(s.STEP_CLOSE, end, close_code=1000, close_initiator="client", lat_ms=1.0, **ids),
    ]


def _report(tmp_path: Path, rows: list[dict[str, Any]], *args: str) -> tuple[str, str, Path]:
    run = write_run(tmp_path / "run", [rows], INFO)
    assert main(["report", str(run), *args]) == 0
    md = (run / "report.md").read_text(encoding="utf-8")
    html = (run / "report.html").read_text(encoding="utf-8")
    return md, html, run


def test_header_states_host_users_shape_and_load_duration(tmp_path: Path) -> None:
    # load: first step at +2 s, last step (close) ends at +50.001 s; health samples around it
    rows = _conversation(1, 2, 50) + _conversation(2, 3, 40)
    rows += [
        ev(s.STEP_GENERATOR, t, lat_ms=0.1, cpu_pct=5.0, active_connections=2) for t in (0, 60)
    ]
    md, html, run = _report(tmp_path, rows, "--no-plots")
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "Target: `ws://127.0.0.1:4321` (embedded simulator)." in summary
    assert "20 users, spawn rate 10.0/s, shape `ramp` (--peak-users 40 --ramp-time 30s)" in summary
    assert "session mode `keep`" in summary
    assert "Load ran 48.0 s, from 2026-01-01 00:00:02Z to 2026-01-01 00:00:50Z" in summary
    assert "the whole run (run.json) 65.0 s" in summary
    assert "Target: <code>ws://127.0.0.1:4321</code> (embedded simulator)." in html
    doc = json.loads((run / "report.json").read_text())
    assert abs(doc["run"]["load_duration_s"] - 48.001) < 1e-6
    assert doc["run"]["load_started"].startswith("2026-01-01T00:00:02")


def _steady(users: int, seconds: int) -> list[dict[str, Any]]:
    """``users`` kept connections with a turn every second and health samples each second
    (one load level only: a constant concurrency)."""
    rows: list[dict[str, Any]] = []
    for u in range(1, users + 1):
        ids = {"conn_id": 1, "user_id": u}
        rows += [ev(s.STEP_CONNECT, 0.01 * u, lat_ms=2.0, **ids)]
        for t in range(1, seconds):
            rows += [ev(s.STEP_ON_MESSAGE, t, lat_ms=1.0, **ids)]
            rows += [ev(s.STEP_BOT_REPLY, t, lat_ms=40.0 + u, **ids)]
    rows += [
        ev(s.STEP_GENERATOR, t, lat_ms=0.1, cpu_pct=5.0, active_connections=users)
        for t in range(seconds)
    ]
    return rows


def test_empty_plots_are_one_line_not_a_placeholder_image(tmp_path: Path) -> None:
    # no connect failed, nothing closed, one load level (constant concurrency for 40 s)
    md, html, run = _report(tmp_path, _steady(3, 40))
    assert "No connection failures, so no failure-reason plot." in md
    assert "No connection was closed, so no close-code plot." in md
    assert "No capacity plot: it needs at least two load levels." in md
    for name in ("failure_reasons", "close_codes", "capacity"):
        assert f"![{name}]" not in md
        assert f'alt="{name}"' not in html
        assert not (run / "plots" / f"{name}.png").exists()
    assert "No connection failures, so no failure-reason plot." in html
    drawn = {p.stem for p in (run / "plots").glob("*.png")}
    assert drawn == {"latency_over_time", "throughput", "latency_cdf", "survival"}
    assert html.count("data:image/png;base64,") == len(drawn)
    assert all(f"![{name}](plots/{name}.png)" in md for name in drawn)
    doc = json.loads((run / "report.json").read_text())
    assert {k for k in doc["files"] if k.startswith("plot_")} == {f"plot_{n}" for n in drawn}


def test_plots_with_content_are_drawn(tmp_path: Path) -> None:
    rows = [*_conversation(1, 0, 5), ev(s.STEP_CONNECT, 1, ok=False, error="http_403")]
    md, _html, run = _report(tmp_path, rows)
    assert (run / "plots" / "failure_reasons.png").stat().st_size > 1000
    assert (run / "plots" / "close_codes.png").stat().st_size > 1000
    assert "![failure_reasons](plots/failure_reasons.png)" in md


def test_no_plots_means_no_image_references(tmp_path: Path) -> None:
    md, html, run = _report(tmp_path, _conversation(1, 0, 5), "--no-plots")
    assert "![" not in md and "<img" not in html
    assert not (run / "plots").exists()


def test_latency_lines_break_at_windows_without_samples(monkeypatch: Any) -> None:
    from matplotlib.figure import Figure

    from harness.report import plots
    from harness.report.build import build_report
    from harness.report.load import RunData

    from .conftest import frame

    # botReply samples in seconds 0-4 and 10-14; nothing at all in 5-9 (1-s windows)
    rows = [ev(s.STEP_BOT_REPLY, t + 0.5, lat_ms=10.0 + t) for t in (*range(5), *range(10, 15))]
    report = build_report(RunData(Path("run"), frame(rows), {}))
    drawn: list[Figure] = []
    monkeypatch.setattr(plots, "_png", lambda fig: drawn.append(fig) or b"")
    plots.latency_over_time(report)
    (ax,) = drawn[0].axes
    for line in ax.get_lines():
        xy = line.get_xydata()
        finite = xy[~np.isnan(xy[:, 1]), 0]
        assert finite.tolist() == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]
        # every drawn segment joins two neighbouring windows: none spans the empty ones
        x = xy[:, 0]
        y = xy[:, 1]
        joined = ~np.isnan(y[:-1]) & ~np.isnan(y[1:])
        assert (np.diff(x)[joined] == 1.0).all()
        assert np.isnan(y[(x >= 5) & (x <= 9)]).all()


def test_a_plot_that_became_empty_is_not_left_over(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [_steady(3, 40)], INFO)
    (run / "plots").mkdir()
    stale = run / "plots" / "failure_reasons.png"
    stale.write_bytes(b"an earlier report's plot")
    assert main(["report", str(run)]) == 0
    assert not stale.exists()
