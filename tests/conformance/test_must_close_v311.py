"""MQTT 3.1.1: each statement where the Server MUST close the Network Connection (or
disconnect the Client), checked over a real socket against a running Roost.

Each test breaks one rule, asserts the broker's exact reaction (a close, after a CONNACK
where the statement asks for one) and then checks that the broker still serves a fresh
client. 3.1.1 has no server DISCONNECT: "close" means the broker sends nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from roost.mqtt.packets import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Pubrec,
    Suback,
    Subscribe,
    Subscription,
    Will,
)
from tests.conformance.support import (
    V311,
    assert_broker_serves,
    client,
    connected,
    expect_bare_close,
    internal_errors,
    read_until_closed,
    retained_topics,
    unique,
)
from tests.conftest import BrokerHandle
from tests.rawclient import RawClient
from tests.vectors import b, pkt, s

MQTT = s("MQTT")


def raw(hex_data: str) -> bytes:
    return bytes.fromhex("".join(hex_data.split()))


def connect_hex(flags: str, *payload: str, name: str = MQTT, level: str = "04") -> bytes:
    """A 3.1.1 CONNECT with the given Connect Flags byte and payload fields."""
    return raw(pkt("10", name, level, flags, "003c", *payload))


def v311(broker: BrokerHandle) -> RawClient:
    return connected(broker, V311)


def closes_after(broker: BrokerHandle, data: bytes) -> None:
    """Connect, send `data`, and expect the broker to close without a word."""
    c = v311(broker)
    c.send_raw(data)
    expect_bare_close(c)


# --- CONNECT first, and once ---------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("c000", id="PINGREQ"),
        pytest.param(pkt("30", s("a/b"), "6869"), id="PUBLISH"),
        pytest.param(pkt("82", "0001", s("a/b"), "00"), id="SUBSCRIBE"),
        pytest.param("e000", id="DISCONNECT"),
    ],
)
def test_MQTT_3_1_0_1_first_packet_not_connect_closes(broker: BrokerHandle, first: str) -> None:
    """[MQTT-3.1.0-1] The first packet from the Client MUST be CONNECT: anything else is a
    protocol violation, and the Server closes without a CONNACK [MQTT-4.8.0-1]."""
    c = client(broker, V311)
    c.send_raw(raw(first))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_0_2_second_connect_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.0-2] The Server MUST process a second CONNECT Packet sent from a Client as
    a protocol violation and disconnect the Client."""
    c = v311(broker)
    c.send(Connect(client_id=unique("again")))
    expect_bare_close(c)
    assert_broker_serves(broker)


# --- Protocol Name and Level ------------------------------------------------------------


