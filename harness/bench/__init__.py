"""Benchmarks: ``harness bench sim|client|report``, each measured side by side in one run."""
