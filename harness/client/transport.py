"""The WebSocket transport: the only module that imports websocket-client (style.md).

Why it looks the way it does:

* Sockets are gevent sockets created here (DNS + TCP with ``tcp_timeout_s``, TLS with its own
  ``tls_timeout_s``), then handed to websocket-client for the upgrade under
  ``upgrade_timeout_s``. So the client is cooperative whether or not the process is
  monkey-patched (Locust patches; pytest does not).
* Reads use ``recv_data_frame(control_frame=True)``: a plain ``recv()`` returns "" on close and
  hides the code (protocol.md §9 pitfall 21). websocket-client answers pings itself inside that
  call, so this module never sends a pong (no double pong). It also echoes a close frame
  itself with code 1000; :class:`_Socket` disables that so the close handshake is ours: the
  server's code is echoed, and a second close frame is never sent.
* UTF-8 validation is skipped in websocket-client: orjson rejects invalid UTF-8 when the frame
  is decoded, so the bytes are checked once, in C.
* Library exceptions become the harness tree: ``HandshakeRejected`` keeps the HTTP status,
  headers and body of a refused upgrade (the browser's "silent 1006", §1.4); ``ConnectError``
  categories are ``dns``, ``refused``, ``timeout``, ``tls``, ``local_ports`` (this machine
  ran out of ephemeral ports, harness.client.sources) and ``connect``.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket as _stdlib_socket
import ssl
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.lock
import gevent.socket
import gevent.ssl
import websocket
from websocket import ABNF

from harness.client.sources import (
    SourceAddresses,
    bind_source,
    local_port_range,
    ports_per_address,
)
from harness.errors import ConnectError, HandshakeRejected
from harness.protocol.codes import Close, CloseCode

# Raw-event categories (harness.record.schema; the client does not import record, design.md
# layers). tests/client/test_results.py checks that they match.
ERR_DNS = "dns"
ERR_REFUSED = "refused"
ERR_TIMEOUT = "timeout"
ERR_TLS = "tls"
ERR_LOCAL_PORTS = "local_ports"
INITIATOR_CLIENT = "client"
INITIATOR_SERVER = "server"
INITIATOR_NONE = "none"

log = logging.getLogger(__name__)

OP_TEXT = ABNF.OPCODE_TEXT
OP_BINARY = ABNF.OPCODE_BINARY
_DATA_OPCODES = (OP_TEXT, OP_BINARY)
OP_CLOSE = ABNF.OPCODE_CLOSE
OP_PING = ABNF.OPCODE_PING
OP_PONG = ABNF.OPCODE_PONG

#: Called by the reader for every data frame: (opcode, payload bytes).
DataHandler = Callable[[int, bytes], None]


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Connect-time settings; see :class:`harness.client.options.ClientOptions`."""

    origin: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tcp_timeout_s: float = 10.0
    tls_timeout_s: float = 10.0
    upgrade_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    ca_file: str | None = None
    insecure: bool = False
    #: local addresses to spread connections over (harness.client.sources); None = the OS picks
    sources: SourceAddresses | None = None


#: One ``recv`` syscall reads up to this much; frames are then cut from the buffer.
READ_CHUNK = 65536
#: A server frame larger than this is refused (the simulator's hard cap is 1 MiB, §5).
MAX_FRAME_BYTES = 16 * 1024 * 1024
_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


