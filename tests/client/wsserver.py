"""A tiny scripted WebSocket server for transport tests, run as a subprocess.

Not the simulator: it does what a test tells it, so the transport's edge cases (rejected
upgrades, odd closes, aborts, pings, raw frames) can be produced on demand. Its first stdout
line is its URL (the readiness signal). Loopback only.

Commands, one per text frame from the client (space separated):
  ``close CODE [REASON]``  close with that code      ``abort``  drop TCP, no close frame
  ``ping``    ping; answers ``pong-ok`` / ``pong-missing``
  ``text HEX`` / ``binary HEX``   send those bytes as one text / binary frame
  ``many N HEX``  send the text frame N times         ``bare-close``  close frame, no payload
  ``frag N HEX``  one message in N fragments          ``big N``  a text frame of N bytes
  ``slow SECONDS HEX``  a frame written in two parts, SECONDS apart
  ``deaf``    stop reading the socket (a client close is never answered)
  ``headers``  answer the upgrade request's headers as a JSON object (lower-case names)
Modes: ``--reject STATUS`` refuses every upgrade with a body and an ``X-Test`` header;
``--hang`` accepts TCP and never answers; ``--certfile/--keyfile`` serve TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode


async def _command(ws: ServerConnection, words: list[str]) -> None:
    cmd = words[0]
    if cmd == "close":
        await ws.close(int(words[1]), " ".join(words[2:]))
    elif cmd == "abort":
        assert ws.transport is not None
        ws.transport.abort()
    elif cmd == "bare-close":
        ws.protocol.send_frame(Frame(Opcode.CLOSE, b""))  # no code: the peer records 1005
        ws.send_data()
        await asyncio.sleep(0.5)
    elif cmd == "ping":
        try:
            waiter = await ws.ping(b"hello")
            await asyncio.wait_for(waiter, 5)
            await ws.send("pong-ok")
        except TimeoutError:
            await ws.send("pong-missing")
    elif cmd in ("text", "binary"):
        await ws.send(bytes.fromhex(words[1] if len(words) > 1 else ""), text=cmd == "text")
    elif cmd == "frag":  # one text message in N fragments (continuation frames)
        data, n = bytes.fromhex(words[2]), int(words[1])
        size = max(1, len(data) // n)
        await ws.send([data[i : i + size] for i in range(0, len(data), size)], text=True)
    elif cmd == "big":  # a text frame of N bytes ("x" * N)
        await ws.send(b"x" * int(words[1]), text=True)
    elif cmd == "slow":  # one unmasked text frame written in two parts, SECONDS apart
        data = bytes.fromhex(words[2])
        raw = bytes([0x81, len(data)]) + data
        assert ws.transport is not None and len(data) < 126
        ws.transport.write(raw[:3])
        await asyncio.sleep(float(words[1]))
        ws.transport.write(raw[3:])
    elif cmd == "deaf":  # stop reading: a close frame from the client is never answered
        assert ws.transport is not None
        ws.transport.pause_reading()
        await ws.send("deaf-ok")
    elif cmd == "headers":  # the upgrade request's headers, as JSON
        assert ws.request is not None
        await ws.send(json.dumps({k.lower(): v for k, v in ws.request.headers.raw_items()}))
    elif cmd == "many":
        data = bytes.fromhex(words[2])
        for _ in range(int(words[1])):
            await ws.send(data, text=True)


async def _handler(ws: ServerConnection) -> None:
    with contextlib.suppress(Exception):
        async for message in ws:
            text = message if isinstance(message, str) else message.decode()
            await _command(ws, text.split(" "))


def _reject(status: int) -> Any:
    def process_request(connection: ServerConnection, request: Any) -> Any:
        response = connection.respond(HTTPStatus(status), "Forbidden: unknown deploymentId\n")
        response.headers["X-Test"] = "rejected"
        return response

    return process_request


async def _hang_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)
    await asyncio.sleep(3600)


async def main(args: argparse.Namespace) -> None:
    tls = None
    if args.certfile:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.certfile, args.keyfile)
    scheme = "wss" if tls else "ws"
    if args.hang:
        server: Any = await asyncio.start_server(_hang_client, "127.0.0.1", 0)
    else:
        server = await serve(
            _handler,
            "127.0.0.1",
            0,
            ssl=tls,
            process_request=_reject(args.reject) if args.reject else None,
            compression=None,
            ping_interval=None,
        )
    port = server.sockets[0].getsockname()[1]
    print(f"{scheme}://127.0.0.1:{port}/v1", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reject", type=int, default=0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
    sys.exit(0)
