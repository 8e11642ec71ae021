"""Helpers for the conformance tests: connect raw clients to a test broker, read what the
broker does when it closes a connection, and check that the broker still serves others."""

from __future__ import annotations

import itertools
import logging
import time

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Disconnect,
    Properties,
    Puback,
    Publish,
    Suback,
)
from tests.conftest import BrokerHandle
from tests.rawclient import RawClient

V311 = ProtocolVersion.V311
V5 = ProtocolVersion.V5

# Every close the tests wait for happens at once, except the keep-alive ones.
CLOSE_TIMEOUT = 3.0

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def client(broker: BrokerHandle, version: ProtocolVersion = V5) -> RawClient:
    """A raw client, connected over TCP but not yet over MQTT."""
    return RawClient(broker.host, broker.port, version=version, timeout=CLOSE_TIMEOUT)


def connected(
    broker: BrokerHandle,
    version: ProtocolVersion = V5,
    properties: Properties | None = None,
    **kw: object,
) -> RawClient:
    """A raw client whose CONNECT the broker accepted."""
    c = client(broker, version)
    kw.setdefault("client_id", unique("c"))
    connack = c.connect(properties=properties, **kw)  # type: ignore[arg-type]
    assert isinstance(connack, Connack), connack
    assert connack.reason_code == 0, connack
    return c


def read_until_closed(c: RawClient, timeout: float = CLOSE_TIMEOUT) -> bytes:
    """Every byte the broker sends until it closes; fails if it does not close in time."""
    data = bytes(c.buffer)
    c.buffer.clear()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the broker did not close the connection; it sent {data.hex()}"
        c.sock.settimeout(left)
        try:
            chunk = c.sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            continue
        if not chunk:
            return data
        data += chunk


def expect_bare_close(c: RawClient) -> None:
    """The broker closes the Network Connection without sending anything."""
    data = read_until_closed(c)
    assert data == b"", f"expected a close without any packet, got {data.hex()}"


def expect_connack_and_close(c: RawClient, reason_code: int) -> Connack:
    """The broker answers CONNACK with `reason_code` (Session Present 0 [MQTT-3.2.2-6]),
    then closes [MQTT-3.2.2-7]."""
    connack = c.recv(CLOSE_TIMEOUT)
    assert isinstance(connack, Connack), connack
    assert connack.reason_code == reason_code, f"0x{connack.reason_code:02X}"
    assert not connack.session_present
    assert c.expect_closed(CLOSE_TIMEOUT) == []
    return connack


def expect_disconnect(c: RawClient, reason_code: int, *, before: tuple[type, ...] = ()) -> None:
    """The broker sends DISCONNECT with `reason_code` and closes; nothing follows it
    [MQTT-3.14.4-1] and it carries no Session Expiry Interval [MQTT-3.14.2-2].

    `before` lists the packet types that may come first (answers to earlier packets)."""
    packets = c.expect_closed(CLOSE_TIMEOUT)
    assert packets, "expected a DISCONNECT before the close, got a bare close"
    *earlier, last = packets
    assert isinstance(last, Disconnect), packets
    assert last.reason_code == reason_code, (
        f"DISCONNECT 0x{last.reason_code:02X}, expected 0x{reason_code:02X}: {last}"
    )
    assert last.properties.session_expiry_interval is None
    for packet in earlier:
        assert isinstance(packet, before), packets


def assert_broker_serves(broker: BrokerHandle) -> None:
    """A fresh subscriber and publisher connect, subscribe, publish and receive."""
    qos = min(1, broker.server.config.mqtt.maximum_qos)
    topic = unique("serves/topic")
    sub = connected(broker, client_id=unique("serves-sub"))
    suback = sub.subscribe(topic, qos=1)
    assert isinstance(suback, Suback) and suback.reason_codes == (qos,), suback
    pub = connected(broker, V311, client_id=unique("serves-pub"))
    pub.publish(topic, b"still serving", qos=qos, packet_id=7 if qos else None)
    if qos:
        puback = pub.recv()
        assert isinstance(puback, Puback) and puback.packet_id == 7, puback
    message = sub.recv()
    assert isinstance(message, Publish), message
    assert (message.topic, message.payload, message.qos) == (topic, b"still serving", qos)
    pub.send(Disconnect())
    sub.send(Disconnect())
    pub.close()
    sub.close()


def retained_topics(broker: BrokerHandle) -> set[str]:
    """The topics of every retained message the broker holds, over all tenants."""
    core = broker.server.broker

    def collect() -> set[str]:
        return {topic for index in core.retained.values() for topic, _ in index.items()}

    topics: set[str] = broker.call(collect)
    return topics


def internal_errors(records: list[logging.LogRecord]) -> list[str]:
    """Log records of unexpected exceptions in the broker's connection handling."""
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR]
