"""The start of an unfinished packet is kept as one copy of its bytes: not a slice of the
bytes received and then a copy of that (twice the packet's size at once), and never the
caller's own buffer, which it may reuse."""

from __future__ import annotations

import tracemalloc

from roost.mqtt.codec import encode
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Connack, Connect, Pingreq, Publish
from roost.protocol import events as ev
from roost.protocol.connection import ConnectionLimits, ServerConnection

V5 = ProtocolVersion.V5
T0 = 1_000.0
SIZE = 512 * 1024


def connected() -> ServerConnection:
    conn = ServerConnection(ConnectionLimits(), lambda topic: True, T0)
    packet = Connect(protocol_name="MQTT", protocol_version=V5, client_id="c")
    assert conn.receive_data(encode(packet, V5), T0) == [ev.ConnectReceived(packet)]
    conn.accept(Connack())
    conn.data_to_send()
    return conn


def big_publish() -> tuple[Publish, bytes]:
    publish = Publish(topic="big", payload=bytes(range(256)) * (SIZE // 256), qos=0)
    return publish, encode(publish, V5)


def test_unfinished_packet_from_bytes_is_copied_once() -> None:
    conn = connected()
    publish, data = big_publish()
    head = encode(Pingreq(), V5) + data[:-1]  # a whole packet first: the rest is a tail
    tracemalloc.start()
    try:
        assert conn.receive_data(head, T0 + 1) == []  # the PINGREQ is answered within
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert SIZE <= peak < SIZE * 3 // 2  # one copy of the head, not two at once
    [event] = conn.receive_data(data[-1:], T0 + 1)
    assert isinstance(event, ev.PublishReceived) and event.packet.payload == publish.payload


def test_unfinished_packet_from_a_reused_bytearray_is_not_aliased() -> None:
    conn = connected()
    publish, data = big_publish()
    received = bytearray(data[:1000])
    assert conn.receive_data(received, T0 + 1) == []  # type: ignore[arg-type]
    received[:] = b"\xff" * len(received)  # the reader reuses its buffer
    [event] = conn.receive_data(data[1000:], T0 + 1)
    assert isinstance(event, ev.PublishReceived) and event.packet.payload == publish.payload
