"""ServerConnection without sockets or sleeps: bytes in, events and bytes out, a fake `now`.

Driven by the shared packet vectors (tests/vectors.py) and by the rules the connection
enforces on its own: keep alive, topic aliases both ways, the inbound Receive Maximum, the
client's Maximum Packet Size, Request Problem Information, and packets pipelined behind
CONNECT.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import pytest

from roost.core.topics import is_valid_topic_name
from roost.errors import UnsupportedProtocolVersion
from roost.mqtt.codec import decode, encode, read_frame
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.constants import ReasonCode as RC
from roost.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsubscribe,
)
from roost.protocol import events as ev
from roost.protocol.connection import ConnectionLimits, ServerConnection, State
from tests.vectors import VECTORS, Vector

V31, V311, V5 = ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5
T0 = 1_000.0


def topic_ok(topic: str) -> bool:
    return is_valid_topic_name(topic, 65_535, 128)


def connect_packet(version: ProtocolVersion, **kw: object) -> Connect:
    kw.setdefault("client_id", "c")
    return Connect(
        protocol_name="MQIsdp" if version == V31 else "MQTT",
        protocol_version=version,
        **kw,  # type: ignore[arg-type]
    )


def fresh(limits: ConnectionLimits | None = None, now: float = T0) -> ServerConnection:
    return ServerConnection(limits or ConnectionLimits(), topic_ok, now)


def open_connection(
    version: ProtocolVersion = V5,
    limits: ConnectionLimits | None = None,
    now: float = T0,
    **connect: object,
) -> ServerConnection:
    """A connection whose CONNECT was received and accepted; the CONNACK is consumed."""
    conn = fresh(limits, now)
    packet = connect_packet(version, **connect)
    assert conn.receive_data(encode(packet, version), now) == [ev.ConnectReceived(packet)]
    assert conn.state is State.CONNECTING
    conn.accept(Connack())
    assert decode_all(conn.data_to_send(), version) == [Connack()]
    assert conn.state is State.CONNECTED  # type: ignore[comparison-overlap]
    return conn


def decode_all(data: bytes, version: ProtocolVersion) -> list[Packet]:
    """Every packet in `data`, as the client would read them."""
    packets: list[Packet] = []
    while data:
        frame = read_frame(data, 1 << 30)
        assert frame is not None, f"truncated output: {data.hex()}"
        first, body, length = frame
        packets.append(decode(first, bytes(body), version))
        data = data[length:]
    return packets


def failed_with(events: list[ev.Event], reason_code: int) -> None:
    assert events, "no event"
    last = events[-1]
    assert isinstance(last, ev.ProtocolFailed), events
    assert last.reason_code == reason_code, f"0x{last.reason_code:02X} != 0x{reason_code:02X}"


def expect_close(conn: ServerConnection, version: ProtocolVersion, reason_code: int) -> None:
    """After a failure: v5 sends DISCONNECT with the reason code, 3.x sends nothing; the
    connection is closed and reads no more."""
    out = decode_all(conn.data_to_send(), version)
    if version == V5:
        assert len(out) == 1 and isinstance(out[0], Disconnect), out
        assert out[0].reason_code == reason_code
        assert out[0].properties.session_expiry_interval is None  # [MQTT-3.14.2-2]
    else:
        assert out == []
    assert conn.closed
    assert conn.receive_data(encode(Pingreq(), version), T0) == []
    assert conn.data_to_send() == b""


# --- the vectors --------------------------------------------------------------------------

# Where the connection answers a vector's error with a more specific reason code than the
# error class's own.
REASON_OVERRIDES = {"publish-5-topic-alias-0": RC.TOPIC_ALIAS_INVALID}

# Valid packets the connection itself refuses, given a fresh connection's state.
REFUSED_BY_STATE = {
    "publish-311-wildcard-topic-not-checked-here": RC.TOPIC_NAME_INVALID,  # [MQTT-3.3.2-2]
    "publish-5-topic-alias-empty-topic": RC.PROTOCOL_ERROR,  # alias 2 was never set
}


def client_vectors(*, valid: bool) -> list[Vector]:
    return [
        v
        for v in VECTORS
        if v.sender != "server"
        and v.valid == valid
        and not (v.valid and isinstance(v.packet, Connect))
        and v.data[0] >> 4 != 1  # CONNECT vectors are first packets: tested apart
    ]


ERROR_VECTORS = client_vectors(valid=False)
VALID_VECTORS = client_vectors(valid=True)
CONNECT_VECTORS = [v for v in VECTORS if v.data[0] >> 4 == 1]


def expected_code(vector: Vector) -> int:
    return REASON_OVERRIDES.get(vector.name, vector.error.reason_code)


@pytest.mark.parametrize("vector", ERROR_VECTORS, ids=lambda v: v.name)
def test_error_vector_after_connect_fails_with_its_reason_code(vector: Vector) -> None:
    """Each client-sent error vector, after an accepted CONNECT, gives ProtocolFailed with
    its reason code, a DISCONNECT carrying it in v5 [MQTT-4.13.1-1], and a close (3.x)."""
    conn = open_connection(vector.version)
    events = conn.receive_data(vector.data, T0 + 1)
    assert len(events) == 1
    failed_with(events, expected_code(vector))
    expect_close(conn, vector.version, expected_code(vector))


@pytest.mark.parametrize("vector", ERROR_VECTORS, ids=lambda v: v.name)
def test_error_vector_fed_one_byte_at_a_time_fails_the_same(vector: Vector) -> None:
    conn = open_connection(vector.version)
    events: list[ev.Event] = []
    for i in range(len(vector.data)):
        events += conn.receive_data(vector.data[i : i + 1], T0 + 1)
    assert len(events) == 1
    failed_with(events, expected_code(vector))
    expect_close(conn, vector.version, expected_code(vector))


def expected_events(vector: Vector) -> list[ev.Event]:
    packet = vector.packet
    if vector.name in REFUSED_BY_STATE:
        return [ev.ProtocolFailed(REFUSED_BY_STATE[vector.name], "")]
    if isinstance(packet, Publish):
        return [ev.PublishReceived(packet)]
    if isinstance(packet, Pingreq):
        return []
    wrap = {
        Puback: ev.PubackReceived,
        Pubrec: ev.PubrecReceived,
        Pubrel: ev.PubrelReceived,
        Pubcomp: ev.PubcompReceived,
        Subscribe: ev.SubscribeReceived,
        Unsubscribe: ev.UnsubscribeReceived,
        Disconnect: ev.DisconnectReceived,
        Auth: ev.AuthReceived,
    }[type(packet)]
    return [wrap(packet)]


def same_events(got: list[ev.Event], expected: list[ev.Event]) -> None:
    """Equal, except that a ProtocolFailed's human-readable reason is not compared."""
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        if isinstance(e, ev.ProtocolFailed):
            assert isinstance(g, ev.ProtocolFailed) and g.reason_code == e.reason_code, g
        else:
            assert g == e


