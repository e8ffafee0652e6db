"""The README states the first stdout line of ``harness sim``: it must be what it prints
(scripts and the embedded launcher wait for that line)."""

from __future__ import annotations

import re

from harness.sim.launcher import SimProcess

from .citations import ROOT

#: "… first stdout line … `<the line>`" in the README's simulator section.
_STATED = re.compile(r"first stdout line[^`]*`([^`]+)`", re.DOTALL)


def _stated_line() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = _STATED.search(readme)
    assert match is not None, "README no longer says what the simulator's first line is"
    return match.group(1)


def test_readme_states_the_simulators_first_line() -> None:
    stated = _stated_line()
    assert "PORT" in stated
    pattern = re.escape(stated).replace("PORT", r"[0-9]+")
    with SimProcess() as sim:  # harness sim --host 127.0.0.1 --port 0, as the README runs it
        first = sim.output[0]
    assert re.fullmatch(pattern, first), f"README says {stated!r}, harness sim printed {first!r}"
    assert sim.url in first
