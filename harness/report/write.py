"""Write every report artefact into the output directory (the I/O edge of the report)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.report.build import Report
from harness.report.junit import write_junit
from harness.report.render_json import report_dict, write_json
from harness.report.render_text import render_html, render_markdown
from harness.report.sections import build_sections
from harness.report.slo import GateResult


def write_series(report: Report, out_dir: Path) -> dict[str, str]:
    """Time series as CSV (1 s and 10 s windows): load and per-step percentiles."""
    (out_dir / "series").mkdir(parents=True, exist_ok=True)
    files = {}
    for w in report.load_series:
        for kind, frame in (("load", report.load_series[w]), ("steps", report.step_series[w])):
            rel = f"series/{kind}_{w:g}s.csv"
            frame.to_csv(out_dir / rel, index=False)
            files[f"series_{kind}_{w:g}s"] = rel
    return files


def write_outputs(
    report: Report,
    results: list[GateResult],
    out_dir: Path,
    *,
    plots: bool = True,
    on_stage: Callable[[str], None] = lambda _l: None,
) -> dict[str, str]:
    """report.json, report.md, report.html, plots/*.png, series/*.csv, junit.xml (gates)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": "report.json", "markdown": "report.md", "html": "report.html"}
    files |= write_series(report, out_dir)
    report.guests.to_csv(out_dir / "guests.csv", index=False)
    files["guests"] = "guests.csv"
    sections = build_sections(report, results)
    wanted = [name for sec in sections for name in sec.plots]
    images: dict[str, bytes] = {}
    if plots:
        from harness.report.plots import PLOTS, render_plots  # matplotlib only when needed

        images = render_plots(report, wanted, on_plot=lambda n: on_stage(f"plot {n}"))
        for name in PLOTS.keys() - set(wanted):  # keeps the progress count: one per plot
            on_stage(f"plot {name} (empty: not drawn)")
            # an earlier report into this directory may have drawn it: never leave it stale
            (out_dir / "plots" / f"{name}.png").unlink(missing_ok=True)
    if images:
        (out_dir / "plots").mkdir(exist_ok=True)
    for name, png in images.items():
        (out_dir / "plots" / f"{name}.png").write_bytes(png)
        files[f"plot_{name}"] = f"plots/{name}.png"
    if results:
        write_junit(out_dir / "junit.xml", results)
        files["junit"] = "junit.xml"
    on_stage("write")
    title = f"Load test report: {report.run.get('run_id')}"
    markdown = render_markdown(title, sections, available=images.keys())
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(title, sections, images), encoding="utf-8")
    write_json(out_dir / "report.json", report_dict(report, results, files))
    return files
