"""Run GuestUsers in an in-process Locust ``Environment`` and print a JSON summary.

Run as a script in its own interpreter (``python tests/loadgen/inproc_driver.py CONFIG``) so
gevent's monkey-patching never leaks into the pytest process that asserts on the result.
CONFIG is JSON: ``{"options": {...}, "users": N, "seconds": S}``; ``options`` are the harness
options (``sim_args``, ``run_dir``, ``think_time``…). With no ``host`` the embedded simulator
is started by ``install()``, exactly as under ``locust -f``. The run is bounded by ``seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys

import gevent
from locust.env import Environment
from locust.event import Events

from harness.loadgen.plugin import context_of, install
from harness.loadgen.shapes import HarnessShape  # noqa: F401  (not used: plain -u/-r)
from harness.loadgen.user import GuestUser


def main() -> None:
    config = json.loads(sys.argv[1])
    options = argparse.Namespace(**config["options"])
    env = Environment(
        user_classes=[GuestUser], events=Events(), parsed_options=options, stop_timeout=0
    )
    env.create_local_runner()
    install(env, flush_interval_s=0.5)
    users = int(config["users"])
    env.runner.start(users, spawn_rate=users)
    gevent.sleep(float(config["seconds"]))
    env.events.quitting.fire(environment=env, reverse=True)
    env.runner.quit()
    ctx = context_of(env)
    stats = {
        name: {"requests": e.num_requests, "failures": e.num_failures}
        for (name, method), e in env.runner.stats.entries.items()
        if method == "WS"
    }
    errors = [
        {"name": e.name, "error": str(e.error), "count": e.occurrences}
        for e in env.runner.stats.errors.values()
    ]
    assert ctx.run_info is not None
    print(json.dumps({"stats": stats, "errors": errors, "run_dir": str(ctx.run_info.run_dir)}))


if __name__ == "__main__":
    main()
