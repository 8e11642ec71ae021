"""Encoder specifics: MQTT 3.x down-mapping, MQTT 5 short forms, refusing invalid packets."""

from __future__ import annotations

import pytest

from roost.mqtt.codec import (
    encode,
    encode_ack,
    encode_properties,
    encode_publish,
    encoded_properties_length,
)
from roost.mqtt.constants import ConnackReturnCode, PacketType, ProtocolVersion, ReasonCode
from roost.mqtt.packets import (
    NO_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)

V31, V311, V5 = ProtocolVersion.V31, ProtocolVersion.V311, ProtocolVersion.V5
R = ReasonCode
REASON = Properties(reason_string="why", user_properties=(("a", "b"),))


@pytest.mark.parametrize(
    ("reason_code", "return_code"),
    [
        (R.SUCCESS, ConnackReturnCode.ACCEPTED),
        (R.UNSUPPORTED_PROTOCOL_VERSION, ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION),
        (R.CLIENT_IDENTIFIER_NOT_VALID, ConnackReturnCode.IDENTIFIER_REJECTED),
        (R.SERVER_UNAVAILABLE, ConnackReturnCode.SERVER_UNAVAILABLE),
        (R.SERVER_BUSY, ConnackReturnCode.SERVER_UNAVAILABLE),
        (R.BAD_USER_NAME_OR_PASSWORD, ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD),
        (R.NOT_AUTHORIZED, ConnackReturnCode.NOT_AUTHORIZED),
        (R.BANNED, ConnackReturnCode.NOT_AUTHORIZED),
        (R.BAD_AUTHENTICATION_METHOD, ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD),
        (R.UNSPECIFIED_ERROR, ConnackReturnCode.SERVER_UNAVAILABLE),
        (R.QUOTA_EXCEEDED, ConnackReturnCode.SERVER_UNAVAILABLE),
        (R.USE_ANOTHER_SERVER, ConnackReturnCode.SERVER_UNAVAILABLE),
    ],
)
@pytest.mark.parametrize("version", [V31, V311])
def test_connack_reason_codes_map_down(
    reason_code: int, return_code: int, version: ProtocolVersion
) -> None:
    packet = Connack(reason_code=reason_code, properties=REASON)
    assert encode(packet, version) == bytes((0x20, 0x02, 0x00, return_code))


def test_connack_session_present_absent_in_31() -> None:
    assert encode(Connack(session_present=True), V311).hex() == "20020100"
    assert encode(Connack(session_present=True), V31).hex() == "20020000"


def test_suback_failures_map_to_0x80() -> None:
    packet = Suback(packet_id=1, reason_codes=(0, 1, 2, 0x87, 0x8F, 0xA2), properties=REASON)
    assert encode(packet, V311).hex() == "90080001000102808080"


@pytest.mark.parametrize(
    ("packet", "v3_hex"),
    [
        (Puback(packet_id=5, reason_code=0x10, properties=REASON), "40020005"),
        (Pubrel(packet_id=5, reason_code=0x92), "62020005"),
        (Unsuback(packet_id=5, reason_codes=(0x11, 0x80), properties=REASON), "b0020005"),
        (Disconnect(reason_code=0x8E, properties=REASON), "e000"),
        (Publish(topic="t", payload=b"x", properties=Properties(topic_alias=3)), "300400017478"),
        (
            Subscribe(
                packet_id=1,
                subscriptions=(
                    Subscription(topic_filter="t", qos=1, no_local=True, retain_handling=2),
                ),
                properties=Properties(subscription_identifiers=(9,)),
            ),
            "8206000100017401",
        ),
        (Unsubscribe(packet_id=1, topic_filters=("t",), properties=REASON), "a2050001000174"),
    ],
)
def test_v3_leaves_out_mqtt5_fields(packet: Packet, v3_hex: str) -> None:
    assert encode(packet, V311).hex() == v3_hex


def test_v3_publish_has_no_property_length() -> None:
    packet = Publish(topic="t", payload=b"x", properties=Properties(content_type="c"))
    assert encode(packet, V311).hex() == "300400017478"
    assert encode(packet, V5).hex() == "3009000174040300016378"


def test_v3_connect_leaves_out_properties() -> None:
    packet = Connect(
        protocol_version=V5,
        client_id="c",
        will=Will(topic="w", payload=b"", properties=Properties(will_delay_interval=1)),
        properties=Properties(session_expiry_interval=5),
    )
    assert encode(packet, V311).hex() == "101200044d515454040600000001630001770000"


def test_connect_protocol_name_follows_version() -> None:
    assert encode(Connect(), V31).hex() == "100e00064d5149736470030200000000"
    assert encode(Connect(protocol_name="MQIsdp"), V5).hex() == "100d00044d51545405020000000000"
    # A foreign protocol name is written as given (to test servers with it).
    assert encode(Connect(protocol_name="XY"), V311).hex() == "100a00025859040200000000"


def test_auth_cannot_be_encoded_for_v3() -> None:
    with pytest.raises(ValueError):
        encode(Auth(), V311)