def test_MQTT_3_1_2_1_unknown_protocol_name_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-1] A CONNECT with a Protocol Name other than "MQTT": the Server MAY
    disconnect and MUST NOT go on processing it as MQTT. Roost closes without a CONNACK."""
    c = client(broker, V311)
    c.send_raw(connect_hex("02", s("c"), name=s("MQTX")))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        pytest.param("MQTT", "03", id="MQTT-level-3"),
        pytest.param("MQTT", "06", id="MQTT-level-6"),
        pytest.param("MQTT", "00", id="MQTT-level-0"),
        pytest.param("MQIsdp", "04", id="MQIsdp-level-4"),
    ],
)
def test_MQTT_3_1_2_2_unsupported_protocol_level_connack_0x01(
    broker: BrokerHandle, name: str, level: str
) -> None:
    """[MQTT-3.1.2-2] The Server MUST respond with CONNACK return code 0x01 (unacceptable
    protocol level) and then disconnect the Client if it does not support the level."""
    c = client(broker, V311)
    c.send_raw(connect_hex("02", s("c"), name=s(name), level=level))
    assert read_until_closed(c) == raw("20 02 00 01")
    assert_broker_serves(broker)


# --- Connect Flags ------------------------------------------------------------------------


def test_MQTT_3_1_2_3_connect_reserved_flag_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-3] The Server MUST validate that the reserved flag in the CONNECT is zero
    and disconnect the Client if it is not [MQTT-3.1.4-1]: no CONNACK."""
    c = client(broker, V311)
    c.send_raw(connect_hex("03", s("c")))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    ("flags", "payload"),
    [
        pytest.param("0a", (s("c"),), id="will-qos-1-without-will-flag"),
        pytest.param("12", (s("c"),), id="will-qos-2-without-will-flag"),
        pytest.param("22", (s("c"),), id="will-retain-without-will-flag"),
        pytest.param("0a", (s("c"), s("w"), b("")), id="will-fields-without-will-flag"),
    ],
)
def test_MQTT_3_1_2_11_will_fields_without_will_flag_close(
    broker: BrokerHandle, flags: str, payload: tuple[str, ...]
) -> None:
    """[MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] With the Will Flag 0, Will QoS and
    Will Retain MUST be 0: the CONNECT does not conform and the Server closes without a
    CONNACK [MQTT-3.1.4-1]."""
    c = client(broker, V311)
    c.send_raw(connect_hex(flags, *payload))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_14_will_qos_3_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-14] Will QoS MUST NOT be 3: the Server closes without a CONNACK."""
    c = client(broker, V311)
    c.send_raw(connect_hex("1e", s("c"), s("w/t"), b("")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_9_will_flag_without_will_fields_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-9] With the Will Flag 1 the Will Topic and Will Message MUST be present:
    a CONNECT without them does not conform [MQTT-3.1.4-1]."""
    c = client(broker, V311)
    c.send_raw(connect_hex("06", s("c")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_19_user_name_flag_without_user_name_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-19] With the User Name Flag 1 a user name MUST be present [MQTT-3.1.4-1]."""
    c = client(broker, V311)
    c.send_raw(connect_hex("82", s("c")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_2_22_password_without_user_name_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-22] If the User Name Flag is 0, the Password Flag MUST be 0."""
    c = client(broker, V311)
    c.send_raw(connect_hex("42", s("c"), b("7077")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_1_4_1_connect_with_trailing_bytes_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.4-1] The Server MUST close the Network Connection without sending a
    CONNACK if the CONNECT does not conform to section 3.1 (here: bytes after the last
    field)."""
    c = client(broker, V311)
    c.send_raw(connect_hex("02", s("c"), "00"))
    expect_bare_close(c)
    assert_broker_serves(broker)


# --- Keep Alive -------------------------------------------------------------------------------


def test_MQTT_3_1_2_24_keep_alive_timeout_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.1.2-24] Nothing received within one and a half times the Keep Alive: the
    Server MUST disconnect the Network Connection as if the network had failed."""
    c = connected(broker, V311, keep_alive=1)
    started = time.monotonic()
    assert read_until_closed(c, timeout=4.0) == b""
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.0, elapsed
    assert_broker_serves(broker)


# --- Client Identifier ------------------------------------------------------------------------


def test_MQTT_3_1_3_8_empty_client_id_without_clean_session_connack_0x02(
    broker: BrokerHandle,
) -> None:
    """[MQTT-3.1.3-8] A zero-byte ClientId with CleanSession 0: the Server MUST respond with
    CONNACK return code 0x02 (Identifier rejected) and then close the Network Connection."""
    c = client(broker, V311)
    c.send_raw(connect_hex("00", s("")))
    assert read_until_closed(c) == raw("20 02 00 02")
    assert_broker_serves(broker)


def test_MQTT_3_1_3_9_rejected_client_id_connack_0x02(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    """[MQTT-3.1.3-9] If the Server rejects the ClientId it MUST respond with CONNACK return
    code 0x02 (Identifier rejected) and then close the Network Connection."""
    broker = broker_factory(max_client_id_length=16)
    c = client(broker, V311)
    c.send_raw(connect_hex("02", s("x" * 17)))
    assert read_until_closed(c) == raw("20 02 00 02")
    assert_broker_serves(broker)


def test_MQTT_3_1_4_5_no_data_processed_after_a_refused_connect(broker: BrokerHandle) -> None:
    """[MQTT-3.1.4-5] If the Server rejects the CONNECT, it MUST NOT process any data the
    Client sent after it: a retained PUBLISH pipelined behind a refused CONNECT is dropped."""
    c = client(broker, V311)
    c.send_raw(connect_hex("00", s("")) + raw(pkt("31", s("refused/retained"), "6869")))
    assert read_until_closed(c) == raw("20 02 00 02")
    assert "refused/retained" not in retained_topics(broker)
    assert_broker_serves(broker)


def test_MQTT_3_1_4_5_refused_connect_pipelined_data_is_not_an_internal_error(
    broker: BrokerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """[MQTT-3.1.4-5] Data behind a refused CONNECT is not processed: ignoring it is not an
    internal error of the broker."""
    c = client(broker, V311)
    c.send_raw(connect_hex("00", s("")) + raw(pkt("30", s("refused/qos0"), "6869")))
    assert read_until_closed(c) == raw("20 02 00 02")
    assert_broker_serves(broker)
    assert internal_errors(caplog.records) == []


def test_section_3_1_4_packets_pipelined_behind_connect_are_served(broker: BrokerHandle) -> None:
    """Section 3.1.4: Clients may send further packets immediately after CONNECT, without
    waiting for the CONNACK. CONNECT + SUBSCRIBE in one write get CONNACK then SUBACK."""
    c = client(broker, V311)
    c.send_raw(
        connect_hex("02", s(unique("pipelined")))
        + raw(pkt("82", "0005", s("pipelined/topic"), "01"))
    )
    connack, suback = c.recv(), c.recv()
    assert connack == Connack(), connack
    assert suback == Suback(packet_id=5, reason_codes=(1,))
    c.send(Disconnect())
    assert_broker_serves(broker)


# --- PUBLISH --------------------------------------------------------------------------------


def test_MQTT_3_3_1_4_publish_qos_3_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.3.1-4] A Server that receives a PUBLISH with both QoS bits set MUST close
    the Network Connection."""
    closes_after(broker, raw(pkt("36", s("a/b"), "0001", "6869")))
    assert_broker_serves(broker)


def test_MQTT_3_3_1_2_dup_on_qos_0_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.3.1-2] The DUP flag MUST be 0 for QoS 0 messages: a protocol violation,
    the Server closes [MQTT-4.8.0-1]."""
    closes_after(broker, raw(pkt("38", s("a/b"), "6869")))
    assert_broker_serves(broker)


@pytest.mark.parametrize("topic", ["a/#", "#", "a/+/b", "+"])
def test_MQTT_3_3_2_2_wildcard_in_topic_name_closes(broker: BrokerHandle, topic: str) -> None:
    """[MQTT-3.3.2-2] The Topic Name in a PUBLISH MUST NOT contain wildcard characters: a
    protocol violation, the Server closes [MQTT-4.8.0-1]."""
    closes_after(broker, raw(pkt("30", s(topic), "6869")))
    assert_broker_serves(broker)


def test_MQTT_4_7_3_1_empty_topic_name_closes(broker: BrokerHandle) -> None:
    """[MQTT-4.7.3-1] Topic Names MUST be at least one character long."""
    closes_after(broker, raw(pkt("30", s(""), "6869")))
    assert_broker_serves(broker)


# --- UTF-8 Encoded Strings ---------------------------------------------------------------------

ILL_FORMED = {
    "lone-continuation-byte": "0001 80",
    "truncated-sequence": "0002 c328",
    "overlong-slash": "0002 c0af",
    "surrogate": "0003 eda080",
    "0xff": "0001 ff",
}


@pytest.mark.parametrize("bad", ILL_FORMED.values(), ids=ILL_FORMED.keys())
@pytest.mark.parametrize("where", ["CONNECT-client-id", "PUBLISH-topic", "SUBSCRIBE-filter"])
def test_MQTT_1_5_3_1_ill_formed_utf8_closes(broker: BrokerHandle, where: str, bad: str) -> None:
    """[MQTT-1.5.3-1] Character data MUST be well-formed UTF-8; a Server receiving a packet
    with ill-formed UTF-8 MUST close the Network Connection."""
    if where == "CONNECT-client-id":
        c = client(broker, V311)
        c.send_raw(connect_hex("02", bad))
    elif where == "PUBLISH-topic":
        c = v311(broker)
        c.send_raw(raw(pkt("30", bad, "6869")))
    else:
        c = v311(broker)
        c.send_raw(raw(pkt("82", "0001", bad, "00")))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    "where", ["CONNECT-client-id", "CONNECT-will-topic", "PUBLISH-topic", "UNSUBSCRIBE-filter"]
)
def test_MQTT_1_5_3_2_null_character_closes(broker: BrokerHandle, where: str) -> None:
    """[MQTT-1.5.3-2] A UTF-8 encoded string MUST NOT include U+0000; a Server receiving
    one MUST close the Network Connection."""
    nul = "0003 610062"  # "a\\0b"
    if where == "CONNECT-client-id":
        c = client(broker, V311)
        c.send_raw(connect_hex("02", nul))
    elif where == "CONNECT-will-topic":
        c = client(broker, V311)
        c.send_raw(connect_hex("06", s("c"), nul, b("")))
    elif where == "PUBLISH-topic":
        c = v311(broker)
        c.send_raw(raw(pkt("30", nul)))
    else:
        c = v311(broker)
        c.send_raw(raw(pkt("a2", "0001", nul)))
    expect_bare_close(c)
    assert_broker_serves(broker)


# --- Fixed header flags -----------------------------------------------------------------------


def test_MQTT_3_6_1_1_pubrel_reserved_flags_close(broker: BrokerHandle) -> None:
    """[MQTT-3.6.1-1] PUBREL flags MUST be 0,0,1,0; the Server MUST treat any other value as
    malformed and close the Network Connection."""
    c = v311(broker)
    c.send_raw(raw(pkt("34", s("a/b"), "0009", "6869")))
    assert c.recv() == Pubrec(packet_id=9)
    c.send_raw(raw("60 02 0009"))
    expect_bare_close(c)
    assert_broker_serves(broker)


@pytest.mark.parametrize("first", ["80", "83", "8a"])
def test_MQTT_3_8_1_1_subscribe_reserved_flags_close(broker: BrokerHandle, first: str) -> None:
    """[MQTT-3.8.1-1] SUBSCRIBE flags MUST be 0,0,1,0; the Server MUST treat any other value
    as malformed and close the Network Connection."""
    closes_after(broker, raw(pkt(first, "0001", s("a/b"), "00")))
    assert_broker_serves(broker)


@pytest.mark.parametrize("first", ["a0", "a3", "aa"])
def test_MQTT_3_10_1_1_unsubscribe_reserved_flags_close(broker: BrokerHandle, first: str) -> None:
    """[MQTT-3.10.1-1] UNSUBSCRIBE flags MUST be 0,0,1,0; the Server MUST treat any other
    value as malformed and close the Network Connection."""
    closes_after(broker, raw(pkt(first, "0001", s("a/b"))))
    assert_broker_serves(broker)


@pytest.mark.parametrize("first", ["e1", "e2", "e8"])
def test_MQTT_3_14_1_1_disconnect_reserved_bits_close(broker: BrokerHandle, first: str) -> None:
    """[MQTT-3.14.1-1] The Server MUST validate that the DISCONNECT's reserved bits are zero
    and disconnect the Client if they are not."""
    closes_after(broker, raw(first + "00"))
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("41 02 0001", id="PUBACK-0001"),
        pytest.param("52 02 0001", id="PUBREC-0010"),
        pytest.param("78 02 0001", id="PUBCOMP-1000"),
        pytest.param("c1 00", id="PINGREQ-0001"),
    ],
)
def test_MQTT_2_2_2_2_invalid_fixed_header_flags_close(broker: BrokerHandle, data: str) -> None:
    """[MQTT-2.2.2-2] If invalid flags are received, the receiver MUST close the Network
    Connection."""
    closes_after(broker, raw(data))
    assert_broker_serves(broker)


