"""MQTT 5.0: each statement where the Server MUST close the Network Connection, with the
reason code section 4.13 "Handling errors" gives, checked over a real socket.

Before the CONNACK the reaction is a CONNACK with the reason code, or a bare close where
the CONNECT itself cannot be trusted (the Server never sends DISCONNECT before a
successful CONNACK [MQTT-3.14.0-1]); after it, a DISCONNECT with the reason code and a
close [MQTT-4.13.1-1]. Every test ends by checking that the broker serves a fresh client.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from roost.auth.base import AuthChain, AuthOutcome, AuthStep, ClientInfo, EnhancedAuthenticator
from roost.mqtt.constants import ReasonCode as RC
from roost.mqtt.packets import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Properties,
    Puback,
    Publish,
    Pubrec,
    Suback,
    Subscribe,
    Subscription,
    Will,
)
from tests.conformance.support import (
    V5,
    V311,
    assert_broker_serves,
    client,
    connected,
    expect_bare_close,
    expect_connack_and_close,
    expect_disconnect,
    read_until_closed,
    retained_topics,
    unique,
)
from tests.conftest import BrokerHandle
from tests.rawclient import RawClient
from tests.vectors import b, pkt, props, s

MQTT = s("MQTT")


def raw(hex_data: str) -> bytes:
    return bytes.fromhex("".join(hex_data.split()))


def connect_hex(
    flags: str, *payload: str, properties: str = "", name: str = MQTT, level: str = "05"
) -> bytes:
    """A CONNECT with the given Connect Flags byte, CONNECT properties and payload."""
    return raw(pkt("10", name, level, flags, "003c", props(properties), *payload))


def disconnected_by(
    broker: BrokerHandle, data: bytes, reason_code: int, **connect: object
) -> RawClient:
    """Connect, send `data`, expect DISCONNECT `reason_code` and the close."""
    c = connected(broker, **connect)  # type: ignore[arg-type]
    c.send_raw(data)
    expect_disconnect(c, reason_code)
    return c


# --- CONNECT first, and once -------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("c000", id="PINGREQ"),
        pytest.param(pkt("30", s("a/b"), props(), "6869"), id="PUBLISH"),
        pytest.param(pkt("82", "0001", props(), s("a/b"), "00"), id="SUBSCRIBE"),
        pytest.param(pkt("f0", "18", props("15" + s("M"))), id="AUTH"),
        pytest.param("e000", id="DISCONNECT"),
    ],
)
def test_MQTT_3_1_0_1_first_packet_not_connect_closes(broker: BrokerHandle, first: str) -> None:
    """[MQTT-3.1.0-1] The first packet MUST be CONNECT. Without a CONNACK there can be no
    DISCONNECT [MQTT-3.14.0-1]: the Server closes without a word."""
    c = client(broker)
    c.send_raw(raw(first))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_0_2_second_connect_disconnect_0x82(broker: BrokerHandle) -> None:
    """[MQTT-3.1.0-2] The Server MUST process a second CONNECT as a Protocol Error and close
    the Network Connection: DISCONNECT 0x82."""
    c = connected(broker)
    c.send(Connect(protocol_version=V5, client_id=unique("again")))
    expect_disconnect(c, RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


# --- Protocol Name and Version -------------------------------------------------------------


def test_MQTT_3_1_2_1_unknown_protocol_name_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-1] The Protocol Name MUST be "MQTT". A name that is not MQTT at all does
    not reveal the Server as an MQTT Server: it closes without a CONNACK."""
    c = client(broker)
    c.send_raw(connect_hex("02", s("c"), name=s("MQTX")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_1_mqisdp_name_with_level_5_connack_0x84(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-1] Protocol Level 5 with the MQTT 3.1 name "MQIsdp": the Server MAY send
    CONNACK 0x84 (Unsupported Protocol Version), in the form a level-5 client reads, and
    MUST close."""
    c = client(broker)
    c.send_raw(connect_hex("02", s("c"), name=s("MQIsdp")))
    assert read_until_closed(c) == raw("20 03 00 84 00")
    assert_broker_serves(broker)


@pytest.mark.parametrize("level", ["06", "07", "ff"])
def test_MQTT_3_1_2_2_unsupported_protocol_version_refused(
    broker: BrokerHandle, level: str
) -> None:
    """[MQTT-3.1.2-2] A Protocol Version the Server does not support: it MAY send CONNACK
    0x84 and MUST close. For a level it cannot know the CONNACK's form of, Roost answers in
    the 3.1.1 form every MQTT client can read: return code 0x01."""
    c = client(broker)
    c.send_raw(connect_hex("02", s("c"), level=level))
    assert read_until_closed(c) == raw("20 02 00 01")
    assert_broker_serves(broker)


# --- Connect Flags and a CONNECT that does not conform -----------------------------------------


@pytest.mark.parametrize(
    ("statement", "flags", "payload"),
    [
        pytest.param("MQTT-3.1.2-3", "03", (s("c"),), id="reserved-flag"),
        pytest.param("MQTT-3.1.2-11", "0a", (s("c"),), id="will-qos-1-without-will-flag"),
        pytest.param("MQTT-3.1.2-11", "12", (s("c"),), id="will-qos-2-without-will-flag"),
        pytest.param("MQTT-3.1.2-12", "1e", (s("c"), props(), s("w"), b("")), id="will-qos-3"),
        pytest.param("MQTT-3.1.2-13", "22", (s("c"),), id="will-retain-without-will-flag"),
        pytest.param("MQTT-3.1.2-9", "06", (s("c"),), id="will-flag-without-will-fields"),
        pytest.param("MQTT-3.1.2-17", "82", (s("c"),), id="user-name-flag-without-user-name"),
        pytest.param("MQTT-3.1.2-19", "42", (s("c"),), id="password-flag-without-password"),
    ],
)
def test_MQTT_3_1_2_3_connect_flags_violations_close(
    broker: BrokerHandle, statement: str, flags: str, payload: tuple[str, ...]
) -> None:
    """[MQTT-3.1.2-3] [MQTT-3.1.2-11] [MQTT-3.1.2-12] [MQTT-3.1.2-13] [MQTT-3.1.2-9]
    [MQTT-3.1.2-17] [MQTT-3.1.2-19] Connect Flags that break these rules make a Malformed
    CONNECT: the Server closes [MQTT-3.1.4-1]; no CONNACK, since the CONNECT cannot be
    trusted."""
    c = client(broker)
    c.send_raw(connect_hex(flags, *payload))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    ("properties", "payload"),
    [
        pytest.param("21 0000", (s("c"),), id="receive-maximum-0"),
        pytest.param("27 00000000", (s("c"),), id="maximum-packet-size-0"),
        pytest.param("17 02", (s("c"),), id="request-problem-information-2"),
        pytest.param("11 00000001 11 00000002", (s("c"),), id="session-expiry-twice"),
        pytest.param("16" + b("01"), (s("c"),), id="authentication-data-without-method"),
        pytest.param("24 01", (s("c"),), id="property-not-allowed-in-connect"),
        pytest.param("", (s("c"), "00"), id="trailing-bytes"),
    ],
)
def test_MQTT_3_1_4_1_nonconforming_connect_closes(
    broker: BrokerHandle, properties: str, payload: tuple[str, ...]
) -> None:
    """[MQTT-3.1.4-1] The Server MUST validate that the CONNECT conforms to section 3.1 and
    close the Network Connection if it does not."""
    c = client(broker)
    c.send_raw(connect_hex("02", *payload, properties=properties))
    expect_bare_close(c)
    assert_broker_serves(broker)


# --- Client Identifier ---------------------------------------------------------------------------


def test_MQTT_3_1_3_8_empty_client_id_rejected_connack_0x85(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.1.3-8] If the Server rejects the ClientID it MAY answer CONNACK 0x85 (Client
    Identifier not valid) and MUST then close the Network Connection."""
    broker = broker_factory(allow_empty_client_id=False)
    c = client(broker)
    c.send(Connect(protocol_version=V5, client_id=""))
    expect_connack_and_close(c, RC.CLIENT_IDENTIFIER_NOT_VALID)
    assert_broker_serves(broker)


def test_MQTT_3_1_3_8_too_long_client_id_rejected_connack_0x85(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.1.3-8] A ClientID longer than the Server allows is rejected with CONNACK
    0x85, then the close."""
    broker = broker_factory(max_client_id_length=16)
    c = client(broker)
    c.send(Connect(protocol_version=V5, client_id="x" * 17))
    expect_connack_and_close(c, RC.CLIENT_IDENTIFIER_NOT_VALID)
    assert_broker_serves(broker)


def test_MQTT_3_1_4_6_no_data_processed_after_a_refused_connect(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.1.4-6] If the Server rejects the CONNECT, it MUST NOT process any data sent
    after it: a retained PUBLISH pipelined behind a refused CONNECT is not stored."""
    broker = broker_factory(allow_empty_client_id=False)
    c = client(broker)
    c.send_raw(connect_hex("02", s("")) + raw(pkt("31", s("refused/v5"), props(), "6869")))
    expect_connack_and_close(c, RC.CLIENT_IDENTIFIER_NOT_VALID)
    assert "refused/v5" not in retained_topics(broker)
    assert_broker_serves(broker)


# --- Keep Alive ------------------------------------------------------------------------------------


def test_MQTT_3_1_2_22_keep_alive_timeout_disconnect_0x8d(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-22] Nothing received within one and a half times the Keep Alive: the
    Server MUST close the Network Connection; it tells the client with DISCONNECT 0x8D
    (Keep Alive timeout)."""
    c = connected(broker, keep_alive=1)
    started = time.monotonic()
    packets = c.expect_closed(4.0)
    elapsed = time.monotonic() - started
    assert [(type(p), getattr(p, "reason_code", None)) for p in packets] == [
        (Disconnect, RC.KEEP_ALIVE_TIMEOUT)
    ]
    assert 1.4 <= elapsed < 3.0, elapsed
    assert_broker_serves(broker)


# --- Capabilities the Server announced in CONNACK ---------------------------------------------------


@pytest.mark.parametrize(("maximum_qos", "qos"), [(1, 2), (0, 1), (0, 2)])
def test_MQTT_3_2_2_11_publish_above_maximum_qos_disconnect_0x9b(
    broker_factory: Callable[..., BrokerHandle], maximum_qos: int, qos: int
) -> None:
    """[MQTT-3.2.2-11] A Client MUST NOT publish above the Maximum QoS in CONNACK; a Server
    receiving such a PUBLISH uses DISCONNECT 0x9B (QoS not supported)."""
    broker = broker_factory(maximum_qos=maximum_qos)
    c = client(broker)
    connack = c.connect(client_id=unique("qos"))
    assert isinstance(connack, Connack) and connack.properties.maximum_qos == maximum_qos
    c.publish("a/b", b"hi", qos=qos, packet_id=1)
    expect_disconnect(c, RC.QOS_NOT_SUPPORTED)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_14_retain_when_not_available_disconnect_0x9a(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-14] With Retain Available 0 the Client MUST NOT set RETAIN; the Server
    answers such a PUBLISH with DISCONNECT 0x9A (Retain not supported)."""
    broker = broker_factory(retain_available=False)
    c = client(broker)
    connack = c.connect(client_id=unique("retain"))
    assert isinstance(connack, Connack) and connack.properties.retain_available == 0
    c.publish("a/b", b"hi", retain=True)
    expect_disconnect(c, RC.RETAIN_NOT_SUPPORTED)
    assert "a/b" not in retained_topics(broker)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_12_will_qos_above_maximum_qos_connack_0x9b(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-12] A Will QoS above the Server's capabilities: the Server MUST reject
    the connection, SHOULD with CONNACK 0x9B (QoS not supported), and MUST close."""
    broker = broker_factory(maximum_qos=1)
    c = client(broker)
    c.send(
        Connect(
            protocol_version=V5,
            client_id=unique("will-qos"),
            will=Will(topic="w/t", payload=b"bye", qos=2),
        )
    )
    expect_connack_and_close(c, RC.QOS_NOT_SUPPORTED)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_13_will_retain_when_not_available_connack_0x9a(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-13] A Will with Will Retain 1 when retained messages are not supported:
    the Server MUST reject the connection, SHOULD with CONNACK 0x9A, and MUST close."""
    broker = broker_factory(retain_available=False)
    c = client(broker)
    c.send(
        Connect(
            protocol_version=V5,
            client_id=unique("will-retain"),
            will=Will(topic="w/t", payload=b"bye", retain=True),
        )
    )
    expect_connack_and_close(c, RC.RETAIN_NOT_SUPPORTED)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_15_packet_too_large_disconnect_0x95(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-15] The Client MUST NOT send packets above the Maximum Packet Size; the
    Server answers DISCONNECT 0x95 (Packet too large), deciding on the fixed header."""
    broker = broker_factory(max_packet_size=128)
    c = client(broker)
    connack = c.connect(client_id=unique("big"))
    assert isinstance(connack, Connack) and connack.properties.maximum_packet_size == 128
    c.publish("a/b", b"x" * 200)
    expect_disconnect(c, RC.PACKET_TOO_LARGE)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_15_packet_just_too_large_announced_only(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-15] The announced size counts: a PUBLISH whose fixed header says 129
    bytes (one above the maximum) is refused before its body arrives."""
    broker = broker_factory(max_packet_size=128)
    c = connected(broker)
    c.send_raw(raw("30 7f"))  # 2 + 127 = 129 bytes, body never sent
    expect_disconnect(c, RC.PACKET_TOO_LARGE)
    assert_broker_serves(broker)


def test_MQTT_4_13_1_1_connect_too_large_closes(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-4.13.1-1] A CONNECT above the Server's Maximum Packet Size: the Server MUST
    close; it MAY send CONNACK 0x95 first. Roost closes at once."""
    broker = broker_factory(max_packet_size=128)
    c = client(broker)
    c.send(Connect(protocol_version=V5, client_id="x" * 200))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_section_3_2_2_3_12_subscription_identifier_not_available_disconnect_0xa1(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """Section 3.2.2.3.12: with Subscription Identifier Available 0, a SUBSCRIBE carrying one
    is a Protocol Error answered with DISCONNECT 0xA1."""
    broker = broker_factory(subscription_identifier_available=False)
    c = client(broker)
    connack = c.connect(client_id=unique("subid"))
    assert isinstance(connack, Connack)
    assert connack.properties.subscription_identifier_available == 0
    c.send(
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter="a/b"),),
            properties=Properties(subscription_identifiers=(5,)),
        )
    )
    expect_disconnect(c, RC.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
    assert_broker_serves(broker)


# --- PUBLISH ----------------------------------------------------------------------------------------


def test_MQTT_3_3_1_4_publish_qos_3_disconnect_0x81(broker: BrokerHandle) -> None:
    """[MQTT-3.3.1-4] A PUBLISH MUST NOT have both QoS bits set: Malformed Packet, 0x81."""
    disconnected_by(broker, raw(pkt("36", s("a/b"), "0001", props(), "6869")), RC.MALFORMED_PACKET)
    assert_broker_serves(broker)


def test_MQTT_3_3_1_2_dup_on_qos_0_disconnect_0x81(broker: BrokerHandle) -> None:
    """[MQTT-3.3.1-2] The DUP flag MUST be 0 for QoS 0: an invalid flag, Malformed Packet."""
    disconnected_by(broker, raw(pkt("38", s("a/b"), props(), "6869")), RC.MALFORMED_PACKET)
    assert_broker_serves(broker)


@pytest.mark.parametrize("topic", ["a/#", "#", "a/+/b", "+"])
def test_MQTT_3_3_2_2_wildcard_in_topic_name_disconnect_0x90(
    broker: BrokerHandle, topic: str
) -> None:
    """[MQTT-3.3.2-2] The Topic Name MUST NOT contain wildcard characters: DISCONNECT 0x90
    (Topic Name invalid)."""
    disconnected_by(broker, raw(pkt("30", s(topic), props(), "6869")), RC.TOPIC_NAME_INVALID)
    assert_broker_serves(broker)


def test_MQTT_4_7_3_1_empty_topic_name_without_alias_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-4.7.3-1] Topic Names MUST be at least one character long; a zero-length Topic
    Name without a Topic Alias is a Protocol Error (section 3.3.2.1)."""
    disconnected_by(broker, raw(pkt("30", s(""), props(), "6869")), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


def test_MQTT_3_3_2_14_wildcard_in_response_topic_disconnect_0x82(broker: BrokerHandle) -> None:
    """[MQTT-3.3.2-14] The Response Topic MUST NOT contain wildcard characters: the PUBLISH
    is well formed but not allowed, a Protocol Error."""
    sub = connected(broker)
    assert sub.subscribe("rt/req", qos=0) == Suback(packet_id=1, reason_codes=(0,))
    disconnected_by(
        broker, raw(pkt("30", s("rt/req"), props("08" + s("rt/+/resp")), "6869")), RC.PROTOCOL_ERROR
    )
    good = connected(broker, V311)
    good.publish("rt/req", b"good")
    message = sub.recv()  # the refused PUBLISH was not forwarded: the next one comes first
    assert isinstance(message, Publish) and message.payload == b"good", message
    assert_broker_serves(broker)


def test_MQTT_3_3_4_6_subscription_identifier_in_client_publish_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.3.4-6] A PUBLISH sent from a Client to a Server MUST NOT contain a
    Subscription Identifier: Protocol Error."""
    disconnected_by(broker, raw(pkt("30", s("a/b"), props("0b 05"), "6869")), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


def test_MQTT_3_3_4_7_receive_maximum_exceeded_disconnect_0x93(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.3.4-7] The Client MUST NOT have more than Receive Maximum QoS 1 / QoS 2
    PUBLISH unacknowledged; the Server answers one more with DISCONNECT 0x93."""
    broker = broker_factory(receive_maximum=2)
    c = client(broker)
    connack = c.connect(client_id=unique("recvmax"))
    assert isinstance(connack, Connack) and connack.properties.receive_maximum == 2
    for packet_id in (1, 2, 3):  # QoS 2: each stays unacknowledged until PUBCOMP
        c.publish("a/b", b"hi", qos=2, packet_id=packet_id)
    expect_disconnect(c, RC.RECEIVE_MAXIMUM_EXCEEDED, before=(Pubrec,))
    assert_broker_serves(broker)


def test_MQTT_3_3_4_7_receive_maximum_counts_only_unacknowledged(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.3.4-7] Control: PUBLISH acknowledged by PUBACK free their slot, so a client
    that waits for each PUBACK may send any number of them."""
    broker = broker_factory(receive_maximum=1)
    c = connected(broker)
    for packet_id in range(1, 5):
        c.publish("a/b", b"hi", qos=1, packet_id=packet_id)
        ack = c.recv()
        assert isinstance(ack, Puback) and ack.packet_id == packet_id
    c.send(Disconnect())
    assert_broker_serves(broker)


# --- Topic Alias --------------------------------------------------------------------------------------


def test_MQTT_3_3_2_8_topic_alias_0_disconnect_0x94(broker: BrokerHandle) -> None:
    """[MQTT-3.3.2-8] A sender MUST NOT send a Topic Alias of 0: DISCONNECT 0x94 (Topic
    Alias invalid), as for any alias outside 1..Topic Alias Maximum."""
    disconnected_by(
        broker, raw(pkt("30", s("a/b"), props("23 0000"), "6869")), RC.TOPIC_ALIAS_INVALID
    )
    assert_broker_serves(broker)


def test_MQTT_3_3_2_9_topic_alias_above_maximum_disconnect_0x94(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.3.2-9] [MQTT-3.2.2-17] A Topic Alias above the Topic Alias Maximum of the
    CONNACK: DISCONNECT 0x94 (Topic Alias invalid)."""
    broker = broker_factory(topic_alias_maximum=3)
    c = client(broker)
    connack = c.connect(client_id=unique("alias"))
    assert isinstance(connack, Connack) and connack.properties.topic_alias_maximum == 3
    c.send(Publish(topic="a/b", payload=b"ok", properties=Properties(topic_alias=3)))
    c.send(Publish(topic="a/b", payload=b"no", properties=Properties(topic_alias=4)))
    expect_disconnect(c, RC.TOPIC_ALIAS_INVALID)
    assert_broker_serves(broker)


def test_MQTT_3_2_2_18_topic_alias_when_maximum_absent_disconnect_0x94(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.2.2-18] With no Topic Alias Maximum in CONNACK the Client MUST NOT send any
    Topic Alias: DISCONNECT 0x94."""
    broker = broker_factory(topic_alias_maximum=0)
    c = client(broker)
    connack = c.connect(client_id=unique("alias0"))
    assert isinstance(connack, Connack) and connack.properties.topic_alias_maximum is None
    c.send(Publish(topic="a/b", payload=b"no", properties=Properties(topic_alias=1)))
    expect_disconnect(c, RC.TOPIC_ALIAS_INVALID)
    assert_broker_serves(broker)


def test_section_3_3_2_3_4_unknown_topic_alias_with_empty_topic_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """Section 3.3.2.3.4: a zero-length Topic Name with a Topic Alias the Client never set
    (here: set on an earlier Network Connection [MQTT-3.3.2-7]) is a Protocol Error."""
    first = connected(broker)
    first.send(Publish(topic="a/b", payload=b"set", properties=Properties(topic_alias=1)))
    first.send(Disconnect())
    assert read_until_closed(first) == b""
    c = connected(broker)
    c.send(Publish(topic="", payload=b"which?", properties=Properties(topic_alias=1)))
    expect_disconnect(c, RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


# --- UTF-8 Encoded Strings --------------------------------------------------------------------------

ILL_FORMED = {
    "lone-continuation-byte": "0001 80",
    "truncated-sequence": "0002 c328",
    "overlong-slash": "0002 c0af",
    "surrogate": "0003 eda080",
}


@pytest.mark.parametrize("bad", ILL_FORMED.values(), ids=ILL_FORMED.keys())
@pytest.mark.parametrize(
    "where", ["PUBLISH-topic", "SUBSCRIBE-filter", "UNSUBSCRIBE-filter", "user-property"]
)
def test_MQTT_1_5_4_1_ill_formed_utf8_disconnect_0x81(
    broker: BrokerHandle, where: str, bad: str
) -> None:
    """[MQTT-1.5.4-1] UTF-8 Encoded Strings MUST be well-formed (no surrogates): a packet
    with ill-formed UTF-8 is a Malformed Packet, DISCONNECT 0x81."""
    data = {
        "PUBLISH-topic": pkt("30", bad, props(), "6869"),
        "SUBSCRIBE-filter": pkt("82", "0001", props(), bad, "00"),
        "UNSUBSCRIBE-filter": pkt("a2", "0001", props(), bad),
        "user-property": pkt("30", s("a/b"), props("26" + s("k") + bad), "6869"),
    }[where]
    disconnected_by(broker, raw(data), RC.MALFORMED_PACKET)
    assert_broker_serves(broker)


@pytest.mark.parametrize("bad", ["0001 00", "0003 eda080"], ids=["U+0000", "surrogate"])
def test_MQTT_1_5_4_1_ill_formed_utf8_in_connect_closes(broker: BrokerHandle, bad: str) -> None:
    """[MQTT-1.5.4-1] [MQTT-1.5.4-2] A Client Identifier that is not a valid UTF-8 Encoded
    String makes the CONNECT Malformed: the Server closes [MQTT-3.1.4-1]."""
    c = client(broker)
    c.send_raw(connect_hex("02", bad))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize("where", ["PUBLISH-topic", "SUBSCRIBE-filter", "content-type"])
def test_MQTT_1_5_4_2_null_character_disconnect_0x81(broker: BrokerHandle, where: str) -> None:
    """[MQTT-1.5.4-2] A UTF-8 Encoded String MUST NOT include U+0000: Malformed Packet."""
    nul = "0003 610062"
    data = {
        "PUBLISH-topic": pkt("30", nul, props(), "6869"),
        "SUBSCRIBE-filter": pkt("82", "0001", props(), nul, "00"),
        "content-type": pkt("30", s("a/b"), props("03" + nul), "6869"),
    }[where]
    disconnected_by(broker, raw(data), RC.MALFORMED_PACKET)
    assert_broker_serves(broker)


# --- Fixed header flags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "data"),
    [
        pytest.param("MQTT-3.6.1-1", "60 02 0009", id="PUBREL-0000"),
        pytest.param("MQTT-3.8.1-1", pkt("80", "0001", props(), s("a/b"), "00"), id="SUBSCRIBE"),
        pytest.param("MQTT-3.10.1-1", pkt("a0", "0001", props(), s("a/b")), id="UNSUBSCRIBE"),
        pytest.param("MQTT-3.14.1-1", "e1 00", id="DISCONNECT"),
        pytest.param("MQTT-3.15.1-1", pkt("f1", "18", props("15" + s("M"))), id="AUTH"),
        pytest.param("MQTT-2.1.3-1", "41 02 0001", id="PUBACK"),
        pytest.param("MQTT-2.1.3-1", "c8 00", id="PINGREQ"),
    ],
)
def test_MQTT_2_1_3_1_reserved_flag_bits_disconnect_0x81(
    broker: BrokerHandle, statement: str, data: str
) -> None:
    """[MQTT-2.1.3-1] [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1] [MQTT-3.14.1-1]
    [MQTT-3.15.1-1] Reserved flag bits MUST have the listed values; other values are a
    Malformed Packet: DISCONNECT 0x81 and close."""
    disconnected_by(broker, raw(data), RC.MALFORMED_PACKET)
    assert_broker_serves(broker)


# --- Packet Identifier, SUBSCRIBE, UNSUBSCRIBE -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(pkt("32", s("a/b"), "0000", props(), "6869"), id="PUBLISH-QoS1"),
        pytest.param(pkt("34", s("a/b"), "0000", props(), "6869"), id="PUBLISH-QoS2"),
        pytest.param(pkt("82", "0000", props(), s("a/b"), "00"), id="SUBSCRIBE"),
        pytest.param(pkt("a2", "0000", props(), s("a/b")), id="UNSUBSCRIBE"),
    ],
)
def test_MQTT_2_2_1_3_packet_identifier_zero_disconnect_0x82(
    broker: BrokerHandle, data: str
) -> None:
    """[MQTT-2.2.1-3] SUBSCRIBE, UNSUBSCRIBE and PUBLISH (QoS > 0) MUST carry a non-zero
    Packet Identifier: Protocol Error."""
    disconnected_by(broker, raw(data), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


def test_MQTT_3_8_3_2_subscribe_without_topic_filter_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.8.3-2] The SUBSCRIBE payload MUST contain at least one Topic Filter and
    Subscription Options pair: Protocol Error."""
    disconnected_by(broker, raw("82 03 0001 00"), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    ("options", "reason_code"),
    [
        pytest.param("40", RC.MALFORMED_PACKET, id="reserved-bit-6"),
        pytest.param("80", RC.MALFORMED_PACKET, id="reserved-bit-7"),
        pytest.param("03", RC.PROTOCOL_ERROR, id="QoS-3"),
        pytest.param("30", RC.PROTOCOL_ERROR, id="retain-handling-3"),
    ],
)
def test_MQTT_3_8_3_5_bad_subscription_options_disconnect(
    broker: BrokerHandle, options: str, reason_code: int
) -> None:
    """[MQTT-3.8.3-5] The Server MUST treat a SUBSCRIBE as malformed if any reserved bit of
    the Subscription Options is set (0x81); Maximum QoS 3 and Retain Handling 3 are Protocol
    Errors (section 3.8.3.1, 0x82)."""
    disconnected_by(broker, raw(pkt("82", "0001", props(), s("a/b"), options)), reason_code)
    assert_broker_serves(broker)


def test_MQTT_3_8_3_4_no_local_on_shared_subscription_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.8.3-4] It is a Protocol Error to set No Local on a Shared Subscription."""
    c = connected(broker)
    c.send(
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter="$share/g/a/b", no_local=True),),
        )
    )
    expect_disconnect(c, RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


def test_MQTT_3_10_3_2_unsubscribe_without_topic_filter_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.10.3-2] The UNSUBSCRIBE payload MUST contain at least one Topic Filter."""
    disconnected_by(broker, raw("a2 03 0001 00"), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


# --- DISCONNECT and AUTH from the client ------------------------------------------------------------------


def test_section_3_14_2_2_2_session_expiry_on_disconnect_after_zero_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """Section 3.14.2.2.2 (next to [MQTT-3.14.2-2]): with a Session Expiry Interval of 0 on
    CONNECT, a non-zero one on the Client's DISCONNECT is a Protocol Error: the Server does
    not treat it as a valid DISCONNECT and answers DISCONNECT 0x82."""
    c = connected(broker, client_id=unique("expiry"))
    c.send(Disconnect(properties=Properties(session_expiry_interval=60)))
    expect_disconnect(c, RC.PROTOCOL_ERROR)
    assert broker.call(lambda: len(broker.server.broker.sessions)) == 0
    assert_broker_serves(broker)


def test_section_3_14_2_2_2_session_expiry_on_disconnect_allowed_after_non_zero(
    broker: BrokerHandle,
) -> None:
    """Control: with a non-zero Session Expiry Interval on CONNECT, the DISCONNECT may
    change it; the Server closes without a DISCONNECT of its own."""
    c = connected(
        broker, client_id=unique("expiry"), properties=Properties(session_expiry_interval=10)
    )
    c.send(Disconnect(properties=Properties(session_expiry_interval=60)))
    assert read_until_closed(c) == b""
    assert_broker_serves(broker)


def test_MQTT_4_12_0_7_auth_without_authentication_method_in_connect_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """[MQTT-4.12.0-7] A Client that gave no Authentication Method in CONNECT MUST NOT send
    AUTH: a Protocol Error."""
    c = connected(broker)
    c.send(
        Auth(
            reason_code=RC.RE_AUTHENTICATE,
            properties=Properties(authentication_method="SCRAM-SHA-1"),
        )
    )
    expect_disconnect(c, RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


def test_section_3_15_2_2_2_auth_omitting_authentication_method_disconnect_0x82(
    broker: BrokerHandle,
) -> None:
    """Section 3.15.2.2.2: it is a Protocol Error to omit the Authentication Method from an
    AUTH packet."""
    disconnected_by(broker, raw("f0 02 18 00"), RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


class _Challenge:
    """An enhanced authentication method that always asks for one more step."""

    def start(self, client: ClientInfo, data: bytes | None) -> AuthStep:
        return AuthStep(outcome=AuthOutcome.CONTINUE, data=b"challenge")

    def step(self, client: ClientInfo, data: bytes | None) -> AuthStep:
        return AuthStep(outcome=AuthOutcome.CONTINUE, data=b"again")


def _challenge(method: str) -> EnhancedAuthenticator | None:
    return _Challenge() if method == "CHALLENGE" else None


def test_MQTT_4_12_0_1_unsupported_authentication_method_connack_0x8c(
    broker: BrokerHandle,
) -> None:
    """[MQTT-4.12.0-1] An Authentication Method the Server does not support: it MAY send
    CONNACK 0x8C (Bad authentication method) and MUST close."""
    c = client(broker)
    c.send(
        Connect(
            protocol_version=V5,
            client_id=unique("auth"),
            properties=Properties(authentication_method="NO-SUCH-METHOD"),
        )
    )
    expect_connack_and_close(c, RC.BAD_AUTHENTICATION_METHOD)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_30_publish_during_enhanced_authentication_connack_0x82(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.1.2-30] With an Authentication Method in CONNECT the Client MUST NOT send
    packets other than AUTH or DISCONNECT before CONNACK: a Protocol Error, answered with
    CONNACK 0x82 since no CONNACK was sent yet."""
    broker = broker_factory(auth=AuthChain(enhanced={"CHALLENGE": _challenge}))
    c = client(broker)
    c.send(
        Connect(
            protocol_version=V5,
            client_id=unique("auth"),
            properties=Properties(authentication_method="CHALLENGE"),
        )
    )
    challenge = c.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == RC.CONTINUE_AUTHENTICATION
    c.publish("a/b", b"too early")
    expect_connack_and_close(c, RC.PROTOCOL_ERROR)
    assert_broker_serves(broker)


# --- Packets a Client never sends -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason_code"),
    [
        pytest.param("20 03 0000 00", RC.PROTOCOL_ERROR, id="CONNACK"),
        pytest.param(pkt("90", "0001", props(), "00"), RC.PROTOCOL_ERROR, id="SUBACK"),
        pytest.param(pkt("b0", "0001", props(), "00"), RC.PROTOCOL_ERROR, id="UNSUBACK"),
        pytest.param("d0 00", RC.PROTOCOL_ERROR, id="PINGRESP"),
        pytest.param("00 00", RC.MALFORMED_PACKET, id="reserved-type-0"),
    ],
)
def test_MQTT_4_13_1_1_packet_a_client_never_sends_disconnect(
    broker: BrokerHandle, data: str, reason_code: int
) -> None:
    """[MQTT-4.13.1-1] A packet type only the Server sends is a Protocol Error (0x82), the
    reserved type 0 a Malformed Packet (0x81): the Server MUST close, after a DISCONNECT."""
    disconnected_by(broker, raw(data), reason_code)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    ("data", "reason_code"),
    [
        pytest.param("c0 80 80 80 80 00", RC.MALFORMED_PACKET, id="remaining-length-5-bytes"),
        pytest.param(pkt("30", s("a/b"), "0a 11 0000"), RC.MALFORMED_PACKET, id="props-past-end"),
        pytest.param(pkt("30", s("a/b"), props("11 00000001")), RC.MALFORMED_PACKET, id="session-expiry-in-publish"),
        pytest.param(pkt("30", s("a/b"), props("02 00000001 02 00000001")), RC.PROTOCOL_ERROR, id="property-twice"),
        pytest.param("40 03 0001 92", RC.PROTOCOL_ERROR, id="PUBACK-invalid-reason-code"),
        pytest.param("e0 01 01", RC.PROTOCOL_ERROR, id="DISCONNECT-invalid-reason-code"),
    ],
)  # fmt: skip
def test_MQTT_4_13_1_1_malformed_packet_or_protocol_error_disconnect(
    broker: BrokerHandle, data: str, reason_code: int
) -> None:
    """[MQTT-4.13.1-1] When the Server detects a Malformed Packet or Protocol Error it MUST
    close the Network Connection, after a DISCONNECT with the reason code."""
    disconnected_by(broker, raw(data), reason_code)
    assert_broker_serves(broker)


# --- CONNECT and what follows it in the same write -------------------------------------------------------


def test_section_3_1_4_packets_pipelined_behind_connect_are_served(broker: BrokerHandle) -> None:
    """Section 3.1.4: Clients may send packets right after CONNECT without waiting for the
    CONNACK: CONNECT + SUBSCRIBE in one write get CONNACK 0x00 then SUBACK."""
    c = client(broker)
    c.send_raw(
        connect_hex("02", s(unique("pipelined")))
        + raw(pkt("82", "0005", props(), s("pipelined/topic"), "01"))
    )
    connack, suback = c.recv(), c.recv()
    assert isinstance(connack, Connack) and connack.reason_code == 0, connack
    assert suback == Suback(packet_id=5, reason_codes=(1,))
    c.send(Disconnect())
    assert_broker_serves(broker)


def test_MQTT_3_2_0_2_bad_packet_pipelined_behind_connect_one_connack(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.2.0-2] The Server MUST NOT send more than one CONNACK: a bad packet sent
    right behind a good CONNECT gets CONNACK 0x00, then DISCONNECT 0x82 (section 4.13)."""
    c = client(broker)
    c.send_raw(
        connect_hex("02", s(unique("pipelined"))) + raw(pkt("82", "0000", props(), s("t"), "00"))
    )
    packets = c.expect_closed()
    assert [type(p) for p in packets] == [Connack, Disconnect], packets
    connack, disconnect = packets
    assert isinstance(connack, Connack) and connack.reason_code == 0
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == RC.PROTOCOL_ERROR
    assert_broker_serves(broker)
