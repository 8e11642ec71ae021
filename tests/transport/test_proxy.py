"""PROXY protocol v1 / v2: the parser, and listeners that take the real client address from
it (plain and TLS), for logs, auth and the per-address limit."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator

import pytest

from roost.auth.base import AuthChain
from roost.config import ListenerConfig
from roost.mqtt.packets import Connack
from roost.transport.proxy import (
    V2_SIGNATURE,
    ProxyHeaderError,
    ProxyHeaderReader,
    ProxyInfo,
    parse_v1,
)
from tests.conftest import BrokerHandle, start_broker
from tests.transport.certs import Certificates
from tests.transport.conftest import client_context
from tests.transport.recorder import Recorder
from tests.transport.test_websocket import connect_bytes
from tests.transport.wsclient import WSClient

# -- the parser ---------------------------------------------------------------------------


def v2(command: int, family: int, body: bytes, tlv: bytes = b"") -> bytes:
    payload = body + tlv
    return (
        V2_SIGNATURE + bytes((0x20 | command, family)) + struct.pack("!H", len(payload)) + payload
    )


def v2_tcp4(src: str, sport: int, dst: str = "10.0.0.1", dport: int = 1883) -> bytes:
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return v2(1, 0x11, body)


def read_all(data: bytes, step: int | None = None) -> tuple[ProxyInfo, bytes]:
    reader = ProxyHeaderReader()
    rest = None
    pos = 0
    while rest is None:
        n = step or reader.wanted()
        assert n <= reader.wanted(), "asked for more than the header"
        rest = reader.feed(data[pos : pos + n])
        pos += n
        assert pos <= len(data) + 1
    assert reader.result is not None
    return reader.result, rest + data[pos:]


@pytest.mark.parametrize(
    ("line", "source"),
    [
        (b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 1883", ("192.0.2.7", 56324)),
        (b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 8883", ("2001:db8::7", 4000)),
        (b"PROXY UNKNOWN", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2", None),
    ],
)
def test_v1(line: bytes, source: tuple[str, int] | None) -> None:
    info, rest = read_all(line + b"\r\n" + b"\x10\x00")
    assert info.version == 1 and info.source == source
    assert rest == b"\x10\x00"


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.0.2.7 10.0.0.1 56324",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 1",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 01 1",
        b"PROXY UDP4 192.0.2.7 10.0.0.1 1 1",
        b"PROXY TCP4 999.0.2.7 10.0.0.1 1 1",
    ],
)
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_v1(line)


def test_v1_longer_than_107_bytes() -> None:
    reader = ProxyHeaderReader()
    with pytest.raises(ProxyHeaderError):
        for _ in range(200):
            reader.feed(b"PROXY TCP4 " if not reader._buf else b"1")


def test_v2_tcp4_tcp6_local_unspec_and_tlvs() -> None:
    info, rest = read_all(v2_tcp4("198.51.100.9", 40000) + b"after")
    assert info == ProxyInfo(
        version=2, source=("198.51.100.9", 40000), destination=("10.0.0.1", 1883)
    )
    assert rest == b"after"
    body6 = (
        socket.inet_pton(socket.AF_INET6, "2001:db8::9")
        + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        + struct.pack("!HH", 5, 6)
    )
    info, _ = read_all(v2(1, 0x21, body6, tlv=b"\x04\x00\x02ok"))
    assert info.source == ("2001:db8::9", 5)
    assert read_all(v2(0, 0x00, b""))[0] == ProxyInfo(version=2)
    assert read_all(v2(1, 0x00, b"\x00" * 4))[0].source is None
    info, _ = read_all(v2_tcp4("198.51.100.9", 40000), step=1)
    assert info.source == ("198.51.100.9", 40000)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"\x10\x0f\x00\x04MQTT\x05\x02\x00\x3c",
        V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,  # version 3
        V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\x00" * 12,  # command 2
        V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,  # short IPv4 block
    ],
)
def test_not_a_proxy_header(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        read_all(data)


# -- listeners ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pbroker(certs: Certificates, recorder: Recorder) -> Iterator[BrokerHandle]:
    tls = {"tls_certfile": str(certs.server_pem), "tls_keyfile": str(certs.server_pem)}
    common = {"host": "127.0.0.1", "port": 0, "proxy_protocol": True}
    handle = start_broker(
        AuthChain(authenticators=[recorder]),
        durability="memory",
        listeners=(
            ListenerConfig(name="proxy", max_connections_per_address=2, **common),
            ListenerConfig(name="proxy-tls", transport="tls", **tls, **common),
            ListenerConfig(name="proxy-ws", transport="ws", **common),
        ),
        connect_timeout=1.0,
    )
    yield handle
    handle.stop()


def connack_over(sock: socket.socket | ssl.SSLSocket, client_id: str) -> Connack | None:
    sock.sendall(connect_bytes(client_id))
    return connack_over_read(sock)


def seen_peer(recorder: Recorder, client_id: str) -> str:
    return next(c.peer for c in recorder.seen if c.client_id == client_id)


@pytest.mark.parametrize("version", [1, 2])
def test_real_address_reaches_auth(pbroker: BrokerHandle, recorder: Recorder, version: int) -> None:
    sock = socket.create_connection(("127.0.0.1", pbroker.server.ports["proxy"]), timeout=5)
    header = (
        b"PROXY TCP4 203.0.113.5 10.0.0.1 51000 1883\r\n"
        if version == 1
        else v2_tcp4("203.0.113.5", 51000)
    )
    sock.sendall(header + connect_bytes(f"proxied-v{version}"))  # one segment
    packet = connack_over_read(sock)
    assert packet is not None and packet.reason_code == 0
    assert seen_peer(recorder, f"proxied-v{version}") == "203.0.113.5:51000"
    sock.close()


def connack_over_read(sock: socket.socket) -> Connack | None:
    """The CONNACK, or None when the server closes (or resets) the connection."""
    from roost.mqtt.codec import decode, read_frame

    buf = b""
    while (frame := read_frame(buf, 1 << 20)) is None:
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    packet = decode(frame[0], frame[1], 5)  # type: ignore[arg-type]
    assert isinstance(packet, Connack)
    return packet


def test_proxy_then_tls(pbroker: BrokerHandle, certs: Certificates, recorder: Recorder) -> None:
    raw = socket.create_connection(("127.0.0.1", pbroker.server.ports["proxy-tls"]), timeout=5)
    raw.sendall(v2_tcp4("203.0.113.6", 52000))
    sock = client_context(certs).wrap_socket(raw, server_hostname="localhost")
    packet = connack_over(sock, "proxied-tls")
    assert packet is not None and packet.reason_code == 0
    assert seen_peer(recorder, "proxied-tls") == "203.0.113.6:52000"
    sock.close()


def test_proxy_then_websocket(pbroker: BrokerHandle, recorder: Recorder) -> None:
    c = WSClient.__new__(WSClient)
    WSClient.__init__(c, pbroker.server.ports["proxy-ws"])
    c.sock.sendall(b"PROXY TCP6 2001:db8::5 2001:db8::1 53000 80\r\n")
    c.handshake()
    c.send(connect_bytes("proxied-ws"))
    assert isinstance(c.recv_packet(), Connack)
    assert seen_peer(recorder, "proxied-ws") == "[2001:db8::5]:53000"
    c.close()


def test_missing_or_bad_header_closes(pbroker: BrokerHandle) -> None:
    sock = socket.create_connection(("127.0.0.1", pbroker.server.ports["proxy"]), timeout=5)
    assert connack_over(sock, "no-header") is None
    sock.close()


def test_no_header_in_time_closes(pbroker: BrokerHandle) -> None:
    sock = socket.create_connection(("127.0.0.1", pbroker.server.ports["proxy"]), timeout=5)
    sock.sendall(b"PROXY TCP4 ")
    started = time.monotonic()
    assert sock.recv(10) == b""
    assert time.monotonic() - started < 3


def test_per_address_limit_uses_the_real_address(pbroker: BrokerHandle) -> None:
    port = pbroker.server.ports["proxy"]

    def attempt(src: str, client_id: str) -> tuple[socket.socket, Connack | None]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(v2_tcp4(src, 1000) + connect_bytes(client_id))
        return sock, connack_over_read(sock)

    held = [attempt("198.51.100.1", f"pa-{i}") for i in range(2)]
    assert all(p is not None for _, p in held)
    third, packet = attempt("198.51.100.1", "pa-3")
    assert packet is None, "a third connection from the same real address was accepted"
    other, packet = attempt("198.51.100.2", "pa-other")
    assert packet is not None and packet.reason_code == 0
    for sock, _ in held:
        sock.close()
    third.close()
    other.close()