@pytest.mark.parametrize(
    ("packet", "version"),
    [
        (Puback(packet_id=0), V311),
        (Puback(packet_id=65536), V5),
        (Puback(packet_id=1, reason_code=0x92), V5),
        (Pubrel(packet_id=1, reason_code=0x10), V5),
        (Publish(topic="t", qos=3, packet_id=1), V311),
        (Publish(topic="t", qos=1), V311),
        (Publish(topic="t", qos=0, packet_id=1), V311),
        (Publish(topic="t", qos=0, dup=True), V311),
        (Publish(topic="a\x00b"), V311),
        (Publish(topic="\ud800"), V311),
        (Publish(topic="x" * 65536), V311),
        (Publish(topic="t", properties=Properties(topic_alias=0)), V5),
        (Publish(topic="t", properties=Properties(payload_format_indicator=2)), V5),
        (Publish(topic="t", properties=Properties(subscription_identifiers=(0,))), V5),
        (Publish(topic="t", properties=Properties(message_expiry_interval=1 << 32)), V5),
        (Publish(topic="t", properties=Properties(session_expiry_interval=1)), V5),
        (Publish(topic="t", payload=b"x" * 268_435_456), V311),
        (Connect(properties=Properties(topic_alias=1)), V5),
        (Connect(properties=Properties(authentication_data=b"x")), V5),
        (Connect(will=Will(topic="w", payload=b"", qos=3)), V311),
        (Connect(will=Will(topic="w", payload=b"", properties=Properties(topic_alias=1))), V5),
        (Connect(password=b"p"), V311),
        (Connack(session_present=True, reason_code=0x80), V5),
        (Connack(session_present=True, reason_code=0x80), V311),
        (Connack(reason_code=0x10), V5),
        (Connack(reason_code=0x10), V311),
        (Subscribe(packet_id=1, subscriptions=()), V311),
        (Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter="t", qos=3),)), V311),
        (
            Subscribe(
                packet_id=1,
                subscriptions=(Subscription(topic_filter="t", retain_handling=3),),
            ),
            V5,
        ),
        (
            Subscribe(
                packet_id=1,
                subscriptions=(Subscription(topic_filter="t"),),
                properties=Properties(subscription_identifiers=(1, 2)),
            ),
            V5,
        ),
        (Suback(packet_id=1, reason_codes=()), V5),
        (Suback(packet_id=1, reason_codes=(0x11,)), V311),
        (Unsubscribe(packet_id=1, topic_filters=()), V5),
        (Unsuback(packet_id=1), V5),
        (Unsuback(packet_id=1, reason_codes=(0x01,)), V5),
        (Disconnect(reason_code=0x01), V5),
        (Auth(reason_code=0x18), V5),
        (Auth(reason_code=0x05, properties=Properties(authentication_method="m")), V5),
    ],
)
def test_refuses_packets_it_must_not_send(packet: Packet, version: ProtocolVersion) -> None:
    with pytest.raises(ValueError):
        encode(packet, version)


def test_encode_publish_fast_path() -> None:
    data = encode_publish("a/b", b"hi", 1, True, False, 10, NO_PROPERTIES, V5)
    assert data.hex() == "330a0003612f62000a006869"
    data = encode_publish("a/b", b"hi", 0, False, False, None, Properties(topic_alias=1), V5)
    assert data.hex() == "300b0003612f62032300016869"


def test_encoded_properties_length() -> None:
    props = Properties(reason_string="r", user_properties=(("k", "v"),))
    encoded = encode_properties(props, PacketType.PUBACK)
    assert encoded.hex() == "0b1f0001722600016b000176"
    assert encoded_properties_length(props, PacketType.PUBACK) == len(encoded) == 12
    assert encode_properties(NO_PROPERTIES, PacketType.PUBACK) == b"\x00"
    assert encode_properties(Properties(), PacketType.PUBACK) == b"\x00"
    big = Properties(reason_string="x" * 200)
    assert encoded_properties_length(big, PacketType.PUBACK) == 2 + 3 + 200


@pytest.mark.parametrize("version", [V31, V311, V5])
@pytest.mark.parametrize(
    ("packet_type", "packet", "codes"),
    [
        (PacketType.PUBACK, Puback, (R.SUCCESS, R.NO_MATCHING_SUBSCRIBERS, R.QUOTA_EXCEEDED)),
        (PacketType.PUBREC, Pubrec, (R.SUCCESS, R.NOT_AUTHORIZED)),
        (PacketType.PUBREL, Pubrel, (R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND)),
        (PacketType.PUBCOMP, Pubcomp, (R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND)),
    ],
)
def test_encode_ack_gives_the_bytes_of_the_packet(
    version: ProtocolVersion, packet_type: PacketType, packet: type, codes: tuple[int, ...]
) -> None:
    """The acknowledgement short cut encodes exactly what `encode` does for the packet."""
    for code in codes:
        for packet_id in (1, 300, 65535):
            expected = encode(packet(packet_id=packet_id, reason_code=code), version)
            assert encode_ack(packet_type, packet_id, code, version) == expected


def test_encode_ack_refuses_what_encode_refuses() -> None:
    with pytest.raises(ValueError):
        encode_ack(PacketType.PUBACK, 0, R.SUCCESS, V311)  # [MQTT-2.3.1-1]
    with pytest.raises(ValueError):
        encode_ack(PacketType.PUBACK, 1, R.GRANTED_QOS_1, V5)
