"""JUnit XML with one test case per SLO gate (CI systems render it natively)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.slo import GateResult


def junit_xml(results: list[GateResult], suite: str = "slo") -> bytes:
    """failed gate → <failure>, inconclusive gate → <skipped> with the reason."""
    failures = sum(r.verdict == "fail" for r in results)
    skipped = sum(r.verdict == "inconclusive" for r in results)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        skipped=str(skipped),
        errors="0",
    )
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=suite, name=r.gate.text)
        text = f"{r.gate.metric}: observed {r.observed:.6g} with {r.samples} samples; {r.detail}"
        if r.verdict == "fail":
            ET.SubElement(case, "failure", message=r.detail, type="SLO").text = text
        elif r.verdict == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {r.detail}").text = text
        ET.SubElement(case, "system-out").text = text
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def write_junit(path: Path, results: list[GateResult]) -> None:
    path.write_bytes(junit_xml(results))
