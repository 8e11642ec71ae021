"""Fuzz target: the server side of one MQTT connection (roost.protocol.ServerConnection).

Input: a selector byte (protocol version for the server's outbound PUBLISH, whether the
server accepts or refuses CONNECT, whether the stream arrives at once or in small chunks),
a limits byte, then the bytes a client sends. The target plays the server: it answers
every event the way the broker would (CONNACK, PUBACK / PUBREC / PUBCOMP, SUBACK,
UNSUBACK, AUTH), sends a PUBLISH back on each topic it receives (outbound topic aliases,
the client's Maximum Packet Size) and checks the machine's invariants:

- receive_data never raises; the only way out is a ProtocolFailed event;
- nothing is read once the connection is closed; nothing but CONNACK/AUTH before CONNACK;
- every byte the server sends is a well-formed packet that the decoder accepts.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["roost"]):
    from roost.core.topics import is_valid_topic_name
    from roost.mqtt.codec import decode, read_frame
    from roost.mqtt.constants import PacketType, ProtocolVersion, ReasonCode
    from roost.mqtt.packets import Connack, Properties
    from roost.protocol import events as ev
    from roost.protocol.connection import ConnectionLimits, ServerConnection, State

MAX = 268_435_460


def topic_valid(topic: str) -> bool:
    return is_valid_topic_name(topic, 65_535, 128)


def check_output(conn: ServerConnection, data: bytes, connack_seen: list[bool]) -> None:
    """What the server sends decodes, and nothing but CONNACK / AUTH precedes CONNACK."""
    view = memoryview(data)
    offset = 0
    version = conn.version or ProtocolVersion.V311
    while offset < len(view):
        frame = read_frame(view[offset:], MAX)
        assert frame is not None, "the server sent an incomplete packet"
        first_byte, body, length = frame
        packet_type = first_byte >> 4
        if not connack_seen[0]:
            assert packet_type in (PacketType.CONNACK, PacketType.AUTH), (
                f"packet type {packet_type} before CONNACK"
            )
        if packet_type == PacketType.CONNACK:
            assert not connack_seen[0], "a second CONNACK"
            connack_seen[0] = True
        decode(first_byte, body, version)
        body.release()
        offset += length


def react(conn: ServerConnection, event: object, accept: bool) -> None:
    """What the broker does for each event (without a broker)."""
    if isinstance(event, ev.ConnectReceived):
        if accept:
            conn.accept(Connack(session_present=False, reason_code=ReasonCode.SUCCESS))
        else:
            conn.refuse(ReasonCode.NOT_AUTHORIZED)
    elif isinstance(event, ev.PublishReceived):
        packet = event.packet
        if packet.qos == 1:
            conn.send_puback(packet.packet_id or 0)
        elif packet.qos == 2:
            conn.send_pubrec(packet.packet_id or 0)
        if conn.state is State.CONNECTED:
            conn.send_publish(
                packet.topic,
                packet.payload,
                packet.qos,
                False,
                False,
                packet.packet_id if packet.qos else None,
                Properties(),
            )
    elif isinstance(event, ev.PubrelReceived):
        conn.send_pubcomp(event.packet.packet_id)
    elif isinstance(event, ev.SubscribeReceived):
        codes = tuple(min(s.qos, 1) for s in event.packet.subscriptions)
        conn.send_suback(event.packet.packet_id, codes)
    elif isinstance(event, ev.UnsubscribeReceived):
        conn.send_unsuback(event.packet.packet_id, tuple(0 for _ in event.packet.topic_filters))
    elif isinstance(event, ev.AuthReceived):
        conn.fail(ReasonCode.PROTOCOL_ERROR, "no enhanced authentication here")


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    selector, limit_byte = data[0], data[1]
    accept = not selector & 0x08
    chunked = bool(selector & 0x01)
    limits = ConnectionLimits(
        max_packet_size=64 + (limit_byte & 0x0F) * 4096,
        receive_maximum=1 + (limit_byte >> 4),
        max_awaiting_rel=1 + (limit_byte >> 4),
        topic_alias_maximum=limit_byte & 0x07,
        maximum_qos=2 if limit_byte & 0x40 else 1,
        retain_available=not limit_byte & 0x80,
    )
    conn = ServerConnection(limits, topic_valid, 0.0)
    stream = data[2:]
    step = (selector >> 4) + 1 if chunked else len(stream) or 1
    connack_seen = [False]
    now = 0.0
    for start in range(0, len(stream), step):
        was_closed = conn.state is State.CLOSED
        events = conn.receive_data(stream[start : start + step], now)
        if was_closed:
            assert not events, "events after the connection closed"
        for event in events:
            react(conn, event, accept)
            if isinstance(event, ev.ProtocolFailed):
                assert conn.state is State.CLOSED or conn._deferred_failure is not None
        check_output(conn, conn.data_to_send(), connack_seen)
        now += 0.5
        if conn.keep_alive_deadline() is not None:
            assert conn.keep_alive_deadline() >= conn.last_received  # type: ignore[operator]


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
