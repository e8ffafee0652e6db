"""Locust glue for the recorder: periodic flushes, health samples, distributed shipping.

- A local runner writes its own shards to ``<run-dir>/events/``.
- A worker ships each flushed batch to the master as Arrow IPC bytes in a custom message; the
  master writes it as the worker's shard, so the master's run directory holds every event.
- Before the master finishes (test stop or quit) it asks every worker to drain: stop its users,
  flush, and confirm. Messages on one worker connection arrive in order, so the confirmation
  comes after the worker's last batch. Waits are bounded.
- Every batch that reaches disk on a local runner or the master is also fed to the live
  statistics (harness.loadgen.live), after it is written, so the web UI tab and the capacity
  search see exactly the events on disk, merged across workers. Each batch carries the time
  of its flush: every row its worker recorded before then is in it or an earlier batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import psutil

from harness.loadgen.live import LiveStats
from harness.record.recorder import Recorder, warm_up
from harness.record.schema import EVENTS_DIR
from harness.record.shards import complete_table, from_ipc, shard_name, to_ipc, write_shard

logger = logging.getLogger(__name__)

MSG_BATCH = "harness_events"
MSG_DRAIN = "harness_drain"
MSG_DRAINED = "harness_drained"
_TESTING = ("spawning", "running")  # worker states (locust.runners) with a test going


def role_of(runner: Any) -> str:
    """``local``, ``master`` or ``worker`` for a Locust runner."""
    name = type(runner).__name__
    if "Master" in name:
        return "master"
    if "Worker" in name:
        return "worker"
    return "local"


class RecordingService:
    """Owns one process's recorder and moves its rows to disk (or to the master)."""

    def __init__(
        self,
        environment: Any,
        recorder: Recorder,
        *,
        run_dir: Path | None,
        flush_rows: int = 50_000,
        flush_interval_s: float = 2.0,
        health_interval_s: float = 1.0,
        active_connections: Callable[[], int] = lambda: 0,
        live: LiveStats | None = None,
    ) -> None:
        self.env = environment
        self.runner = environment.runner
        self.role = role_of(self.runner)
        self.recorder = recorder
        self.run_dir = run_dir
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.health_interval_s = health_interval_s
        self.active_connections = active_connections
        self.live = live
        self._seq = 0
        self._last_flush = time.monotonic()
        self._drained: set[str] = set()
        self._greenlets: list[Any] = []
        self._sampler: Any = None
        self.shards_written = 0

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Register messages and start the flusher (workers and local runners)."""
        warm_up()
        if self.role == "master":
            self.runner.register_message(MSG_BATCH, self._on_batch)
            self.runner.register_message(MSG_DRAINED, self._on_drained)
            return
        if self.role == "worker":
            self.runner.register_message(MSG_DRAIN, self._on_drain, concurrent=True)
        self._greenlets.append(gevent.spawn(self._flush_loop))

    def start_sampling(self) -> None:
        if self.role != "master" and self._sampler is None:
            self._sampler = gevent.spawn(self._health_loop)

    def stop_sampling(self) -> None:
        if self._sampler is not None:
            self._sampler.kill(block=False)
            self._sampler = None

    def close(self) -> None:
        """Final flush; stop the background greenlets."""
        self.stop_sampling()
        self.flush()
        for g in self._greenlets:
            g.kill(block=False)
        self._greenlets.clear()

    @property
    def worker_id(self) -> str:
        if self.role == "worker":
            return f"worker{self.runner.worker_index}"
        return self.role

    # --- flushing --------------------------------------------------------------------------
    def flush(self) -> int:
        """Move every buffered row out now; return how many rows went."""
        self._last_flush = time.monotonic()
        flushed_ns = time.time_ns()  # every row recorded before now is in this batch
        table = self.recorder.take_batch()
        if table is None:
            if self.live is not None and self.role != "worker":
                self.live.mark_flushed(self.worker_id, flushed_ns)
            return 0
        self._seq += 1
        if self.role == "worker":
            payload = {
                "worker": self.worker_id,
                "seq": self._seq,
                "ipc": to_ipc(table),
                "flushed_ns": flushed_ns,
            }
            self.runner.send_message(MSG_BATCH, payload)
            return int(table.num_rows)
        if self.run_dir is not None:
            self._write(table, self.worker_id, self._seq)
        if self.live is not None:
            self.live.ingest(table, self.worker_id)
            self.live.mark_flushed(self.worker_id, flushed_ns)
        return int(table.num_rows)

    def live_sources(self) -> list[str]:
        """The sources whose batches the live statistics wait for: this process, or on a
        master every worker that is running a test (they sample their health every second,
        so each of their flushes carries rows)."""
        if self.role != "master":
            return [self.worker_id]
        return [str(c.id) for c in self.runner.clients.values() if c.state in _TESTING]

    def _write(self, table: Any, worker_id: str, seq: int) -> None:
        assert self.run_dir is not None
        full = complete_table(table, self.run_dir.name, worker_id)
        events = self.run_dir / EVENTS_DIR
        name = shard_name(worker_id, seq)
        # pyarrow releases the GIL while writing: a pool thread keeps the event loop running.
        gevent.get_hub().threadpool.apply(write_shard, (full, events, name))
        self.shards_written += 1

    def _flush_loop(self) -> None:
        tick = min(0.2, self.flush_interval_s)
        while True:
            gevent.sleep(tick)
            due = time.monotonic() - self._last_flush >= self.flush_interval_s
            if due or len(self.recorder) >= self.flush_rows:
                try:
                    self.flush()
                except Exception:  # a failed flush must not kill the flusher; the rows are lost
                    logger.exception("flushing raw events failed")

    # --- health ----------------------------------------------------------------------------
    def _health_loop(self) -> None:
        """One ``generator`` row per interval: CPU, RSS, event-loop lag, open connections."""
        proc = psutil.Process()
        proc.cpu_percent(None)
        lag_step_s = 0.1
        while True:
            worst_ns = 0
            end = time.perf_counter_ns() + int(self.health_interval_s * 1e9)
            while time.perf_counter_ns() < end:
                t0 = time.perf_counter_ns()
                gevent.sleep(lag_step_s)
                overshoot = time.perf_counter_ns() - t0 - int(lag_step_s * 1e9)
                worst_ns = max(worst_ns, overshoot)
            self.recorder.add_generator(
                time.time_ns(),
                worst_ns / 1000.0,
                proc.cpu_percent(None),
                proc.memory_info().rss,
                self.active_connections(),
            )

    # --- distributed ---------------------------------------------------------------------
    def _on_batch(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data
        try:
            table = from_ipc(data["ipc"])
            if self.run_dir is not None:
                self._write(table, str(data["worker"]), int(data["seq"]))
            if self.live is not None:
                self.live.ingest(table, str(msg.node_id))
                self.live.mark_flushed(str(msg.node_id), int(data.get("flushed_ns", 0)))
        except Exception:  # one bad batch must not stop the master from receiving the rest
            logger.exception("could not store an event batch from %s", msg.node_id)

    def _on_drained(self, environment: Any, msg: Any, **_: Any) -> None:
        self._drained.add(str(msg.node_id))

    def _on_drain(self, environment: Any, msg: Any, **_: Any) -> None:
        """Worker: stop the users (their closes get recorded), flush, confirm."""
        try:
            self.runner.stop()
        finally:
            self.stop_sampling()
            self.flush()
            self.runner.send_message(MSG_DRAINED, {"worker": self.worker_id})

    def drain_workers(self, timeout_s: float) -> bool:
        """Master: have every connected worker stop, flush and confirm; True when all did."""
        if self.role != "master":
            return True
        clients = [c.id for c in self.runner.clients.all]
        self._drained.clear()
        for client_id in clients:
            self.runner.send_message(MSG_DRAIN, None, client_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._drained.issuperset(clients):
            gevent.sleep(0.05)
        missing = set(clients) - self._drained
        if missing:
            logger.warning("%d worker(s) did not confirm their last events in time", len(missing))
        return not missing