@pytest.mark.parametrize("vector", VALID_VECTORS, ids=lambda v: v.name)
def test_valid_vector_after_connect_gives_its_event(vector: Vector) -> None:
    """Each valid client vector, after an accepted CONNECT, gives the matching event; a
    PINGREQ gives none and is answered with PINGRESP [MQTT-3.12.4-1]."""
    conn = open_connection(vector.version)
    same_events(conn.receive_data(vector.data, T0 + 1), expected_events(vector))
    out = decode_all(conn.data_to_send(), vector.version)
    if isinstance(vector.packet, Pingreq):
        assert out == [Pingresp()]
    elif vector.name in REFUSED_BY_STATE:
        expect_close_output(out, vector.version, REFUSED_BY_STATE[vector.name])
    else:
        assert out == []


def expect_close_output(out: list[Packet], version: ProtocolVersion, reason_code: int) -> None:
    if version == V5:
        assert [(type(p), getattr(p, "reason_code", None)) for p in out] == [
            (Disconnect, reason_code)
        ]
    else:
        assert out == []


@pytest.mark.parametrize("vector", CONNECT_VECTORS, ids=lambda v: v.name)
def test_connect_vector_as_first_packet(vector: Vector) -> None:
    """A valid CONNECT gives ConnectReceived and waits for the server's answer; a CONNECT
    with an unsupported level is refused with CONNACK 0x84 / 0x01 [MQTT-3.1.2-2]; any other
    bad CONNECT closes without a CONNACK [MQTT-3.1.4-1]. Whole or byte by byte, the same."""
    for chunks in ([vector.data], [vector.data[i : i + 1] for i in range(len(vector.data))]):
        conn = fresh()
        events: list[ev.Event] = []
        for chunk in chunks:
            events += conn.receive_data(chunk, T0)
        if vector.valid:
            assert events == [ev.ConnectReceived(vector.packet)]  # type: ignore[arg-type]
            assert conn.state is State.CONNECTING
            assert conn.data_to_send() == b""
            continue
        failed_with(events, vector.error.reason_code)
        assert conn.closed
        out = conn.data_to_send()
        if vector.name == "connect-unknown-protocol-name":
            assert out == b""  # not MQTT at all: no CONNACK [MQTT-3.1.2-1]
        elif vector.error is UnsupportedProtocolVersion:
            assert out == bytes.fromhex("20020001")  # 3.1.1 form, return code 0x01
        else:
            assert out == b""


