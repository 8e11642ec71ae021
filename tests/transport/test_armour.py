"""Admission armour: connections per listener and per source address, the connection rate,
slow readers (send_timeout), unfinished packets (packet_timeout), TLS handshakes that never
finish."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from roost.config import ListenerConfig
from roost.mqtt.packets import Connack, Suback
from roost.transport.armour import AddressCounter, TokenBucket
from tests.conformance.support import assert_broker_serves
from tests.conftest import BrokerHandle, start_broker
from tests.rawclient import RawClient
from tests.transport.certs import Certificates


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]


def test_address_counter_forgets_addresses() -> None:
    counter = AddressCounter(limit=2)
    assert counter.acquire("a") and counter.acquire("a") and not counter.acquire("a")
    assert counter.acquire("b")
    counter.release("a")
    counter.release("a")
    counter.release("b")
    assert counter.counts == {}
    assert AddressCounter(limit=0).acquire("x")


@pytest.fixture(scope="module")
def abroker(certs: Certificates) -> Iterator[BrokerHandle]:
    tls = {"tls_certfile": str(certs.server_pem), "tls_keyfile": str(certs.server_pem)}
    handle = start_broker(
        durability="memory",
        connect_timeout=1.0,
        listeners=(
            ListenerConfig(name="max3", host="127.0.0.1", port=0, max_connections=3),
            ListenerConfig(
                name="per-addr", host="127.0.0.1", port=0, max_connections_per_address=2
            ),
            ListenerConfig(
                name="rate", host="127.0.0.1", port=0, connection_rate=2.0, connection_burst=3
            ),
            ListenerConfig(
                name="slow", host="127.0.0.1", port=0, send_timeout=1.0, packet_timeout=1.0
            ),
            ListenerConfig(name="tls", transport="tls", host="127.0.0.1", port=0, **tls),
        ),
    )
    yield handle
    handle.stop()


def accepted(handle: BrokerHandle, listener: str, client_id: str) -> tuple[RawClient, bool]:
    """Connect over MQTT; (client, whether CONNACK 0x00 came)."""
    c = RawClient(handle.host, handle.server.ports[listener], timeout=3.0)
    try:
        connack = c.connect(client_id=client_id)
    except Exception:
        return c, False
    return c, isinstance(connack, Connack) and connack.reason_code == 0


def refused(handle: BrokerHandle, listener: str) -> bool:
    try:
        c, ok = accepted(handle, listener, "refused?")
    except OSError:
        return True
    c.close()
    return not ok


def wait_count(handle: BrokerHandle, listener: str, count: int) -> None:
    deadline = time.monotonic() + 3
    lst = next(x for x in handle.server.listeners if x.name == listener)
    while handle.call(lambda: lst.guard.connections) != count:
        assert time.monotonic() < deadline, f"{listener}: still {lst.guard.connections}"
        time.sleep(0.02)


def test_max_connections_per_listener(abroker: BrokerHandle) -> None:
    held = [accepted(abroker, "max3", f"m{i}") for i in range(3)]
    assert all(ok for _, ok in held)
    assert refused(abroker, "max3")
    held[0][0].close()
    wait_count(abroker, "max3", 2)
    c, ok = accepted(abroker, "max3", "m-again")
    assert ok
    for other, _ in [*held[1:], (c, ok)]:
        other.close()
    assert_broker_serves(abroker)


def test_max_connections_per_address(abroker: BrokerHandle) -> None:
    held = [accepted(abroker, "per-addr", f"a{i}") for i in range(2)]
    assert all(ok for _, ok in held)
    assert refused(abroker, "per-addr")
    for c, _ in held:
        c.close()
    wait_count(abroker, "per-addr", 0)
    lst = next(x for x in abroker.server.listeners if x.name == "per-addr")
    assert abroker.call(lambda: dict(lst.guard.addresses.counts)) == {}


def test_connection_rate(abroker: BrokerHandle) -> None:
    results = []
    for i in range(5):
        c, ok = accepted(abroker, "rate", f"r{i}")
        results.append(ok)
        c.close()
    assert results[:3] == [True, True, True] and not all(results)
    time.sleep(1.1)
    c, ok = accepted(abroker, "rate", "r-later")
    assert ok
    c.close()


def test_slow_reader_is_closed_after_send_timeout(abroker: BrokerHandle) -> None:
    """A subscriber that stops reading: once its output is above the high-water mark for
    send_timeout the connection is closed (as a network failure); others keep going."""
    sub = socket.socket()
    sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.connect(("127.0.0.1", abroker.server.ports["slow"]))
    reader = RawClient.__new__(RawClient)
    reader.sock, reader.version, reader.buffer, reader.timeout = sub, 5, bytearray(), 3.0  # type: ignore[assignment]
    assert isinstance(reader.connect(client_id="never-reads", keep_alive=0), Connack)
    assert isinstance(reader.subscribe("flood", qos=0), Suback)
    pub, ok = accepted(abroker, "default", "flooder")
    assert ok
    payload = b"x" * 60_000
    deadline = time.monotonic() + 15

    def gone() -> bool:
        return ("default", "never-reads") not in abroker.server.ctx.connections

    while not abroker.call(gone):
        assert time.monotonic() < deadline, "the slow reader was never closed"
        for _ in range(20):
            pub.publish("flood", payload)
        time.sleep(0.05)
    lst = next(x for x in abroker.server.listeners if x.name == "slow")
    assert abroker.call(lambda: lst.slow_closed) >= 1
    pub.close()
    sub.close()
    assert_broker_serves(abroker)


def test_tls_handshake_never_started_is_closed(abroker: BrokerHandle) -> None:
    """A TCP connection to a TLS listener that sends nothing is closed after connect_timeout;
    so is one that sends half a ClientHello."""
    for data in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        sock = socket.create_connection(("127.0.0.1", abroker.server.ports["tls"]), timeout=10)
        sock.sendall(data)
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        assert 0.5 < time.monotonic() - started < 4
        sock.close()
    wait_count(abroker, "tls", 0)
    assert_broker_serves(abroker)
