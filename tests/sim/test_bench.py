"""``harness bench sim`` plumbing: the driver counts real round trips, and the results file
keeps other sections. (Speeds are measured by the benchmark, never asserted here.)"""

from __future__ import annotations

from pathlib import Path

from harness.bench import sim as bench
from harness.bench.sim_driver import _count_frames, client_frame


def test_frame_helpers() -> None:
    frame = client_frame(b"hello", b"\x01\x02\x03\x04")
    assert frame[0] == 0x81 and frame[1] == 0x80 | 5 and len(frame) == 2 + 4 + 5
    server_frames = bytes((0x81, 2)) + b"hi" + bytes((0x81, 126)) + (300).to_bytes(2, "big")
    count, rest = _count_frames(server_frames + b"x" * 300 + bytes((0x81, 5)) + b"ab")
    assert count == 2 and rest == bytes((0x81, 5)) + b"ab"


def test_one_cell_against_the_simulator() -> None:
    server = bench._start_sim(1)
    try:
        cell = bench._run_cell("sim1", server, clients=3, warmup=0.2, duration=0.5)
    finally:
        output = server.stop()
    assert cell.trips_per_s > 0 and cell.total_trips > 0
    assert cell.p50_ms is not None and cell.p99_ms is not None
    notes = bench._accounting("sim1", server.counted(output), [cell])
    assert notes and notes[0].endswith("consistent")


def test_write_section_keeps_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## harness bench client\n\nclient numbers\n")
    bench.write_section(path, "## harness bench sim\n\nfirst\n")
    bench.write_section(path, "## harness bench sim\n\nsecond\n")
    text = path.read_text()
    assert "client numbers" in text and "second" in text and "first" not in text
    assert text.count("## harness bench sim") == 1
    path.write_text(text + "\n## harness bench report\n\nreport numbers\n")
    bench.write_section(path, "## harness bench sim\n\nthird\n")
    text = path.read_text()
    assert "report numbers" in text and "client numbers" in text and "third" in text