def stream_vectors(version: ProtocolVersion) -> list[Vector]:
    """Valid client vectors of one version that a connection takes in a row."""
    return [
        v
        for v in VALID_VECTORS
        if v.version == version
        and v.name not in REFUSED_BY_STATE
        and not isinstance(v.packet, Disconnect)
    ]


@pytest.mark.parametrize("version", [V31, V311, V5], ids=["3.1", "3.1.1", "5.0"])
def test_stream_fed_one_byte_at_a_time_gives_the_same_events(version: ProtocolVersion) -> None:
    """Every valid client packet of a version, as one stream: fed whole or one byte at a
    time, the connection gives the same events and the same output."""
    vectors = stream_vectors(version)
    assert len(vectors) >= 3
    stream = b"".join(v.data for v in vectors) + encode(Disconnect(), version)
    whole = open_connection(version)
    whole_events = whole.receive_data(stream, T0 + 1)
    bytewise = open_connection(version)
    byte_events: list[ev.Event] = []
    for i in range(len(stream)):
        byte_events += bytewise.receive_data(stream[i : i + 1], T0 + 1)
    assert byte_events == whole_events
    assert bytewise.data_to_send() == whole.data_to_send()
    expected: list[ev.Event] = []
    for vector in vectors:
        expected += expected_events(vector)
    assert whole_events[:-1] == expected
    assert isinstance(whole_events[-1], ev.DisconnectReceived)
    assert whole.closed


@pytest.mark.parametrize("chunk", [2, 3, 5, 7, 64])
def test_stream_fed_in_chunks_across_packet_boundaries_gives_the_same_events(chunk: int) -> None:
    """Reads that end inside a packet, after whole ones or in the middle of the next one:
    framed from the bytes received, with only the start of an unfinished packet kept, the
    connection gives the same events and output as when fed the stream whole."""
    vectors = stream_vectors(V5)
    stream = b"".join(v.data for v in vectors)
    whole = open_connection(V5)
    whole_events = whole.receive_data(stream, T0 + 1)
    chunked = open_connection(V5)
    chunk_events: list[ev.Event] = []
    for i in range(0, len(stream), chunk):
        chunk_events += chunked.receive_data(stream[i : i + chunk], T0 + 1)
    assert chunk_events == whole_events
    assert chunked.data_to_send() == whole.data_to_send()


def test_packets_beyond_the_limit_wait_for_the_next_call() -> None:
    """With a limit, a read of many packets gives that many events; the rest waits in the
    connection (`more_input`) and comes with the next call, even one without new bytes,
    ahead of what that call brings."""
    conn = open_connection(V311)
    pings = encode(Pingreq(), V311) * 2
    publishes = b"".join(encode(Publish(topic=f"t/{i}"), V311) for i in range(5))
    first = conn.receive_data(publishes + pings[:1], T0, limit=2)
    assert [e.packet.topic for e in first] == ["t/0", "t/1"]  # type: ignore[attr-defined]
    assert conn.more_input
    second = conn.receive_data(b"", T0, limit=2)
    assert [e.packet.topic for e in second] == ["t/2", "t/3"]  # type: ignore[attr-defined]
    assert conn.more_input
    third = conn.receive_data(pings[1:], T0, limit=2)
    assert [e.packet.topic for e in third] == ["t/4"]  # type: ignore[attr-defined]
    assert not conn.more_input
    assert decode_all(conn.data_to_send(), V311) == [Pingresp(), Pingresp()]
    assert conn.data_to_send() == b""


# --- keep alive ---------------------------------------------------------------------------


def test_keep_alive_deadline_is_one_and_a_half_keep_alive_after_last_packet() -> None:
    """[MQTT-3.1.2-22] The deadline is the last received packet + 1.5 x Keep Alive."""
    conn = open_connection(V5, keep_alive=10, now=T0)
    assert conn.keep_alive_deadline() == T0 + 15
    conn.receive_data(encode(Pingreq(), V5), T0 + 7)
    assert conn.keep_alive_deadline() == T0 + 7 + 15
    conn.receive_data(encode(Publish(topic="a/b"), V5), T0 + 20.5)
    assert conn.keep_alive_deadline() == T0 + 20.5 + 15


def test_keep_alive_deadline_follows_a_server_keep_alive() -> None:
    """[MQTT-3.2.2-21] The server may set the Keep Alive (Server Keep Alive in CONNACK):
    the deadline follows the value in force."""
    conn = open_connection(V311, keep_alive=60, now=T0)
    conn.keep_alive = 4
    assert conn.keep_alive_deadline() == T0 + 6


