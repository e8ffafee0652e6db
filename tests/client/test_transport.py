"""Transport against real loopback servers: upgrades, closes, pings, TLS, connect failures."""

from __future__ import annotations

import socket
from collections.abc import Callable

import gevent
import pytest
import trustme

from harness.client.transport import OP_BINARY, OP_TEXT, Transport, TransportOptions
from harness.errors import ConnectError, HandshakeRejected
from harness.protocol.codes import Close

WAIT_S = 10.0
OPTS = TransportOptions(tcp_timeout_s=5, tls_timeout_s=5, upgrade_timeout_s=5, read_timeout_s=5)


class Reader:
    """Runs a transport's read loop in a greenlet and collects its data frames."""

    def __init__(self, transport: Transport) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.got = gevent.event.Event()
        self.greenlet = gevent.spawn(transport.read_loop, self._on_data)

    def _on_data(self, opcode: int, data: bytes) -> None:
        self.frames.append((opcode, data))
        self.got.set()

    def next(self) -> tuple[int, bytes]:
        while not self.frames:
            self.got.clear()
            assert self.got.wait(WAIT_S), "no frame"
        return self.frames.pop(0)

    def close(self) -> Close:
        result: Close = self.greenlet.get(timeout=WAIT_S)
        return result


def open_script(script_server: Callable[..., object], *args: str) -> tuple[Transport, Reader]:
    server = script_server(*args)
    transport = Transport.connect(server.url, OPTS)  # type: ignore[attr-defined]
    return transport, Reader(transport)


# --- rejected upgrade: the "silent 1006" a browser cannot see (§1.4) ------------------------


def test_rejected_upgrade_keeps_status_headers_and_body(
    script_server: Callable[..., object],
) -> None:
    server = script_server("--reject", "403")
    with pytest.raises(HandshakeRejected) as info:
        Transport.connect(server.url, OPTS)  # type: ignore[attr-defined]
    exc = info.value
    assert exc.status == 403 and exc.category == "http_403"
    assert exc.headers.get("x-test") == "rejected"
    assert "unknown deploymentId" in exc.body


def test_upgrade_that_never_answers_times_out(script_server: Callable[..., object]) -> None:
    server = script_server("--hang")
    opts = TransportOptions(upgrade_timeout_s=0.3)
    with pytest.raises(ConnectError) as info:
        Transport.connect(server.url, opts)  # type: ignore[attr-defined]
    assert info.value.category == "timeout"


def test_refused_connection() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError) as info:
        Transport.connect(f"ws://127.0.0.1:{port}/v1", OPTS)
    assert info.value.category == "refused"


