"""Encode packet dataclasses to bytes for MQTT 3.1, 3.1.1 and 5.0.

For 3.1 / 3.1.1, properties and MQTT 5-only fields are left out and reason codes are
mapped down. For 5.0, Reason Code and Property Length are left out wherever the
specification allows. A packet Roost must not send raises ValueError.
"""

from __future__ import annotations

from roost.mqtt.constants import PacketType, ProtocolVersion
from roost.mqtt.decoder import PROTOCOL_NAMES
from roost.mqtt.framing import frame
from roost.mqtt.packets import (
    NO_PROPERTIES,
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
    Unsuback,
    Unsubscribe,
)
from roost.mqtt.properties import WILL_PROPERTIES, encode_properties
from roost.mqtt.reason_codes import (
    VALID_REASON_CODES,
    connack_v3_return_code,
    suback_v3_return_code,
)
from roost.mqtt.wire import (
    check_packet_id,
    encode_binary,
    encode_string,
    encode_u16,
    encode_varint,
)

T = PacketType
V5 = ProtocolVersion.V5
_PINGREQ = b"\xc0\x00"
_PINGRESP = b"\xd0\x00"
_DISCONNECT_NORMAL = b"\xe0\x00"


def _has_properties(properties: Properties) -> bool:
    return properties is not NO_PROPERTIES and properties != NO_PROPERTIES


def _reason(packet_type: PacketType, code: int) -> int:
    if code not in VALID_REASON_CODES[packet_type]:
        raise ValueError(f"0x{code:02X} is not a {packet_type.name} reason code")
    return code


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties,
    version: ProtocolVersion,
) -> bytes:
    """Encode a PUBLISH without building a Publish first (the broker's outgoing path)."""
    if qos == 0:
        if dup or packet_id is not None:
            raise ValueError("a QoS 0 PUBLISH has no DUP flag and no Packet Identifier")
        packet_id_bytes = b""
    elif qos == 1 or qos == 2:
        if packet_id is None:
            raise ValueError("a QoS 1 / 2 PUBLISH needs a Packet Identifier")
        packet_id_bytes = check_packet_id(packet_id).to_bytes(2, "big")
    else:
        raise ValueError(f"PUBLISH QoS must be 0, 1 or 2, got {qos}")
    first_byte = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    topic_bytes = encode_string(topic)
    props = encode_properties(properties, T.PUBLISH) if version == V5 else b""
    size = len(topic_bytes) + len(packet_id_bytes) + len(props) + len(payload)
    # The fixed header: a Remaining Length below 128 is its second byte.
    header = bytes((first_byte, size)) if size < 128 else bytes((first_byte,)) + encode_varint(size)
    return b"".join((header, topic_bytes, packet_id_bytes, props, payload))


_ACK_FIRST_BYTES = {T.PUBACK: 0x40, T.PUBREC: 0x50, T.PUBREL: 0x62, T.PUBCOMP: 0x70}


def encode_ack(
    packet_type: PacketType, packet_id: int, reason_code: int, version: ProtocolVersion
) -> bytes:
    """Encode a PUBACK, PUBREC, PUBREL or PUBCOMP without properties, without building the
    packet first: the same bytes as `encode` gives for it."""
    head = bytes((_ACK_FIRST_BYTES[packet_type], 0x02)) + check_packet_id(packet_id).to_bytes(
        2, "big"
    )
    if version != V5 or _reason(packet_type, reason_code) == 0:
        return head
    return bytes((head[0], 0x03)) + head[2:] + bytes((reason_code,))


def _connect_flags(packet: Connect, version: ProtocolVersion) -> int:
    flags = 0x02 if packet.clean_start else 0
    will = packet.will
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise ValueError(f"Will QoS must be 0, 1 or 2, got {will.qos}")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.username is not None:
        flags |= 0x80
    if packet.password is not None:
        if packet.username is None and version != V5:
            raise ValueError("MQTT 3.x: a password needs a user name [MQTT-3.1.2-22]")
        flags |= 0x40
    return flags


def _connect(packet: Connect, version: ProtocolVersion) -> bytes:
    """The Protocol Level is `version`; a standard Protocol Name follows it too."""
    name = packet.protocol_name
    if name in ("MQTT", "MQIsdp"):
        name = PROTOCOL_NAMES[version]
    parts = [
        encode_string(name),
        bytes((version, _connect_flags(packet, version))),
        encode_u16(packet.keep_alive),
    ]
    props = packet.properties
    if version == V5:
        if props.authentication_data is not None and props.authentication_method is None:
            raise ValueError("Authentication Data without Authentication Method")
        parts.append(encode_properties(props, T.CONNECT))
    parts.append(encode_string(packet.client_id))
    will = packet.will
    if will is not None:
        if version == V5:
            parts.append(encode_properties(will.properties, WILL_PROPERTIES))
        parts.append(encode_string(will.topic))
        parts.append(encode_binary(will.payload))
    if packet.username is not None:
        parts.append(encode_string(packet.username))
    if packet.password is not None:
        parts.append(encode_binary(packet.password))
    return frame(0x10, b"".join(parts))


def _connack(packet: Connack, version: ProtocolVersion) -> bytes:
    if packet.session_present and packet.reason_code:
        raise ValueError("Session Present must be 0 with a refusal [MQTT-3.2.2-4]")
    if version != V5:
        code = connack_v3_return_code(packet.reason_code)
        flags = 1 if packet.session_present and version != ProtocolVersion.V31 else 0
        return bytes((0x20, 0x02, flags, code))
    code = _reason(T.CONNACK, packet.reason_code)
    head = bytes((1 if packet.session_present else 0, code))
    return frame(0x20, head + encode_properties(packet.properties, T.CONNACK))