def test_keep_alive_0_has_no_deadline() -> None:
    """A Keep Alive of 0 turns the mechanism off."""
    conn = open_connection(V5, keep_alive=0)
    assert conn.keep_alive_deadline() is None
    conn.receive_data(encode(Pingreq(), V5), T0 + 1_000)
    assert conn.keep_alive_deadline() is None


# --- inbound topic aliases ------------------------------------------------------------------


def publish_bytes(
    topic: str, alias: int | None = None, payload: bytes = b"p", **kw: object
) -> bytes:
    return encode(
        Publish(topic=topic, payload=payload, properties=Properties(topic_alias=alias), **kw),  # type: ignore[arg-type]
        V5,
    )


def received_topics(events: list[ev.Event]) -> list[str]:
    topics = []
    for event in events:
        assert isinstance(event, ev.PublishReceived), event
        assert event.packet.properties.topic_alias is None  # resolved, not passed on
        topics.append(event.packet.topic)
    return topics


def test_inbound_topic_alias_is_set_used_and_replaced() -> None:
    """[MQTT-3.3.2-12] The server accepts aliases 1..Topic Alias Maximum: a topic with an
    alias sets the mapping, an empty topic uses it, a new topic replaces it."""
    conn = open_connection(V5, ConnectionLimits(topic_alias_maximum=2))
    data = (
        publish_bytes("a/b", 1)
        + publish_bytes("", 1)
        + publish_bytes("c/d", 2)
        + publish_bytes("", 2)
        + publish_bytes("e/f", 1)
        + publish_bytes("", 1)
        + publish_bytes("g", None)
    )
    assert received_topics(conn.receive_data(data, T0)) == [
        "a/b",
        "a/b",
        "c/d",
        "c/d",
        "e/f",
        "e/f",
        "g",
    ]
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    ("maximum", "alias"), [(2, 3), (0, 1), (10, 65_535)], ids=["above-2", "absent", "above-10"]
)
def test_inbound_topic_alias_above_maximum_disconnect_0x94(maximum: int, alias: int) -> None:
    """[MQTT-3.3.2-9] [MQTT-3.2.2-17] [MQTT-3.2.2-18] An alias above the Topic Alias Maximum
    (or any alias when it is 0) is DISCONNECT 0x94."""
    conn = open_connection(V5, ConnectionLimits(topic_alias_maximum=maximum))
    failed_with(conn.receive_data(publish_bytes("a/b", alias), T0), RC.TOPIC_ALIAS_INVALID)
    expect_close(conn, V5, RC.TOPIC_ALIAS_INVALID)


def test_inbound_topic_alias_never_set_is_a_protocol_error() -> None:
    """Section 3.3.2.3.4: an empty Topic Name with an alias that has no mapping."""
    conn = open_connection(V5)
    failed_with(conn.receive_data(publish_bytes("", 1), T0), RC.PROTOCOL_ERROR)
    expect_close(conn, V5, RC.PROTOCOL_ERROR)


def test_inbound_topic_aliases_are_not_carried_to_a_new_connection() -> None:
    """[MQTT-3.3.2-7] A mapping set on one Network Connection is unknown on the next."""
    first = open_connection(V5)
    assert received_topics(first.receive_data(publish_bytes("a/b", 1), T0)) == ["a/b"]
    second = open_connection(V5)
    failed_with(second.receive_data(publish_bytes("", 1), T0), RC.PROTOCOL_ERROR)


def test_resolved_alias_is_checked_like_a_topic_name() -> None:
    """A topic set with an alias is checked as a Topic Name: no wildcards [MQTT-3.3.2-2]."""
    conn = open_connection(V5)
    failed_with(conn.receive_data(publish_bytes("a/#", 1), T0), RC.TOPIC_NAME_INVALID)


# --- inbound Receive Maximum ------------------------------------------------------------------


def qos_publish(packet_id: int, qos: int = 1, version: ProtocolVersion = V5) -> bytes:
    return encode(Publish(topic="a/b", payload=b"x", qos=qos, packet_id=packet_id), version)


def test_receive_maximum_exceeded_disconnect_0x93() -> None:
    """[MQTT-3.3.4-7] One QoS 1/2 PUBLISH more than Receive Maximum unacknowledged is
    DISCONNECT 0x93."""
    conn = open_connection(V5, ConnectionLimits(receive_maximum=2))
    events = conn.receive_data(qos_publish(1) + qos_publish(2, qos=2) + qos_publish(3), T0)
    assert len(events) == 3
    failed_with(events, RC.RECEIVE_MAXIMUM_EXCEEDED)
    expect_close(conn, V5, RC.RECEIVE_MAXIMUM_EXCEEDED)


