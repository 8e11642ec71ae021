"""Decode one packet body into a packet dataclass, enforcing the malformed / protocol rules.

Topic semantics (wildcards in a Topic Name, shared subscription rules, topic aliases that
need connection state) are left to the protocol layer.
"""

from __future__ import annotations

from collections.abc import Callable

from roost.errors import MalformedPacket, ProtocolViolation, UnsupportedProtocolVersion
from roost.mqtt.constants import PacketType, ProtocolVersion
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
    Will,
)
from roost.mqtt.properties import WILL_PROPERTIES, read_properties
from roost.mqtt.reason_codes import CONNACK_V3_TO_V5, V3_SUBACK_CODES, VALID_REASON_CODES
from roost.mqtt.wire import read_binary, read_string, read_u8, read_u16

T = PacketType
V5 = ProtocolVersion.V5

# Protocol Name and Protocol Level of each version [MQTT-3.1.2-1].
PROTOCOL_NAMES: dict[ProtocolVersion, str] = {
    ProtocolVersion.V31: "MQIsdp",
    ProtocolVersion.V311: "MQTT",
    ProtocolVersion.V5: "MQTT",
}

# The fixed header flags every packet type but PUBLISH must carry [MQTT-2.2.2-1] (3.1.1),
# [MQTT-2.1.3-1] (5.0). Packet type 0 is reserved; AUTH exists only in MQTT 5.
_REQUIRED_FLAGS: dict[int, int] = {
    T.CONNECT: 0,
    T.CONNACK: 0,
    T.PUBACK: 0,
    T.PUBREC: 0,
    T.PUBREL: 2,
    T.PUBCOMP: 0,
    T.SUBSCRIBE: 2,
    T.SUBACK: 0,
    T.UNSUBSCRIBE: 2,
    T.UNSUBACK: 0,
    T.PINGREQ: 0,
    T.PINGRESP: 0,
    T.DISCONNECT: 0,
    T.AUTH: 0,
}


class UnsupportedConnectVersion(UnsupportedProtocolVersion):
    """CONNECT with an unknown Protocol Name or Level.

    `requested_version` is the Protocol Level the client sent when its Protocol Name was
    one Roost knows ("MQTT" / "MQIsdp"), so the server can refuse it with CONNACK 0x01
    (3.x) or 0x84 (5.0) [MQTT-3.1.2-2]; None for a foreign protocol name (just close).
    """

    def __init__(self, message: str, requested_version: int | None, protocol_name: str):
        super().__init__(message)
        self.requested_version = requested_version
        self.protocol_name = protocol_name


def _view(body: bytes | memoryview) -> memoryview:
    return body if isinstance(body, memoryview) else memoryview(body)


def _end(pos: int, end: int) -> None:
    if pos != end:
        raise MalformedPacket(f"{end - pos} unexpected bytes at the end of the packet")


def _packet_id(buf: memoryview, pos: int, end: int) -> int:
    packet_id = read_u16(buf, pos, end)
    if packet_id == 0:
        raise ProtocolViolation("Packet Identifier 0 [MQTT-2.3.1-1]")
    return packet_id


def _reason(packet_type: PacketType, code: int) -> int:
    if code not in VALID_REASON_CODES[packet_type]:
        raise ProtocolViolation(f"0x{code:02X} is not a {packet_type.name} reason code")
    return code


# --- CONNECT ------------------------------------------------------------------------


# (Protocol Name, Protocol Level) -> the version they name.
_CONNECT_VERSIONS = {
    ("MQTT", 4): ProtocolVersion.V311,
    ("MQTT", 5): ProtocolVersion.V5,
    ("MQIsdp", 3): ProtocolVersion.V31,
}


def _connect_version(name: str, level: int) -> ProtocolVersion:
    version = _CONNECT_VERSIONS.get((name, level))
    if version is not None:
        return version
    known = name in ("MQTT", "MQIsdp")
    raise UnsupportedConnectVersion(
        f"unsupported protocol {name!r} level {level} [MQTT-3.1.2-1] [MQTT-3.1.2-2]",
        level if known else None,
        name,
    )


def _check_connect_flags(flags: int, version: ProtocolVersion) -> None:
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set [MQTT-3.1.2-3]")
    will_qos = (flags >> 3) & 0x03
    if not flags & 0x04 and (will_qos or flags & 0x20):
        raise MalformedPacket("Will QoS / Will Retain set without Will Flag [MQTT-3.1.2-11]")
    if will_qos == 3:
        raise MalformedPacket("Will QoS 3 [MQTT-3.1.2-12] [MQTT-3.1.2-14]")
    if version != V5 and flags & 0x40 and not flags & 0x80:
        raise ProtocolViolation("Password Flag without User Name Flag [MQTT-3.1.2-22]")