def _ack(
    first_byte: int,
    packet_type: PacketType,
    packet: Puback | Pubrec | Pubrel | Pubcomp,
    version: ProtocolVersion,
) -> bytes:
    packet_id = check_packet_id(packet.packet_id).to_bytes(2, "big")
    if version != V5:
        return bytes((first_byte, 0x02)) + packet_id
    code = _reason(packet_type, packet.reason_code)
    if not _has_properties(packet.properties):
        if code == 0:
            return bytes((first_byte, 0x02)) + packet_id
        return bytes((first_byte, 0x03)) + packet_id + bytes((code,))
    props = encode_properties(packet.properties, packet_type)
    return frame(first_byte, packet_id + bytes((code,)) + props)


def _head(
    packet_id: int, properties: Properties, packet_type: PacketType, version: ProtocolVersion
) -> bytes:
    """Packet Identifier and, for MQTT 5, the properties."""
    head = check_packet_id(packet_id).to_bytes(2, "big")
    if version == V5:
        return head + encode_properties(properties, packet_type)
    return head


def subscription_options(subscription: Subscription, version: ProtocolVersion) -> int:
    """The Subscription Options byte of a SUBSCRIBE (for MQTT 3.1/3.1.1: the QoS alone)."""
    qos = subscription.qos
    if qos not in (0, 1, 2):
        raise ValueError(f"subscription QoS must be 0, 1 or 2, got {qos}")
    if version != V5:
        return qos
    if subscription.retain_handling not in (0, 1, 2):
        raise ValueError(f"Retain Handling must be 0, 1 or 2: {subscription.retain_handling}")
    return (
        qos
        | (0x04 if subscription.no_local else 0)
        | (0x08 if subscription.retain_as_published else 0)
        | (subscription.retain_handling << 4)
    )


def _subscribe(packet: Subscribe, version: ProtocolVersion) -> bytes:
    if not packet.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one subscription [MQTT-3.8.3-3]")
    parts = [_head(packet.packet_id, packet.properties, T.SUBSCRIBE, version)]
    for subscription in packet.subscriptions:
        parts.append(encode_string(subscription.topic_filter))
        parts.append(bytes((subscription_options(subscription, version),)))
    return frame(0x82, b"".join(parts))


def _suback(packet: Suback, version: ProtocolVersion) -> bytes:
    if not packet.reason_codes:
        raise ValueError("SUBACK needs at least one reason code")
    head = _head(packet.packet_id, packet.properties, T.SUBACK, version)
    if version == V5:
        codes = bytes(_reason(T.SUBACK, code) for code in packet.reason_codes)
    else:
        codes = bytes(suback_v3_return_code(code) for code in packet.reason_codes)
    return frame(0x90, head + codes)


def _unsubscribe(packet: Unsubscribe, version: ProtocolVersion) -> bytes:
    if not packet.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one Topic Filter [MQTT-3.10.3-2]")
    parts = [_head(packet.packet_id, packet.properties, T.UNSUBSCRIBE, version)]
    parts.extend(encode_string(topic_filter) for topic_filter in packet.topic_filters)
    return frame(0xA2, b"".join(parts))


def _unsuback(packet: Unsuback, version: ProtocolVersion) -> bytes:
    head = _head(packet.packet_id, packet.properties, T.UNSUBACK, version)
    if version != V5:
        return frame(0xB0, head)
    if not packet.reason_codes:
        raise ValueError("an MQTT 5 UNSUBACK needs at least one reason code")
    codes = bytes(_reason(T.UNSUBACK, code) for code in packet.reason_codes)
    return frame(0xB0, head + codes)


def _disconnect(packet: Disconnect, version: ProtocolVersion) -> bytes:
    if version != V5:
        return _DISCONNECT_NORMAL
    code = _reason(T.DISCONNECT, packet.reason_code)
    if not _has_properties(packet.properties):
        return _DISCONNECT_NORMAL if code == 0 else bytes((0xE0, 0x01, code))
    return frame(0xE0, bytes((code,)) + encode_properties(packet.properties, T.DISCONNECT))


def _auth(packet: Auth, version: ProtocolVersion) -> bytes:
    if version != V5:
        raise ValueError("AUTH exists only in MQTT 5")
    code = _reason(T.AUTH, packet.reason_code)
    if code == 0 and not _has_properties(packet.properties):
        return b"\xf0\x00"
    if packet.properties.authentication_method is None:
        raise ValueError("AUTH needs an Authentication Method")
    return frame(0xF0, bytes((code,)) + encode_properties(packet.properties, T.AUTH))


def encode(packet: Packet, version: ProtocolVersion) -> bytes:
    """Encode any packet for `version` (see the module docstring)."""
    match packet:
        case Publish():
            return encode_publish(
                packet.topic,
                packet.payload,
                packet.qos,
                packet.retain,
                packet.dup,
                packet.packet_id,
                packet.properties,
                version,
            )
        case Puback():
            return _ack(0x40, T.PUBACK, packet, version)
        case Pubrec():
            return _ack(0x50, T.PUBREC, packet, version)
        case Pubrel():
            return _ack(0x62, T.PUBREL, packet, version)
        case Pubcomp():
            return _ack(0x70, T.PUBCOMP, packet, version)
        case Pingreq():
            return _PINGREQ
        case Pingresp():
            return _PINGRESP
        case Connect():
            return _connect(packet, version)
        case Connack():
            return _connack(packet, version)
        case Subscribe():
            return _subscribe(packet, version)
        case Suback():
            return _suback(packet, version)
        case Unsubscribe():
            return _unsubscribe(packet, version)
        case Unsuback():
            return _unsuback(packet, version)
        case Disconnect():
            return _disconnect(packet, version)
        case Auth():
            return _auth(packet, version)
    raise TypeError(f"not an MQTT packet: {packet!r}")