def test_receive_maximum_is_counted_per_connection() -> None:
    """[MQTT-3.3.4-7] The unacknowledged exchanges of one connection take nothing from
    another's quota (idle connections share one empty set until their first QoS 1/2), and
    a PUBACK of an id never received changes nothing."""
    a = open_connection(V5, ConnectionLimits(receive_maximum=2))
    b = open_connection(V5, ConnectionLimits(receive_maximum=2))
    b.send_puback(9)
    assert len(a.receive_data(qos_publish(1) + qos_publish(2), T0)) == 2
    events = b.receive_data(qos_publish(1) + qos_publish(2, qos=2), T0)
    assert [type(e) for e in events] == [ev.PublishReceived, ev.PublishReceived]
    assert not b.closed
    failed_with(a.receive_data(qos_publish(3), T0), RC.RECEIVE_MAXIMUM_EXCEEDED)
    c = open_connection(V5, ConnectionLimits(receive_maximum=1))
    assert [type(e) for e in c.receive_data(qos_publish(1), T0)] == [ev.PublishReceived]


def test_receive_maximum_quota_freed_by_puback_and_pubcomp() -> None:
    """The quota counts exchanges the server has not completed: PUBACK (QoS 1) and PUBCOMP
    (QoS 2) free a slot, PUBREC 0x00 does not, PUBREC >= 0x80 does."""
    conn = open_connection(V5, ConnectionLimits(receive_maximum=2))
    assert len(conn.receive_data(qos_publish(1) + qos_publish(2, qos=2), T0)) == 2
    conn.send_puback(1)
    assert conn.receive_data(qos_publish(3, qos=2), T0) == [
        ev.PublishReceived(Publish(topic="a/b", payload=b"x", qos=2, packet_id=3))
    ]
    conn.send_pubrec(2)  # success: the exchange goes on, the slot stays taken
    conn.send_pubrec(3)
    failed = conn.receive_data(qos_publish(4), T0)
    failed_with(failed, RC.RECEIVE_MAXIMUM_EXCEEDED)

    conn = open_connection(V5, ConnectionLimits(receive_maximum=2))
    conn.receive_data(qos_publish(1, qos=2) + qos_publish(2, qos=2), T0)
    conn.send_pubrec(1)
    conn.send_pubcomp(1)
    conn.send_pubrec(2, RC.UNSPECIFIED_ERROR)  # refused: the exchange ends here
    events = conn.receive_data(qos_publish(3) + qos_publish(4), T0)
    assert [type(e) for e in events] == [ev.PublishReceived, ev.PublishReceived]
    assert not conn.closed


def test_qos_2_duplicate_while_awaiting_pubrel_takes_no_second_slot() -> None:
    """A QoS 2 PUBLISH resent with the same Packet Identifier before PUBCOMP is flagged
    duplicate (answered with PUBREC, not delivered twice [MQTT-4.3.3-10]) and uses no
    second slot of the quota."""
    conn = open_connection(V5, ConnectionLimits(receive_maximum=1))
    first = conn.receive_data(qos_publish(7, qos=2), T0)
    again = conn.receive_data(qos_publish(7, qos=2), T0)
    assert first == [ev.PublishReceived(Publish(topic="a/b", payload=b"x", qos=2, packet_id=7))]
    assert again == [
        ev.PublishReceived(Publish(topic="a/b", payload=b"x", qos=2, packet_id=7), True)
    ]


def test_receive_maximum_for_3_1_1_is_max_awaiting_rel() -> None:
    """3.1.1 has no Receive Maximum; the server's own bound on unacknowledged inbound
    QoS 1/2 messages closes the connection (no DISCONNECT in 3.1.1)."""
    conn = open_connection(V311, ConnectionLimits(max_awaiting_rel=1, receive_maximum=50))
    events = conn.receive_data(qos_publish(1, version=V311) + qos_publish(2, version=V311), T0)
    failed_with(events, RC.RECEIVE_MAXIMUM_EXCEEDED)
    expect_close(conn, V311, RC.RECEIVE_MAXIMUM_EXCEEDED)


# --- the rules of a client PUBLISH ----------------------------------------------------------