def _read_will(
    buf: memoryview, pos: int, end: int, flags: int, version: ProtocolVersion
) -> tuple[Will, int]:
    properties = NO_PROPERTIES
    if version == V5:
        properties, pos = read_properties(buf, pos, end, WILL_PROPERTIES)
    topic, pos = read_string(buf, pos, end)
    payload, pos = read_binary(buf, pos, end)
    will = Will(
        topic=topic,
        payload=payload,
        qos=(flags >> 3) & 0x03,
        retain=bool(flags & 0x20),
        properties=properties,
    )
    return will, pos


def decode_connect(first_byte: int, body: bytes | memoryview) -> Connect:
    """Decode a CONNECT; the protocol version is read from it.

    Raises UnsupportedConnectVersion (an UnsupportedProtocolVersion) for an unknown
    Protocol Name or Level, MalformedPacket / ProtocolViolation for a bad packet.
    """
    if first_byte != 0x10:
        raise MalformedPacket("not a CONNECT, or reserved flags set [MQTT-2.2.2-1]")
    buf = _view(body)
    end = len(buf)
    name, pos = read_string(buf, 0, end)
    version = _connect_version(name, read_u8(buf, pos, end))
    flags = read_u8(buf, pos + 1, end)
    keep_alive = read_u16(buf, pos + 2, end)
    pos += 4
    _check_connect_flags(flags, version)
    properties = NO_PROPERTIES
    if version == V5:
        properties, pos = read_properties(buf, pos, end, T.CONNECT)
        if properties.authentication_data is not None and (
            properties.authentication_method is None
        ):
            raise ProtocolViolation("Authentication Data without Authentication Method")
    client_id, pos = read_string(buf, pos, end)
    will = None
    if flags & 0x04:
        will, pos = _read_will(buf, pos, end, flags, version)
    username = password = None
    if flags & 0x80:
        username, pos = read_string(buf, pos, end)
    if flags & 0x40:
        password, pos = read_binary(buf, pos, end)
    _end(pos, end)
    return Connect(
        protocol_name=name,
        protocol_version=version,
        clean_start=bool(flags & 0x02),
        keep_alive=keep_alive,
        client_id=client_id,
        will=will,
        username=username,
        password=password,
        properties=properties,
    )


# --- the other packets --------------------------------------------------------------


def _connack(buf: memoryview, version: ProtocolVersion) -> Connack:
    end = len(buf)
    flags = read_u8(buf, 0, end)
    code = read_u8(buf, 1, end)
    properties = NO_PROPERTIES
    if version == V5:
        reason_code = _reason(T.CONNACK, code)
        properties, pos = read_properties(buf, 2, end, T.CONNACK)
        _end(pos, end)
    else:
        _end(2, end)
        reason_code = CONNACK_V3_TO_V5.get(code, -1)
        if reason_code < 0:
            raise ProtocolViolation(f"0x{code:02X} is not a CONNACK return code")
    if version == ProtocolVersion.V31:
        # MQTT 3.1 has no Session Present: the whole first byte is reserved.
        return Connack(reason_code=reason_code)
    if flags & 0xFE:
        raise MalformedPacket("CONNACK reserved flags set [MQTT-3.2.2-1]")
    if flags and reason_code:
        raise ProtocolViolation("Session Present with a refusal [MQTT-3.2.2-4] [MQTT-3.2.2-6]")
    return Connack(session_present=bool(flags), reason_code=reason_code, properties=properties)


