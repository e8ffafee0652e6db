"""``SimConnection``: a websockets ``ServerConnection`` that answers frames as they arrive.

The stock connection queues each message and wakes the handler task to read it; here a
complete data frame is handed to the simulator straight from ``data_received`` (through
``process_event``, which ``create_connection`` lets a subclass extend), saving a task wake-up
per frame. Frames that arrive before the handler attached its socket take the stock path.
Control frames are left to the library: pings get pongs at once, in every state (§8.2 item 6).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode

from harness.sim.sessions import Socket

log = logging.getLogger(__name__)

TEXT, BINARY, CONT, PING = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING

#: What the simulator does with one data frame: (socket, text or bytes, loop time).
FrameHandler = Callable[[Socket, "str | bytes", float], None]


class SimConnection(ServerConnection):
    """A ``ServerConnection`` carrying the simulator's socket state."""

    #: ``--idle-counts-pings``: pings reset the idle timer (§8.4 item 26).
    count_pings: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim_deployment = ""
        self.sim_socket: Socket | None = None
        self.sim_on_frame: FrameHandler | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode = TEXT

    def attach(self, sock: Socket, on_frame: FrameHandler) -> None:
        """From now on, answer data frames synchronously with ``on_frame``."""
        self.sim_on_frame = on_frame
        self.sim_socket = sock

    def process_event(self, event: Any) -> None:
        sock = self.sim_socket
        if sock is None or type(event) is not Frame:  # the handshake, or not attached yet
            super().process_event(event)
            return
        opcode = event.opcode
        if opcode is TEXT or opcode is BINARY or opcode is CONT:
            self._data_frame(sock, event)
            return
        if opcode is PING and self.count_pings:
            sock.last_data = self.loop.time()
        super().process_event(event)

    def _data_frame(self, sock: Socket, frame: Frame) -> None:
        if frame.opcode is not CONT:
            self._fragment_opcode = frame.opcode
            if frame.fin:
                self._dispatch(sock, frame.opcode, bytes(frame.data))
                return
            self._fragments = [bytes(frame.data)]
            return
        self._fragments.append(bytes(frame.data))
        if frame.fin:
            data, self._fragments = b"".join(self._fragments), []
            self._dispatch(sock, self._fragment_opcode, data)

    def _dispatch(self, sock: Socket, opcode: Opcode, data: bytes) -> None:
        on_frame = self.sim_on_frame
        assert on_frame is not None
        message: str | bytes = data
        if opcode is TEXT:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                self.protocol.fail(1007, "invalid UTF-8")  # what the library would do
                self.send_data()
                return
        try:
            on_frame(sock, message, self.loop.time())
        except Exception:
            log.exception("simulator bug while handling a frame; closing this socket")
            sock.close(1011, "internal error")  # only this socket (§8.2 item 8)


class PingCountingConnection(SimConnection):
    count_pings = True