@pytest.mark.parametrize(
    ("publish", "limits", "reason_code"),
    [
        pytest.param(
            Publish(topic="a/b", qos=2, packet_id=1),
            ConnectionLimits(maximum_qos=1),
            RC.QOS_NOT_SUPPORTED,
            id="qos-above-maximum",
        ),
        pytest.param(
            Publish(topic="a/b", retain=True),
            ConnectionLimits(retain_available=False),
            RC.RETAIN_NOT_SUPPORTED,
            id="retain-not-available",
        ),
        pytest.param(
            Publish(topic="a/b", properties=Properties(subscription_identifiers=(1,))),
            ConnectionLimits(),
            RC.PROTOCOL_ERROR,
            id="subscription-identifier",
        ),
        pytest.param(
            Publish(topic="a/b", properties=Properties(response_topic="r/#")),
            ConnectionLimits(),
            RC.PROTOCOL_ERROR,
            id="response-topic-wildcard",
        ),
        pytest.param(Publish(topic=""), ConnectionLimits(), RC.PROTOCOL_ERROR, id="empty-topic"),
        pytest.param(
            Publish(topic="a/+"), ConnectionLimits(), RC.TOPIC_NAME_INVALID, id="wildcard-topic"
        ),
    ],
)
def test_client_publish_rules(publish: Publish, limits: ConnectionLimits, reason_code: int) -> None:
    """[MQTT-3.2.2-11] [MQTT-3.2.2-14] [MQTT-3.3.4-6] [MQTT-3.3.2-14] [MQTT-4.7.3-1]
    [MQTT-3.3.2-2] What the connection refuses in a client's PUBLISH, and with which code."""
    conn = open_connection(V5, limits)
    failed_with(conn.receive_data(encode(publish, V5), T0), reason_code)
    expect_close(conn, V5, reason_code)


def test_second_connect_and_server_only_packets_are_protocol_errors() -> None:
    """[MQTT-3.1.0-2] A second CONNECT, and packets only a server sends, are Protocol
    Errors."""
    for data in (
        encode(connect_packet(V5), V5),
        encode(Connack(), V5),
        encode(Suback(packet_id=1, reason_codes=(0,)), V5),
        encode(Pingresp(), V5),
    ):
        conn = open_connection(V5)
        failed_with(conn.receive_data(data, T0), RC.PROTOCOL_ERROR)
        expect_close(conn, V5, RC.PROTOCOL_ERROR)


def test_first_packet_not_connect_closes_without_a_packet() -> None:
    """[MQTT-3.1.0-1] [MQTT-3.14.0-1] Before CONNECT there is no version and no CONNACK:
    the connection closes and sends nothing."""
    conn = fresh()
    failed_with(conn.receive_data(encode(Pingreq(), V5), T0), RC.PROTOCOL_ERROR)
    assert conn.closed and conn.data_to_send() == b""


def test_disconnect_with_session_expiry_after_zero_is_a_protocol_error() -> None:
    """Section 3.14.2.2.2: a non-zero Session Expiry Interval on DISCONNECT after 0 on
    CONNECT is not a valid DISCONNECT: DISCONNECT 0x82."""
    conn = open_connection(V5)
    data = encode(Disconnect(properties=Properties(session_expiry_interval=5)), V5)
    failed_with(conn.receive_data(data, T0), RC.PROTOCOL_ERROR)
    expect_close(conn, V5, RC.PROTOCOL_ERROR)

    conn = open_connection(V5, properties=Properties(session_expiry_interval=1))
    events = conn.receive_data(data, T0)
    assert [type(e) for e in events] == [ev.DisconnectReceived]


def test_packet_too_large_is_refused_on_its_fixed_header() -> None:
    """[MQTT-3.2.2-15] A packet above the server's Maximum Packet Size: DISCONNECT 0x95,
    decided on the Remaining Length, before the body is buffered."""
    conn = open_connection(V5, ConnectionLimits(max_packet_size=100))
    failed_with(conn.receive_data(bytes.fromhex("30 63"), T0), RC.PACKET_TOO_LARGE)  # 101
    expect_close(conn, V5, RC.PACKET_TOO_LARGE)
    conn = open_connection(V5, ConnectionLimits(max_packet_size=100))
    assert conn.receive_data(bytes.fromhex("30 62"), T0) == []  # 100: waits for the body


# --- outbound: topic aliases, Maximum Packet Size, problem information ------------------------


def send(conn: ServerConnection, topic: str, payload: bytes = b"p", **props: object) -> bool:
    return conn.send_publish(topic, payload, 0, False, False, None, Properties(**props))  # type: ignore[arg-type]


def sent(conn: ServerConnection) -> list[tuple[str, int | None]]:
    out = []
    for packet in decode_all(conn.data_to_send(), V5):
        assert isinstance(packet, Publish)
        out.append((packet.topic, packet.properties.topic_alias))
    return out


