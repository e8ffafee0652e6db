"""The baseline of ``harness bench client``: the leanest gevent + websocket-client loop.

N greenlets each open one socket, configure a session, then loop: send the same pre-encoded
onMessage JSON, read the echo and the bot reply with plain ``recv()``, parse nothing (not even
a UTF-8 check), count.
It deliberately bypasses harness.client (this is what the harness is compared against), which
is why it lives outside the package. Prints one JSON line: round trips and CPU in the window.

    python benchmarks/naive_ws_loop.py URL USERS WARMUP_S MEASURE_S
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402


def loop(url: str, counts: list[int], index: int, stop: list[bool]) -> None:
    # No UTF-8 check: it parses nothing, and without wsaccel websocket-client would validate
    # every byte in pure Python (3x slower), a handicap no serious client carries.
    ws = websocket.create_connection(url, timeout=30, skip_utf8_validation=True)
    token = str(uuid.uuid4())
    deployment = url.split("deploymentId=", 1)[1]
    configure = {"action": "configureSession", "deploymentId": deployment, "token": token}
    ws.send(json.dumps(configure))
    ws.recv()
    message = {"type": "Text", "text": "Where is my order?"}
    frame = json.dumps(
        {"action": "onMessage", "token": token, "tracingId": str(uuid.uuid4()), "message": message}
    )
    while not stop[0]:
        ws.send(frame)
        ws.recv()
        ws.recv()
        counts[index] += 1
    ws.close()


def main() -> None:
    url, users, warmup, measure = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:5])
    counts = [0] * users
    stop = [False]
    greenlets = [gevent.spawn(loop, url, counts, i, stop) for i in range(users)]
    gevent.sleep(warmup)
    c0, cpu0, t0 = sum(counts), time.process_time(), time.perf_counter()
    gevent.sleep(measure)
    c1, cpu1, t1 = sum(counts), time.process_time(), time.perf_counter()
    stop[0] = True
    gevent.joinall(greenlets, timeout=10)
    print(json.dumps({"round_trips": c1 - c0, "seconds": t1 - t0, "cpu_s": cpu1 - cpu0}))


if __name__ == "__main__":
    main()