def decode_publish(flags: int, buf: memoryview, version: ProtocolVersion) -> Publish:
    """Decode a PUBLISH body; `flags` are the low four bits of its first byte."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    dup = bool(flags & 0x08)
    if dup and not qos:
        raise MalformedPacket("PUBLISH with DUP and QoS 0 [MQTT-3.3.1-2]")
    end = len(buf)
    topic, pos = read_string(buf, 0, end)
    packet_id = None
    if qos:
        packet_id = _packet_id(buf, pos, end)
        pos += 2
    properties = NO_PROPERTIES
    if version == V5:
        properties, pos = read_properties(buf, pos, end, T.PUBLISH)
    return Publish(
        topic=topic,
        payload=bytes(buf[pos:end]),
        qos=qos,
        retain=bool(flags & 0x01),
        dup=dup,
        packet_id=packet_id,
        properties=properties,
    )


def _ack(
    packet_type: PacketType, buf: memoryview, version: ProtocolVersion
) -> tuple[int, int, Properties]:
    """Packet Identifier, Reason Code and properties of PUBACK / PUBREC / PUBREL / PUBCOMP."""
    end = len(buf)
    packet_id = _packet_id(buf, 0, end)
    if version != V5 or end == 2:
        # MQTT 5: Reason Code 0 and no properties may be left out (Remaining Length 2).
        _end(2, end)
        return packet_id, 0, NO_PROPERTIES
    reason_code = _reason(packet_type, buf[2])
    if end == 3:
        return packet_id, reason_code, NO_PROPERTIES
    properties, pos = read_properties(buf, 3, end, packet_type)
    _end(pos, end)
    return packet_id, reason_code, properties


def decode_puback(buf: memoryview, version: ProtocolVersion) -> Puback:
    """Decode a PUBACK body (the fixed header's flags already checked)."""
    if len(buf) == 2:
        # Only a Packet Identifier: MQTT 3.x, or MQTT 5 with Reason Code 0 left out.
        packet_id = (buf[0] << 8) | buf[1]
        if packet_id:
            return Puback(packet_id=packet_id)
    packet_id, code, props = _ack(T.PUBACK, buf, version)
    return Puback(packet_id=packet_id, reason_code=code, properties=props)


def _pubrec(buf: memoryview, version: ProtocolVersion) -> Pubrec:
    packet_id, code, props = _ack(T.PUBREC, buf, version)
    return Pubrec(packet_id=packet_id, reason_code=code, properties=props)


def _pubrel(buf: memoryview, version: ProtocolVersion) -> Pubrel:
    packet_id, code, props = _ack(T.PUBREL, buf, version)
    return Pubrel(packet_id=packet_id, reason_code=code, properties=props)


def _pubcomp(buf: memoryview, version: ProtocolVersion) -> Pubcomp:
    packet_id, code, props = _ack(T.PUBCOMP, buf, version)
    return Pubcomp(packet_id=packet_id, reason_code=code, properties=props)


def _head(
    packet_type: PacketType, buf: memoryview, version: ProtocolVersion
) -> tuple[int, Properties, int]:
    """Packet Identifier and (MQTT 5) properties; returns the position of the payload."""
    end = len(buf)
    packet_id = _packet_id(buf, 0, end)
    if version != V5:
        return packet_id, NO_PROPERTIES, 2
    properties, pos = read_properties(buf, 2, end, packet_type)
    return packet_id, properties, pos


def subscription_of(topic_filter: str, options: int, version: ProtocolVersion) -> Subscription:
    """A topic filter with its Subscription Options byte, as in a SUBSCRIBE."""
    qos = options & 0x03
    if version != V5:
        if options & 0xFC or qos == 3:
            raise MalformedPacket("SUBSCRIBE reserved bits or QoS 3 [MQTT-3-8.3-4]")
        return Subscription(topic_filter=topic_filter, qos=qos)
    if options & 0xC0:
        raise MalformedPacket("Subscription Options reserved bits set [MQTT-3.8.3-5]")
    retain_handling = (options >> 4) & 0x03
    if qos == 3 or retain_handling == 3:
        raise ProtocolViolation("Subscription Options with QoS 3 or Retain Handling 3")
    return Subscription(
        topic_filter=topic_filter,
        qos=qos,
        no_local=bool(options & 0x04),
        retain_as_published=bool(options & 0x08),
        retain_handling=retain_handling,
    )


def _subscribe(buf: memoryview, version: ProtocolVersion) -> Subscribe:
    packet_id, properties, pos = _head(T.SUBSCRIBE, buf, version)
    end = len(buf)
    subscriptions = []
    while pos < end:
        topic_filter, pos = read_string(buf, pos, end)
        options = read_u8(buf, pos, end)
        pos += 1
        subscriptions.append(subscription_of(topic_filter, options, version))
    if not subscriptions:
        raise ProtocolViolation("SUBSCRIBE without a Topic Filter [MQTT-3.8.3-3]")
    return Subscribe(packet_id=packet_id, subscriptions=tuple(subscriptions), properties=properties)


def _reason_codes(packet_type: PacketType, buf: memoryview, pos: int) -> tuple[int, ...]:
    codes = tuple(buf[pos:])
    if not codes:
        raise ProtocolViolation(f"{packet_type.name} without a Reason Code")
    return codes


def _suback(buf: memoryview, version: ProtocolVersion) -> Suback:
    packet_id, properties, pos = _head(T.SUBACK, buf, version)
    codes = _reason_codes(T.SUBACK, buf, pos)
    valid = VALID_REASON_CODES[T.SUBACK] if version == V5 else V3_SUBACK_CODES
    if not valid.issuperset(codes):
        raise ProtocolViolation("invalid SUBACK return code")
    return Suback(packet_id=packet_id, reason_codes=codes, properties=properties)


def _unsubscribe(buf: memoryview, version: ProtocolVersion) -> Unsubscribe:
    packet_id, properties, pos = _head(T.UNSUBSCRIBE, buf, version)
    end = len(buf)
    topic_filters = []
    while pos < end:
        topic_filter, pos = read_string(buf, pos, end)
        topic_filters.append(topic_filter)
    if not topic_filters:
        raise ProtocolViolation("UNSUBSCRIBE without a Topic Filter [MQTT-3.10.3-2]")
    return Unsubscribe(
        packet_id=packet_id, topic_filters=tuple(topic_filters), properties=properties
    )


def _unsuback(buf: memoryview, version: ProtocolVersion) -> Unsuback:
    packet_id, properties, pos = _head(T.UNSUBACK, buf, version)
    if version != V5:
        _end(pos, len(buf))
        return Unsuback(packet_id=packet_id)
    codes = _reason_codes(T.UNSUBACK, buf, pos)
    if not VALID_REASON_CODES[T.UNSUBACK].issuperset(codes):
        raise ProtocolViolation("invalid UNSUBACK reason code")
    return Unsuback(packet_id=packet_id, reason_codes=codes, properties=properties)


def _pingreq(buf: memoryview, version: ProtocolVersion) -> Pingreq:
    _end(0, len(buf))
    return Pingreq()


def _pingresp(buf: memoryview, version: ProtocolVersion) -> Pingresp:
    _end(0, len(buf))
    return Pingresp()


def _disconnect(buf: memoryview, version: ProtocolVersion) -> Disconnect:
    end = len(buf)
    if version != V5 or end == 0:
        _end(0, end)
        return Disconnect()
    reason_code = _reason(T.DISCONNECT, buf[0])
    if end == 1:
        # Remaining Length < 2: no Property Length, no properties.
        return Disconnect(reason_code=reason_code)
    properties, pos = read_properties(buf, 1, end, T.DISCONNECT)
    _end(pos, end)
    return Disconnect(reason_code=reason_code, properties=properties)


def _auth(buf: memoryview, version: ProtocolVersion) -> Auth:
    end = len(buf)
    if end == 0:
        # Reason Code and Property Length are only ever left out together.
        return Auth()
    reason_code = _reason(T.AUTH, buf[0])
    properties, pos = read_properties(buf, 1, end, T.AUTH)
    _end(pos, end)
    if properties.authentication_method is None:
        raise ProtocolViolation("AUTH without Authentication Method")
    return Auth(reason_code=reason_code, properties=properties)


def _connect(buf: memoryview, version: ProtocolVersion) -> Connect:
    return decode_connect(0x10, buf)


_DECODERS: dict[int, Callable[[memoryview, ProtocolVersion], Packet]] = {
    T.CONNECT: _connect,
    T.CONNACK: _connack,
    T.PUBACK: decode_puback,
    T.PUBREC: _pubrec,
    T.PUBREL: _pubrel,
    T.PUBCOMP: _pubcomp,
    T.SUBSCRIBE: _subscribe,
    T.SUBACK: _suback,
    T.UNSUBSCRIBE: _unsubscribe,
    T.UNSUBACK: _unsuback,
    T.PINGREQ: _pingreq,
    T.PINGRESP: _pingresp,
    T.DISCONNECT: _disconnect,
    T.AUTH: _auth,
}


def decode(first_byte: int, body: bytes | memoryview, version: ProtocolVersion) -> Packet:
    """Decode any packet, in either direction, for a known protocol version.

    A CONNECT is decoded with its own version (see decode_connect). Raises MalformedPacket
    or ProtocolViolation (with the MQTT 5 reason code to report).
    """
    packet_type = first_byte >> 4
    flags = first_byte & 0x0F
    buf = _view(body)
    if packet_type == T.PUBLISH:
        return decode_publish(flags, buf, version)
    required = _REQUIRED_FLAGS.get(packet_type)
    if required is None or (packet_type == T.AUTH and version != V5):
        raise MalformedPacket(f"reserved packet type {packet_type}")
    if flags != required and not (required == 2 and version == ProtocolVersion.V31):
        # MQTT 3.1 let PUBREL / SUBSCRIBE / UNSUBSCRIBE carry DUP on a resend: not checked.
        raise MalformedPacket(
            f"reserved fixed header flags 0x{flags:X} in {T(packet_type).name} "
            "[MQTT-2.2.2-2] [MQTT-2.1.3-1]"
        )
    return _DECODERS[packet_type](buf, version)