def test_outbound_topic_alias_assignment() -> None:
    """[MQTT-3.1.2-26] The server assigns aliases up to the client's Topic Alias Maximum:
    the first PUBLISH of a topic sets the alias, the next ones send an empty topic; when
    all are taken, an alias is reassigned with its full topic."""
    conn = open_connection(V5, properties=Properties(topic_alias_maximum=2))
    for topic in ("a", "a", "b", "b", "a", "c", "c"):
        assert send(conn, topic)
    out = sent(conn)
    assert out[:5] == [("a", 1), ("", 1), ("b", 2), ("", 2), ("", 1)]
    assert out[5][0] == "c" and out[5][1] in (1, 2)
    assert out[6] == ("", out[5][1])
    assert all(alias is not None and 1 <= alias <= 2 for _, alias in out)


@pytest.mark.parametrize("maximum", [None, 0])
def test_no_outbound_topic_alias_without_client_maximum(maximum: int | None) -> None:
    """[MQTT-3.1.2-27] With Topic Alias Maximum absent or 0 the server sends no alias."""
    conn = open_connection(V5, properties=Properties(topic_alias_maximum=maximum))
    for topic in ("a", "a", "b"):
        assert send(conn, topic)
    assert sent(conn) == [("a", None), ("a", None), ("b", None)]


def test_send_publish_above_client_maximum_packet_size_returns_false() -> None:
    """[MQTT-3.1.2-24] [MQTT-3.1.2-25] A PUBLISH larger than the client's Maximum Packet
    Size is not sent: send_publish returns False and nothing is queued."""
    conn = open_connection(V5, properties=Properties(maximum_packet_size=32))
    # Fixed header 2 + topic 2+1 + property length 1 + payload n: n = 26 makes 32 bytes.
    assert send(conn, "t", b"x" * 26)
    assert len(conn.data_to_send()) == 32
    assert not send(conn, "t", b"x" * 27)
    assert conn.data_to_send() == b""


def test_publish_too_large_does_not_leave_an_alias_the_client_never_saw() -> None:
    """An alias assigned for a PUBLISH that was not sent is not used as if it were known:
    the next PUBLISH of that topic carries the full topic."""
    conn = open_connection(V5, properties=Properties(maximum_packet_size=40, topic_alias_maximum=5))
    assert not send(conn, "topic", b"x" * 40)
    assert send(conn, "topic", b"small")
    ((topic, alias),) = sent(conn)
    assert topic == "topic" and alias is not None


def test_reason_string_and_user_properties_withheld_without_problem_information() -> None:
    """[MQTT-3.1.2-29] With Request Problem Information 0 the server sends no Reason String
    or User Property on packets other than PUBLISH, CONNACK and DISCONNECT."""
    problem = Properties(reason_string="why", user_properties=(("k", "v"),))
    conn = open_connection(V5, properties=Properties(request_problem_information=0))
    conn.send(Puback(packet_id=1, reason_code=RC.UNSPECIFIED_ERROR, properties=problem))
    conn.send(Suback(packet_id=2, reason_codes=(0x80,), properties=problem))
    conn.send(Pubrel(packet_id=3, properties=problem))
    conn.send_publish("a/b", b"", 0, False, False, None, replace(problem, reason_string=None))
    out = decode_all(conn.data_to_send(), V5)
    assert [type(p) for p in out] == [Puback, Suback, Pubrel, Publish]
    for packet in out[:3]:
        assert packet.properties == Properties(), packet  # type: ignore[union-attr]
    assert out[3].properties.user_properties == (("k", "v"),)  # type: ignore[union-attr]

    kept = open_connection(V5)
    kept.send(Puback(packet_id=1, reason_code=RC.UNSPECIFIED_ERROR, properties=problem))
    (puback,) = decode_all(kept.data_to_send(), V5)
    assert puback.properties == problem  # type: ignore[union-attr]


def test_problem_information_0_still_allows_connack_properties() -> None:
    """[MQTT-3.1.2-29] CONNACK may still carry a Reason String and User Properties."""
    conn = fresh()
    packet = connect_packet(V5, properties=Properties(request_problem_information=0))
    conn.receive_data(encode(packet, V5), T0)
    connack = Connack(properties=Properties(reason_string="hello", user_properties=(("a", "b"),)))
    conn.accept(connack)
    assert decode_all(conn.data_to_send(), V5) == [connack]


# --- CONNECT and what is pipelined behind it --------------------------------------------------