def test_dns_failure_is_categorised(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real lookup (loopback only): the resolver's error is raised in its place."""

    def fail(*args: object, **kw: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(gevent.socket, "create_connection", fail)
    with pytest.raises(ConnectError) as info:
        Transport.connect("ws://guest.invalid/v1", OPTS)
    assert info.value.category == "dns"


def test_not_a_websocket_url() -> None:
    with pytest.raises(ConnectError) as info:
        Transport.connect("http://127.0.0.1:1/v1", OPTS)
    assert info.value.category == "url"


# --- close capture (§6, §9 pitfall 21) ------------------------------------------------------


def test_server_close_code_and_reason_are_captured(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    transport.send_text(b"close 4321 custom reason")
    close = reader.close()
    assert (close.code, close.reason, close.initiator) == (4321, "custom reason", "server")
    assert transport.close_info == close


def test_close_frame_without_code_is_1005(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    transport.send_text(b"bare-close")
    close = reader.close()
    assert (close.code, close.initiator) == (1005, "server")


def test_no_close_frame_is_1006(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    transport.send_text(b"abort")
    close = reader.close()
    assert (close.code, close.initiator) == (1006, "none")


def test_client_close_records_the_servers_answer(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    assert transport.send_close(1000)
    assert not transport.send_close(1000)  # one close frame, ever
    close = reader.close()
    assert (close.code, close.initiator) == (1000, "client")
    assert transport.close_handshake_ns > 0
    with pytest.raises(ConnectionError):
        transport.send_text(b"late")


def test_client_abort_is_1006(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    transport.abort()
    assert reader.close().code == 1006


# --- frames and pings -----------------------------------------------------------------------


def test_pings_are_answered_once_and_data_frames_delivered(
    script_server: Callable[..., object],
) -> None:
    transport, reader = open_script(script_server)
    transport.send_text(b"ping")
    assert reader.next() == (OP_TEXT, b"pong-ok")
    transport.send_text(b"text " + "héllo".encode().hex().encode())
    assert reader.next() == (OP_TEXT, "héllo".encode())
    transport.send_text(b"binary 00ff")
    assert reader.next() == (OP_BINARY, b"\x00\xff")
    # invalid UTF-8 in a text frame is passed on (the decoder rejects it), not a crash
    transport.send_text(b"text c328")
    assert reader.next() == (OP_TEXT, b"\xc3\x28")
    transport.send_close()
    assert reader.close().code == 1000
    assert transport.frames_in == 4 and transport.bytes_out > 0


def test_fragments_lengths_and_coalesced_frames(script_server: Callable[..., object]) -> None:
    transport, reader = open_script(script_server)
    transport.send_text(b"frag 3 " + b"abcdefghi".hex().encode())
    assert reader.next() == (OP_TEXT, b"abcdefghi")
    for size in (125, 126, 300, 65535, 65536, 200_000):  # 7-bit, 16-bit and 64-bit lengths
        transport.send_text(f"big {size}".encode())
        assert reader.next() == (OP_TEXT, b"x" * size)
    transport.send_text(b"many 50 " + b"hi".hex().encode())  # many frames per read
    assert [reader.next() for _ in range(50)] == [(OP_TEXT, b"hi")] * 50
    transport.send_close()
    assert reader.close().code == 1000


def test_read_timeout_mid_frame_loses_nothing(script_server: Callable[..., object]) -> None:
    server = script_server()
    opts = TransportOptions(read_timeout_s=0.05)
    transport = Transport.connect(server.url, opts)  # type: ignore[attr-defined]
    reader = Reader(transport)
    transport.send_text(b"slow 0.3 " + b"split frame".hex().encode())
    assert reader.next() == (OP_TEXT, b"split frame")  # several read timeouts in between
    transport.send_close()
    assert reader.close().code == 1000


# --- TLS (trustme CA; loopback only) --------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca_file = base / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    files = {"ca": str(ca_file)}
    for name, hosts in (("good", ("127.0.0.1", "localhost")), ("wrong", ("example.invalid",))):
        cert = ca.issue_cert(*hosts)
        chain, key = base / f"{name}.pem", base / f"{name}.key"
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        files[name], files[f"{name}_key"] = str(chain), str(key)
    return files


def _tls_server(script_server: Callable[..., object], files: dict[str, str], name: str) -> str:
    server = script_server("--certfile", files[name], "--keyfile", files[f"{name}_key"])
    url: str = server.url  # type: ignore[attr-defined]
    assert url.startswith("wss://")
    return url


def _roundtrip(url: str, opts: TransportOptions) -> None:
    transport = Transport.connect(url, opts)
    reader = Reader(transport)
    transport.send_text(b"ping")
    assert reader.next() == (OP_TEXT, b"pong-ok")
    transport.send_close()
    assert reader.close().code == 1000


def test_tls_with_a_ca_bundle(
    script_server: Callable[..., object], tls_files: dict[str, str]
) -> None:
    url = _tls_server(script_server, tls_files, "good")
    _roundtrip(url, TransportOptions(ca_file=tls_files["ca"]))


def test_tls_untrusted_ca_fails(
    script_server: Callable[..., object], tls_files: dict[str, str]
) -> None:
    url = _tls_server(script_server, tls_files, "good")
    with pytest.raises(ConnectError) as info:
        Transport.connect(url, TransportOptions())  # system store: trustme CA unknown
    assert info.value.category == "tls"


def test_tls_host_name_mismatch_fails_unless_insecure(
    script_server: Callable[..., object], tls_files: dict[str, str]
) -> None:
    url = _tls_server(script_server, tls_files, "wrong")
    with pytest.raises(ConnectError) as info:
        Transport.connect(url, TransportOptions(ca_file=tls_files["ca"]))
    assert info.value.category == "tls"
    assert "127.0.0.1" in str(info.value) or "match" in str(info.value).lower()
    _roundtrip(url, TransportOptions(insecure=True))


@pytest.mark.parametrize("size", [0, 1, 5, 125, 126, 127, 65535, 65536, 70001])
def test_text_frame_matches_websocket_client_framing(size: int) -> None:
    from websocket import ABNF

    from harness.client.transport import text_frame

    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    key = b"\x01\xa2\x33\xf4"
    frame = ABNF.create_frame(payload, ABNF.OPCODE_TEXT)
    frame.get_mask_key = lambda n: key
    assert text_frame(payload, key) == frame.format()


def test_origin_and_extra_headers_reach_the_server(script_server: Callable[..., object]) -> None:
    import json

    server = script_server()
    url: str = server.url  # type: ignore[attr-defined]
    for origin, expected in ((None, None), ("https://site.example", "https://site.example")):
        opts = TransportOptions(origin=origin, headers={"X-Load-Test": "guest-harness"})
        transport = Transport.connect(url, opts)
        reader = Reader(transport)
        transport.send_text(b"headers")
        headers = json.loads(reader.next()[1])
        assert headers.get("origin") == expected  # §1.3: no Origin unless asked for
        assert headers["x-load-test"] == "guest-harness"
        transport.send_close()
        assert reader.close().code == 1000


def test_send_to_a_peer_that_stopped_reading_gives_up(
    script_server: Callable[..., object],
) -> None:
    server = script_server()
    opts = TransportOptions(tcp_timeout_s=5, tls_timeout_s=5, upgrade_timeout_s=5, read_timeout_s=1)
    transport = Transport.connect(server.url, opts)  # type: ignore[attr-defined]
    reader = Reader(transport)
    transport.send_text(b"deaf")
    assert reader.next() == (OP_TEXT, b"deaf-ok")
    chunk = b"x" * 256 * 1024
    with pytest.raises(ConnectionError), gevent.Timeout(30):
        for _ in range(4000):  # the kernel buffers fill after a few MB; then a send times out
            transport.send_text(chunk)
    transport.abort()
    assert reader.close().code == 1006
