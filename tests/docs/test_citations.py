"""User-facing text cites the docs shipped with the tool, never a bare "§" of a document users
do not have; every ``docs/<file>.md#anchor`` it cites exists (GitHub heading anchors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.cli import SUBCOMMANDS, main
from harness.errors import ConnectError, HandshakeRejected
from harness.loadgen.probe import CONNECT_HINTS, connect_hint
from harness.record import schema as s

from .citations import (
    DOCS,
    LINK,
    ROOT,
    anchors,
    bad_citations,
    doc_anchors,
    github_slug,
    user_strings,
)

#: Documents that live outside the repository: user-facing text must not send people there.
FOREIGN = ("§", "protocol.md", "design.md")
PAGES = ("guest-api.md", "troubleshooting.md", "metrics.md", "ci.md", "scaling.md")


def _problems(where: str, text: str, known: dict[str, set[str]]) -> list[str]:
    found = [f"{where}: cites {bad!r}" for bad in FOREIGN if bad in text]
    return found + [f"{where}: {p}" for p in bad_citations(text, known)]


def test_github_slugs() -> None:
    assert github_slug("1006 right after my first frame") == "1006-right-after-my-first-frame"
    assert github_slug("Rate limiting (429, 1013)") == "rate-limiting-429-1013"
    assert github_slug("`configureSession`") == "configuresession"
    assert github_slug("report.json") == "reportjson"
    assert github_slug("Symptoms, causes and fixes") == "symptoms-causes-and-fixes"
    text = "# A\n## Same\n```\n## Not a heading\n```\n### Same\n"
    assert anchors(text) == {"a", "same", "same-1"}


def test_the_docs_pages_exist() -> None:
    assert {p.name for p in DOCS.glob("*.md")} >= set(PAGES)
    trouble = anchors((DOCS / "troubleshooting.md").read_text(encoding="utf-8"))
    assert {"1006-right-after-my-first-frame", "legacy-web-chat-v2-urls-and-connect-frames"} <= (
        trouble
    )
    lines = (DOCS / "troubleshooting.md").read_text(encoding="utf-8").splitlines()
    sections = [line for line in lines if line.startswith("## ")]
    assert sections[:3] == [
        "## 1006 right after my first frame",
        "## Legacy Web Chat v2 URLs and connect frames",
        "## Symptoms, causes and fixes",
    ]


def test_harness_strings_cite_only_existing_docs_anchors() -> None:
    known = doc_anchors()
    problems: list[str] = []
    cited = 0
    for where, text in user_strings(ROOT / "harness"):
        problems += _problems(where, text, known)
        cited += "docs/" in text
    assert problems == []
    assert cited >= 10  # the hints, diagnoses and messages do cite the docs


def test_readme_and_docs_links_resolve() -> None:
    known = doc_anchors()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    problems = _problems("README.md", readme, known)
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        problems += [f"docs/{page.name}: cites {bad!r}" for bad in FOREIGN if bad in text]
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            name = file or page.name
            if name not in known:
                problems.append(f"docs/{page.name}: link to missing {file}")
            elif anchor and anchor not in known[name]:
                problems.append(f"docs/{page.name}: link to missing anchor {target}")
    assert problems == []
    for page in PAGES:
        assert f"](docs/{page}" in readme  # the README's Documentation section links every page


def _row(step: str, t_s: float, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {s.STEP: step, s.TS_NS: 1_767_225_600 * 10**9 + round(t_s * 1e9)}
    row |= {s.OK: True, s.WORKER_ID: "w0"}
    if "lat_ms" in fields:
        row[s.LATENCY_US] = fields.pop("lat_ms") * 1000.0
    return row | fields


def _conn(cid: int, start: float, end: float, *, code: int, who: str, last: float) -> list[Any]:
    ids = {s.CONN_ID: cid, s.USER_ID: cid}
    return [
        _row(s.STEP_CONNECT, start, lat_ms=1.0, **ids),
        _row(s.STEP_ECHO, last, lat_ms=0.5, **ids),
        _row(s.STEP_CLOSE, end, close_code=code, close_initiator=who, **ids),
    ]


def _every_diagnosis_run(run_dir: Path) -> Path:
    """A run with every diagnosis, a saturated generator and no capacity levels."""
    rows: list[dict[str, Any]] = []
    for i, start in enumerate((0, 20, 45, 70)):  # idle cut ~60 s after the last echo
        rows += _conn(
            i + 1, start, start + 90 + i * 7, code=1006, who="none", last=start + 30 + i * 7
        )
    for i in range(5):  # server closes at age 120 s although active
        rows += _conn(10 + i, i * 3, i * 3 + 120, code=1001, who="server", last=i * 3 + 119.5)
    for i in range(4):  # a 1011 burst
        rows += _conn(20 + i, 0, 150 + i, code=1011, who="server", last=149)
    rows += _conn(30, 0, 10, code=1013, who="server", last=9)
    for body in ("Forbidden: unknown deploymentId", "Forbidden: origin not allowed", "nope"):
        detail = str(HandshakeRejected(403, {}, body.encode()))
        rows.append(
            _row(s.STEP_CONNECT, 2, ok=False, error="http_403", http_status=403, detail=detail)
        )
    rows.append(_row(s.STEP_CONNECT, 3, ok=False, error="rate_limited", http_status=429))
    rows.append(_row(s.STEP_GENERATOR, 100, lat_ms=80.0, cpu_pct=99.0, active_connections=3))
    cols = {name: [r.get(name) for r in rows] for name in s.COLUMNS}
    (run_dir / s.EVENTS_DIR).mkdir(parents=True)
    pq.write_table(pa.table(cols, schema=s.EVENT_SCHEMA), run_dir / s.EVENTS_DIR / "w0-0.parquet")
    info = {"run_id": "docs", "host": "ws://127.0.0.1:1", "options": {"session_mode": "keep"}}
    (run_dir / s.RUN_JSON).write_text(json.dumps(info), encoding="utf-8")
    return run_dir


def test_rendered_report_cites_existing_docs_anchors(tmp_path: Path) -> None:
    run = _every_diagnosis_run(tmp_path / "run")
    code = main(["report", str(run), "--no-plots", "--slo", "botReply.p95 < 1s"])
    assert code == 2  # no botReply sample: inconclusive
    kinds = {d["kind"] for d in json.loads((run / "report.json").read_text())["diagnoses"]}
    assert kinds == {"refused_upgrade_403", "idle_timeout", "max_age", "burst_1011", "rate_limit"}
    known = doc_anchors()
    for name in ("report.md", "report.html", "report.json"):
        text = (run / name).read_text(encoding="utf-8")
        assert _problems(name, text, known) == []
    md = (run / "report.md").read_text(encoding="utf-8")
    for cited in (
        "docs/guest-api.md#close-codes",
        "docs/troubleshooting.md#unknown-deploymentid",
        "docs/troubleshooting.md#origin-not-allowed",
        "docs/troubleshooting.md#http-403-on-the-upgrade",
        "docs/troubleshooting.md#closes-after-a-quiet-period",
        "docs/troubleshooting.md#closes-at-one-connection-age",
        "docs/troubleshooting.md#bursts-of-1011",
        "docs/troubleshooting.md#rate-limiting-429-1013",
        "docs/troubleshooting.md#a-saturated-generator",
        "docs/metrics.md#session-survival",
    ):
        assert cited in md


def test_probe_hints_cite_existing_docs_anchors() -> None:
    known = doc_anchors()
    hints = [connect_hint(ConnectError("probe", category=c)) for c in CONNECT_HINTS]
    bodies = ("Forbidden: unknown deploymentId", "Forbidden: origin not allowed", "", "x")
    hints += [connect_hint(HandshakeRejected(403, {}, b.encode())) for b in bodies]
    assert all(hints)
    assert [p for h in hints for p in _problems("probe hint", h, known)] == []


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_cli_help_cites_existing_docs_anchors(
    command: str | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a citation must not be wrapped in an 80-column help
    with pytest.raises(SystemExit):
        main(["--help"] if command is None else [command, "--help"])
    assert _problems(f"harness {command} --help", capsys.readouterr().out, doc_anchors()) == []