def test_packets_pipelined_behind_connect_follow_connect_received() -> None:
    """Section 3.1.4: packets sent right after CONNECT are events after ConnectReceived; a
    PINGRESP for a pipelined PINGREQ waits for the CONNACK [MQTT-3.2.0-1]."""
    conn = fresh()
    subscribe = Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="a/#"),))
    data = encode(connect_packet(V5), V5) + encode(Pingreq(), V5) + encode(subscribe, V5)
    events = conn.receive_data(data, T0)
    assert events == [ev.ConnectReceived(connect_packet(V5)), ev.SubscribeReceived(subscribe)]
    assert conn.data_to_send() == b""
    conn.accept(Connack())
    assert decode_all(conn.data_to_send(), V5) == [Connack(), Pingresp()]


def test_bad_packet_pipelined_behind_connect_fails_after_the_connack() -> None:
    """[MQTT-3.2.0-2] One CONNACK only: a bad packet behind CONNECT is reported at once,
    and the DISCONNECT follows the server's CONNACK; nothing after it is read."""
    conn = fresh()
    bad = bytes.fromhex("82 03 0000 00")  # SUBSCRIBE, Packet Identifier 0, no filter
    data = encode(connect_packet(V5), V5) + bad + encode(Pingreq(), V5)
    events = conn.receive_data(data, T0)
    assert events[0] == ev.ConnectReceived(connect_packet(V5))
    failed_with(events, RC.PROTOCOL_ERROR)
    assert len(events) == 2
    assert conn.data_to_send() == b""
    conn.accept(Connack())
    out = decode_all(conn.data_to_send(), V5)
    assert [(type(p), getattr(p, "reason_code", None)) for p in out] == [
        (Connack, 0),
        (Disconnect, RC.PROTOCOL_ERROR),
    ]
    assert conn.closed


def test_refused_connect_drops_what_was_pipelined_behind_it() -> None:
    """[MQTT-3.1.4-6] After a refusing CONNACK nothing more is sent or read."""
    conn = fresh()
    data = encode(connect_packet(V5), V5) + encode(Pingreq(), V5)
    conn.receive_data(data, T0)
    conn.refuse(RC.NOT_AUTHORIZED)
    assert decode_all(conn.data_to_send(), V5) == [Connack(reason_code=RC.NOT_AUTHORIZED)]
    assert conn.closed
    conn.send_puback(1)
    assert conn.data_to_send() == b""


def test_packet_before_connack_with_authentication_method_connack_0x82() -> None:
    """[MQTT-3.1.2-30] With an Authentication Method only AUTH or DISCONNECT may come before
    CONNACK; anything else is a Protocol Error answered with CONNACK 0x82."""
    conn = fresh()
    packet = connect_packet(V5, properties=Properties(authentication_method="M"))
    assert conn.receive_data(encode(packet, V5), T0) == [ev.ConnectReceived(packet)]
    auth = Auth(reason_code=0x18, properties=Properties(authentication_method="M"))
    assert conn.receive_data(encode(auth, V5), T0) == [ev.AuthReceived(auth)]
    failed_with(conn.receive_data(encode(Publish(topic="a"), V5), T0), RC.PROTOCOL_ERROR)
    assert decode_all(conn.data_to_send(), V5) == [Connack(reason_code=RC.PROTOCOL_ERROR)]
    assert conn.closed


def test_nothing_is_sent_after_a_disconnect() -> None:
    """[MQTT-3.14.4-1] After the server's DISCONNECT no packet follows, even answers to
    packets read before the failure."""
    conn = open_connection(V5, ConnectionLimits(receive_maximum=1))
    events = conn.receive_data(qos_publish(1) + qos_publish(2), T0)
    failed_with(events, RC.RECEIVE_MAXIMUM_EXCEEDED)
    conn.send_puback(1)  # the answer to the first, given after the failure was detected
    out = decode_all(conn.data_to_send(), V5)
    assert [type(p) for p in out] == [Disconnect]


def test_unsupported_version_refusal_uses_the_requested_form() -> None:
    """[MQTT-3.1.2-2] A known Protocol Name with an unsupported level: CONNACK 0x84 in the
    v5 form for level 5 names, 0x01 in the 3.1.1 form otherwise."""
    conn = fresh()
    level_6 = bytes.fromhex("10 0d 0004 4d515454 06 02 0000 0001 63")
    failed_with(conn.receive_data(level_6, T0), RC.UNSUPPORTED_PROTOCOL_VERSION)
    assert conn.data_to_send() == bytes.fromhex("20020001")
    conn = fresh()
    mqisdp_5 = bytes.fromhex("10 10 0006 4d5149736470 05 02 0000 00 0001 63")
    failed_with(conn.receive_data(mqisdp_5, T0), RC.UNSUPPORTED_PROTOCOL_VERSION)
    assert conn.data_to_send() == bytes.fromhex("2003008400")


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