# --- Packet Identifier, SUBSCRIBE, UNSUBSCRIBE ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(pkt("32", s("a/b"), "0000", "6869"), id="PUBLISH-QoS1"),
        pytest.param(pkt("34", s("a/b"), "0000", "6869"), id="PUBLISH-QoS2"),
        pytest.param(pkt("82", "0000", s("a/b"), "00"), id="SUBSCRIBE"),
        pytest.param(pkt("a2", "0000", s("a/b")), id="UNSUBSCRIBE"),
    ],
)
def test_MQTT_2_3_1_1_packet_identifier_zero_closes(broker: BrokerHandle, data: str) -> None:
    """[MQTT-2.3.1-1] SUBSCRIBE, UNSUBSCRIBE and PUBLISH (QoS > 0) MUST contain a non-zero
    Packet Identifier: a protocol violation, the Server closes [MQTT-4.8.0-1]."""
    closes_after(broker, raw(data))
    assert_broker_serves(broker)


def test_MQTT_3_8_3_3_subscribe_without_topic_filter_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.8.3-3] A SUBSCRIBE with no payload is a protocol violation."""
    closes_after(broker, raw("82 02 0001"))
    assert_broker_serves(broker)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param("03", id="QoS-3"),
        pytest.param("04", id="reserved-bit-2"),
        pytest.param("80", id="reserved-bit-7"),
        pytest.param("41", id="reserved-bit-6"),
    ],
)
def test_MQTT_3_8_3_4_subscribe_bad_requested_qos_byte_closes(
    broker: BrokerHandle, options: str
) -> None:
    """[MQTT-3-8.3-4] The Server MUST treat a SUBSCRIBE as malformed and close the Network
    Connection if any reserved bit in the payload is non-zero, or QoS is not 0, 1 or 2."""
    closes_after(broker, raw(pkt("82", "0001", s("a/b"), options)))
    assert_broker_serves(broker)


def test_MQTT_3_8_3_4_second_pair_bad_closes_without_suback(broker: BrokerHandle) -> None:
    """[MQTT-3-8.3-4] A bad QoS byte in the second Topic Filter / QoS pair: the whole
    SUBSCRIBE is malformed, no SUBACK is sent and nothing is subscribed."""
    c = v311(broker)
    c.send_raw(raw(pkt("82", "0001", s("ok/filter"), "01", s("bad/filter"), "03")))
    expect_bare_close(c)
    assert_broker_serves(broker)


def test_MQTT_3_10_3_2_unsubscribe_without_topic_filter_closes(broker: BrokerHandle) -> None:
    """[MQTT-3.10.3-2] An UNSUBSCRIBE with no payload is a protocol violation."""
    closes_after(broker, raw("a2 02 0001"))
    assert_broker_serves(broker)


# --- Packets only a Server sends, reserved types, framing ----------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("20 02 0000", id="CONNACK"),
        pytest.param(pkt("90", "0001", "00"), id="SUBACK"),
        pytest.param("b0 02 0001", id="UNSUBACK"),
        pytest.param("d0 00", id="PINGRESP"),
        pytest.param("00 00", id="reserved-type-0"),
        pytest.param("f0 00", id="reserved-type-15"),
    ],
)
def test_MQTT_4_8_0_1_packet_a_client_never_sends_closes(broker: BrokerHandle, data: str) -> None:
    """[MQTT-4.8.0-1] A protocol violation (a packet type only a Server sends, or a reserved
    type [MQTT-2.2.2-2]) makes the Server close the Network Connection."""
    closes_after(broker, raw(data))
    assert_broker_serves(broker)


def test_MQTT_4_8_0_1_remaining_length_over_four_bytes_closes(broker: BrokerHandle) -> None:
    """[MQTT-4.8.0-1] A Remaining Length of more than four bytes (section 2.2.3) is a
    protocol violation; the Server closes."""
    closes_after(broker, raw("30 ff ff ff ff 01"))
    assert_broker_serves(broker)


def test_connection_stays_open_after_valid_traffic(broker: BrokerHandle) -> None:
    """Control for the tests above: the same client, without a violation, is served."""
    c = v311(broker)
    c.send(Pingreq())
    assert c.recv() == Pingresp()
    c.send(Subscribe(packet_id=3, subscriptions=(Subscription(topic_filter="a/+", qos=2),)))
    assert c.recv() == Suback(packet_id=3, reason_codes=(2,))
    c.send(Disconnect())
    assert read_until_closed(c) == b""
    assert_broker_serves(broker)


def test_will_connect_accepted(broker: BrokerHandle) -> None:
    """Control: a CONNECT with a well-formed Will is accepted."""
    c = client(broker, V311)
    ack = c.connect(client_id=unique("will"), will=Will(topic="w/t", payload=b"x", qos=1))
    assert ack == Connack()
    c.send(Disconnect())
    assert_broker_serves(broker)