def text_frame(payload: bytes, mask_key: bytes | None = None) -> bytes:
    """A client text frame (RFC 6455 §5.2): FIN, opcode 1, masked with a fresh random key.

    websocket-client's ``ABNF.create_frame().format()`` builds the same bytes through several
    objects; this is about 3x cheaper per send. The key comes from ``os.urandom`` as §5.3
    asks; the XOR is done on one big integer.
    """
    n = len(payload)
    key = os.urandom(4) if mask_key is None else mask_key
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = _HEAD16.pack(0x81, 0xFE, n)
    else:
        header = _HEAD64.pack(0x81, 0xFF, n)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    return header + key + (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")


class _Socket(websocket.WebSocket):
    """websocket-client's WebSocket with a buffered frame reader and no automatic close echo.

    * ``recv_data_frame`` calls ``send_close()`` (always code 1000) when a close frame arrives,
      even when we sent ours first; that second close frame, or its EPIPE, would lose the
      server's code. The transport does the close handshake itself.
    * websocket-client's frame parser asks the socket for exactly the bytes it needs (header,
      length, payload): three syscalls and gevent waits per frame, and a generator per read.
      :meth:`recv_frame` cuts whole frames out of one buffered read instead, and consumes
      nothing until a frame is complete, so a read timeout mid-frame loses no bytes.
      ``recv_data_frame`` (fragments, pings, close) still does the rest.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._rbuf = b""
        self._rpos = 0
        self._held: ABNF | None = None
        # One writer at a time: a frame must not interleave with another greenlet's (the
        # reader's automatic pong included) when a send blocks on a full socket buffer.
        self.send_lock = gevent.lock.Semaphore()
        #: Sends are bounded by this (seconds); reads wait without a timeout (see
        #: :meth:`Transport.connect`), so the socket carries it only while a send runs.
        self.send_timeout_s: float | None = None
        #: The non-blocking OS socket under a plain (not TLS) gevent socket, for the send
        #: fast path; set once connected (see :meth:`Transport.connect`).
        self.raw_sock: _stdlib_socket.socket | None = None

    def send_close(self, status: int = 1000, reason: bytes | str = b"") -> None:
        del status, reason

    def send_frame(self, frame: ABNF) -> int:
        with self.send_lock:
            sock = self.sock
            if sock is not None:
                sock.settimeout(self.send_timeout_s)
            try:
                sent: int = super().send_frame(frame)
            finally:
                if sock is not None:
                    sock.settimeout(None)
        return sent

    def send_text_frame(self, payload: bytes) -> None:
        """One masked text frame, bounded by ``send_timeout_s`` (the hot path; see
        :func:`text_frame`).

        One ``send`` usually takes the whole frame; ``sendall`` (which costs a getsockopt, a
        clock read and a memoryview per call in gevent) only finishes a partial send.
        """
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed")
        data = text_frame(payload)
        raw = self.raw_sock
        if raw is not None and not self.send_lock.locked():
            # Fast path: one non-blocking send without yielding, so no other frame can
            # interleave; no settimeout pair and no gevent wrapper (~2.5% of the full flow's
            # CPU in a profile). Only the rest of a partial send waits, bounded, below.
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        with self.send_lock:
            sock.settimeout(self.send_timeout_s)
            try:
                sent = sock.send(data)
                if sent < len(data):
                    sock.sendall(data[sent:])
            finally:
                sock.settimeout(None)

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, Any]:
        """A whole (FIN) text or binary frame outside a fragmented message is returned as it
        came, as websocket-client would return it, without its continuation bookkeeping
        (about a tenth of the reader's CPU per frame); anything else goes through its logic."""
        frame = self.recv_frame()
        opcode = frame.opcode
        if frame.fin and opcode in _DATA_OPCODES and not self.cont_frame.recving_frames:
            return opcode, frame
        self._held = frame
        result: tuple[int, Any] = super().recv_data_frame(control_frame)
        return result

    def recv_frame(self) -> ABNF:
        held = self._held
        if held is not None:  # the frame recv_data_frame handed back to the library
            self._held = None
            return held
        buf, pos = self._rbuf, self._rpos
        while True:
            avail = len(buf) - pos
            if avail >= 2:
                b1, b2 = buf[pos], buf[pos + 1]
                length, head = b2 & 0x7F, 2
                if length == 126:
                    head = 4
                    length = _LEN16.unpack_from(buf, pos + 2)[0] if avail >= 4 else -1
                elif length == 127:
                    head = 10
                    length = _LEN64.unpack_from(buf, pos + 2)[0] if avail >= 10 else -1
                if length > MAX_FRAME_BYTES:
                    raise websocket.WebSocketProtocolException(f"frame of {length} bytes")
                masked = b2 & 0x80
                if masked:
                    head += 4
                if length >= 0 and avail >= head + length:
                    break
            buf, pos = self._more(buf, pos), 0
        start = pos + head
        end = start + length
        payload = buf[start:end]
        if masked:  # servers must not mask (RFC 6455 §5.1); accepted like websocket-client
            payload = ABNF.mask(buf[start - 4 : start], payload)
        if end >= len(buf):
            self._rbuf, self._rpos = b"", 0
        else:
            self._rbuf, self._rpos = buf, end
        frame = ABNF(b1 >> 7, b1 >> 6 & 1, b1 >> 5 & 1, b1 >> 4 & 1, b1 & 0x0F, masked, payload)
        frame.validate(True)  # RSV bits, opcode, control frames; UTF-8 is orjson's job
        return frame

    def _more(self, buf: bytes, pos: int) -> bytes:
        """Append one read to the unconsumed bytes (state changes only once it succeeded)."""
        data = self._fill()
        combined = buf[pos:] + data if pos < len(buf) else data
        self._rbuf, self._rpos = combined, 0
        return combined

    def _recv(self, bufsize: int) -> bytes:
        """Raw reads from the same buffer (websocket-client internals that bypass recv_frame)."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf, pos = self._fill(), 0
        end = pos + bufsize
        if end >= len(buf):
            self._rbuf, self._rpos = b"", 0
            return buf[pos:] if pos else buf
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def _fill(self) -> bytes:
        sock = self.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket is already closed")
        try:
            data: bytes = sock.recv(READ_CHUNK)
        except TimeoutError as exc:
            raise websocket.WebSocketTimeoutException("read timed out") from exc
        except ssl.SSLError as exc:
            if "timed out" in str(exc):
                raise websocket.WebSocketTimeoutException("read timed out") from exc
            raise
        if not data:
            raise websocket.WebSocketConnectionClosedException("connection lost (EOF)")
        return data


@functools.lru_cache(maxsize=8)
def _ssl_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    """One context per (CA bundle, insecure) pair: loading the system store is slow."""
    # gevent.ssl.create_default_context() returns a *stdlib* context whose sockets block the
    # hub; gevent's SSLContext makes cooperative ones.
    ctx: ssl.SSLContext = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # §1.5: TLS 1.2 and 1.3
    ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        ctx.load_verify_locations(cafile=ca_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _split(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectError(f"not a ws:// or wss:// URL: {url!r}", category="url")
    secure = parts.scheme == "wss"
    return parts.hostname, parts.port or (443 if secure else 80), secure


def _open_tcp(
    host: str, port: int, timeout_s: float, sources: SourceAddresses | None = None
) -> gevent.socket.socket:
    """DNS + TCP under one deadline (gevent.Timeout also bounds the resolver)."""
    source = sources.pick() if sources is not None else None
    try:
        with gevent.Timeout(
            timeout_s, ConnectError(f"TCP connect to {host}:{port} timed out", category=ERR_TIMEOUT)
        ):
            if source is None:
                sock = gevent.socket.create_connection((host, port), timeout=timeout_s)
            else:
                sock = _connect_from(source, host, port, timeout_s)
    except _stdlib_socket.gaierror as exc:
        raise ConnectError(f"DNS lookup of {host} failed: {exc}", category=ERR_DNS) from exc
    except ConnectionRefusedError as exc:
        raise ConnectError(f"{host}:{port} refused the connection", category=ERR_REFUSED) from exc
    except TimeoutError as exc:
        raise ConnectError(f"TCP connect to {host}:{port} timed out", category=ERR_TIMEOUT) from exc
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
            raise _out_of_ports(source, host, port) from exc
        raise ConnectError(f"TCP connect to {host}:{port} failed: {exc}") from exc
    sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
    return sock


def _connect_from(source: str, host: str, port: int, timeout_s: float) -> gevent.socket.socket:
    family = _stdlib_socket.AF_INET6 if ":" in source else _stdlib_socket.AF_INET
    infos = gevent.socket.getaddrinfo(host, port, family, _stdlib_socket.SOCK_STREAM)
    if not infos:
        raise _stdlib_socket.gaierror(f"no {family.name} address for {host}")
    af, kind, proto, _, address = infos[0]
    sock = gevent.socket.socket(af, kind, proto)
    try:
        bind_source(sock, source)
        sock.settimeout(timeout_s)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _out_of_ports(source: str | None, host: str, port: int) -> ConnectError:
    """EADDRNOTAVAIL at connect: every ephemeral port of this source address is in use."""
    port_range = local_port_range()
    ports = ports_per_address(port_range)
    span = f" ({port_range[0]}-{port_range[1]}: {ports} ports)" if port_range else ""
    return ConnectError(
        f"no free local port from {source or 'this host'} to {host}:{port}: the ephemeral "
        f"range{span} is used up; spread connections with --source-addresses "
        "(docs/scaling.md#local-ports)",
        category=ERR_LOCAL_PORTS,
    )


def _wrap_tls(sock: gevent.socket.socket, host: str, opts: TransportOptions) -> ssl.SSLSocket:
    ctx = _ssl_context(opts.ca_file, opts.insecure)
    sock.settimeout(opts.tls_timeout_s)
    try:
        with gevent.Timeout(
            opts.tls_timeout_s, ConnectError("TLS handshake timed out", category=ERR_TIMEOUT)
        ):
            tls: ssl.SSLSocket = ctx.wrap_socket(
                sock, server_hostname=host, do_handshake_on_connect=False
            )
            tls.do_handshake()
    except ssl.SSLError as exc:  # includes SSLCertVerificationError
        sock.close()
        raise ConnectError(f"TLS handshake with {host} failed: {exc}", category=ERR_TLS) from exc
    except TimeoutError as exc:
        sock.close()
        raise ConnectError("TLS handshake timed out", category=ERR_TIMEOUT) from exc
    except ConnectError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise ConnectError(f"TLS handshake with {host} failed: {exc}", category=ERR_TLS) from exc
    return tls


def _upgrade(ws: _Socket, url: str, sock: object, opts: TransportOptions) -> None:
    """RFC 6455 upgrade on our socket; a non-101 answer keeps status, headers and body."""
    headers = dict(opts.headers)
    settimeout = getattr(sock, "settimeout", None)
    if settimeout is not None:
        settimeout(opts.upgrade_timeout_s)
    try:
        with gevent.Timeout(
            opts.upgrade_timeout_s, ConnectError("upgrade timed out", category=ERR_TIMEOUT)
        ):
            ws.connect(  # type: ignore[no-untyped-call]  # untyped in websocket-client
                url,
                socket=sock,
                header=headers,
                origin=opts.origin,
                suppress_origin=opts.origin is None,  # §1.3: non-browser clients send none
                timeout=opts.upgrade_timeout_s,
                redirect_limit=0,
            )
    except websocket.WebSocketBadStatusException as exc:
        raise HandshakeRejected(
            exc.status_code, dict(exc.resp_headers or {}), exc.resp_body or b""
        ) from exc
    except websocket.WebSocketTimeoutException as exc:
        raise ConnectError("upgrade timed out", category=ERR_TIMEOUT) from exc
    except TimeoutError as exc:
        raise ConnectError("upgrade timed out", category=ERR_TIMEOUT) from exc
    except ConnectError:
        raise
    except (websocket.WebSocketException, OSError, ValueError) as exc:
        answer = ws.handshake_response  # a 3xx is kept there; we follow no redirects
        if answer is not None and answer.status != 101:
            raise HandshakeRejected(answer.status, dict(answer.headers or {})) from exc
        raise ConnectError(f"upgrade failed: {exc}") from exc


class Transport:
    """One open WebSocket: serialised sends, a blocking read loop, close capture.

    The read loop (:meth:`read_loop`) is meant to run in its own greenlet; it returns the
    :class:`Close` once the connection has ended, and never raises.
    """

    __slots__ = (
        "_close_sent_ns",
        "_ws",
        "bytes_in",
        "bytes_out",
        "close_info",
        "close_sent",
        "frames_in",
    )

    def __init__(self, ws: _Socket) -> None:
        self._ws = ws
        self.close_sent: int | None = None  # the code of our close frame, once sent
        self._close_sent_ns = 0
        self.close_info: Close | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.frames_in = 0

    @classmethod
    def connect(cls, url: str, opts: TransportOptions) -> Transport:
        """Open TCP (+ TLS), upgrade, and return the open transport.

        Raises:
            HandshakeRejected: the upgrade got an HTTP status other than 101.
            ConnectError: DNS, refused, timeout, TLS or any other connect failure.
        """
        host, port, secure = _split(url)
        sock = _open_tcp(host, port, opts.tcp_timeout_s, opts.sources)
        try:
            raw: object = _wrap_tls(sock, host, opts) if secure else sock
            ws = _Socket(enable_multithread=False, skip_utf8_validation=True)
            _upgrade(ws, url, raw, opts)
        except BaseException:
            sock.close()
            raise
        ws.handshake_response = None  # headers are not needed after the upgrade
        if ws.sock is None:
            raise ConnectError("socket closed during the upgrade")
        # No timeout on the socket while it waits for frames: gevent arms a Timeout (a timer
        # and an exception object) for every blocking wait of a socket with a timeout, and an
        # idle read only loops anyway. Sends keep the bound (``_Socket.send_timeout_s``).
        ws.send_timeout_s = opts.read_timeout_s
        ws.sock.settimeout(None)
        if type(ws.sock) is gevent.socket.socket:
            ws.raw_sock = ws.sock._sock  # type: ignore[attr-defined]  # gevent keeps it non-blocking
        return cls(ws)

    # --- sending ------------------------------------------------------------------------------

    def send_text(self, data: bytes) -> int:
        """Send one text frame (§1.5); returns the payload size.

        Raises:
            ConnectionError: the socket is closed or the send failed.
        """
        if self.close_sent is not None:
            raise ConnectionError("close already sent")
        try:
            self._ws.send_text_frame(data)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionError(f"send failed: {exc}") from exc
        self.bytes_out += len(data)
        return len(data)

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bool:
        """Start the close handshake (we close first); False when it was already started."""
        if self.close_sent is not None or self.close_info is not None:
            return False
        self.close_sent = code
        self._close_sent_ns = time.perf_counter_ns()
        self._send_close_frame(Close(code, reason).serialize())
        return True

    def _send_close_frame(self, payload: bytes) -> None:
        try:
            self._ws.send(payload, OP_CLOSE)  # through send_frame: under the send lock
        except (websocket.WebSocketException, OSError) as exc:
            log.debug("close frame not sent: %s", exc)

    def abort(self) -> None:
        """Cut the TCP connection without a close frame; the read loop then ends with 1006."""
        self._ws.abort()  # type: ignore[no-untyped-call]  # untyped in websocket-client

    @property
    def close_handshake_ns(self) -> int:
        """When our close frame was sent (perf_counter_ns), 0 when we did not close first."""
        return self._close_sent_ns

    # --- reading ------------------------------------------------------------------------------

    def read_loop(self, on_data: DataHandler) -> Close:
        """Read frames until the connection ends; hand data frames to ``on_data``.

        Pings are answered by websocket-client inside ``recv_data_frame``. A read timeout is
        just an idle period: the loop goes on. Returns the close: the peer's code when a close
        frame arrived, 1006 when none did (§6).
        """
        ws = self._ws
        recv = ws.recv_data_frame
        try:
            while True:
                try:
                    opcode, frame = recv(True)
                except websocket.WebSocketTimeoutException:
                    continue
                if opcode in (OP_TEXT, OP_BINARY):
                    data = frame.data
                    self.frames_in += 1
                    self.bytes_in += len(data)
                    try:
                        on_data(opcode, data)
                    except Exception:  # a handler bug must not kill the reader
                        log.exception("frame handler failed")
                    frame = data = None  # hold no payload while waiting (memory per socket)
                elif opcode == OP_CLOSE:
                    return self._finish(self._on_close_frame(frame.data))
        except websocket.WebSocketProtocolException as exc:
            return self._finish(self._protocol_failure(str(exc)))
        except websocket.WebSocketPayloadException as exc:
            return self._finish(self._protocol_failure(str(exc), CloseCode.INVALID_DATA))
        except (websocket.WebSocketException, OSError, gevent.Timeout) as exc:
            initiator = INITIATOR_NONE if self.close_sent is None else INITIATOR_CLIENT
            return self._finish(Close(CloseCode.ABNORMAL_CLOSURE, _short(exc), initiator))

    def _on_close_frame(self, payload: bytes) -> Close:
        if self.close_sent is not None:
            return Close.parse(payload, INITIATOR_CLIENT)  # the answer to our close
        close = Close.parse(payload, INITIATOR_SERVER)
        self.close_sent = close.code
        # RFC 6455 §5.5.1: echo the code (an empty payload is echoed empty).
        self._send_close_frame(payload[:2])
        return close

    def _protocol_failure(self, detail: str, code: int = CloseCode.PROTOCOL_ERROR) -> Close:
        """The server broke RFC 6455: we close with 1002 (or 1007) and record that."""
        if self.close_sent is None:
            self.close_sent = code
            self._send_close_frame(Close(code, detail[:100]).serialize())
        return Close(code, detail, INITIATOR_CLIENT)

    def _finish(self, close: Close) -> Close:
        self.close_info = close
        self._ws.shutdown()  # type: ignore[no-untyped-call]  # untyped in websocket-client
        return close


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return f"connection reset ({text})"
    return text[:200]
