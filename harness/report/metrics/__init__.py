"""Report math: pure functions from event frames to frames or small frozen summaries."""
