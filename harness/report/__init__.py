"""Reports: read a run directory with pandas, compute metrics, gate, render, compare."""
