"""MQTT 5 properties (section 2.2.2): which packet may carry which, their types and ranges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from roost.errors import MalformedPacket, ProtocolViolation
from roost.mqtt.constants import MAX_VARIABLE_BYTE_INTEGER, PacketType, ReasonCode
from roost.mqtt.constants import PropertyId as P
from roost.mqtt.packets import NO_PROPERTIES, Properties
from roost.mqtt.wire import (
    encode_binary,
    encode_string,
    encode_varint,
    read_binary,
    read_string,
    read_u8,
    read_u16,
    read_u32,
    read_varint,
)

# The Will Properties of CONNECT are a property context of their own; packet type 0 is
# reserved, so 0 never collides with a PacketType.
WILL_PROPERTIES = 0


class Kind(Enum):
    BYTE = 1
    TWO_BYTE = 2
    FOUR_BYTE = 4
    VARIABLE_BYTE = 5
    STRING = 6
    BINARY = 7
    STRING_PAIR = 8


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """Data type, allowed packets and (for integers) allowed range of one property."""

    property_id: P
    kind: Kind
    contexts: frozenset[int]
    low: int = 0
    high: int = 0


T = PacketType
_PUBLISH_LIKE = frozenset({T.PUBLISH, WILL_PROPERTIES})
_CONNACK = frozenset({T.CONNACK})
_CONNECT = frozenset({T.CONNECT})
_CONNECT_CONNACK = frozenset({T.CONNECT, T.CONNACK})
_AUTH_CONTEXTS = frozenset({T.CONNECT, T.CONNACK, T.AUTH})
_REASON_STRING = frozenset(
    {T.CONNACK, T.PUBACK, T.PUBREC, T.PUBREL, T.PUBCOMP, T.SUBACK, T.UNSUBACK}
    | {T.DISCONNECT, T.AUTH}
)
_EVERY_CONTEXT = _REASON_STRING | {T.CONNECT, T.PUBLISH, T.SUBSCRIBE, T.UNSUBSCRIBE} | {0}
_U16 = 0xFFFF
_U32 = 0xFFFF_FFFF


def _flag(pid: P, contexts: frozenset[int]) -> PropertySpec:
    """A Byte property whose only values are 0 and 1 (anything else is a Protocol Error)."""
    return PropertySpec(pid, Kind.BYTE, contexts, 0, 1)


SPECS: dict[int, PropertySpec] = {
    spec.property_id: spec
    for spec in (
        _flag(P.PAYLOAD_FORMAT_INDICATOR, _PUBLISH_LIKE),
        PropertySpec(P.MESSAGE_EXPIRY_INTERVAL, Kind.FOUR_BYTE, _PUBLISH_LIKE, 0, _U32),
        PropertySpec(P.CONTENT_TYPE, Kind.STRING, _PUBLISH_LIKE),
        PropertySpec(P.RESPONSE_TOPIC, Kind.STRING, _PUBLISH_LIKE),
        PropertySpec(P.CORRELATION_DATA, Kind.BINARY, _PUBLISH_LIKE),
        PropertySpec(
            P.SUBSCRIPTION_IDENTIFIER,
            Kind.VARIABLE_BYTE,
            frozenset({T.PUBLISH, T.SUBSCRIBE}),
            1,
            MAX_VARIABLE_BYTE_INTEGER,
        ),
        PropertySpec(
            P.SESSION_EXPIRY_INTERVAL,
            Kind.FOUR_BYTE,
            frozenset({T.CONNECT, T.CONNACK, T.DISCONNECT}),
            0,
            _U32,
        ),
        PropertySpec(P.ASSIGNED_CLIENT_IDENTIFIER, Kind.STRING, _CONNACK),
        PropertySpec(P.SERVER_KEEP_ALIVE, Kind.TWO_BYTE, _CONNACK, 0, _U16),
        PropertySpec(P.AUTHENTICATION_METHOD, Kind.STRING, _AUTH_CONTEXTS),
        PropertySpec(P.AUTHENTICATION_DATA, Kind.BINARY, _AUTH_CONTEXTS),
        _flag(P.REQUEST_PROBLEM_INFORMATION, _CONNECT),
        PropertySpec(P.WILL_DELAY_INTERVAL, Kind.FOUR_BYTE, frozenset({WILL_PROPERTIES}), 0, _U32),
        _flag(P.REQUEST_RESPONSE_INFORMATION, _CONNECT),
        PropertySpec(P.RESPONSE_INFORMATION, Kind.STRING, _CONNACK),
        PropertySpec(P.SERVER_REFERENCE, Kind.STRING, frozenset({T.CONNACK, T.DISCONNECT})),
        PropertySpec(P.REASON_STRING, Kind.STRING, _REASON_STRING),
        PropertySpec(P.RECEIVE_MAXIMUM, Kind.TWO_BYTE, _CONNECT_CONNACK, 1, _U16),
        PropertySpec(P.TOPIC_ALIAS_MAXIMUM, Kind.TWO_BYTE, _CONNECT_CONNACK, 0, _U16),
        PropertySpec(P.TOPIC_ALIAS, Kind.TWO_BYTE, frozenset({T.PUBLISH}), 1, _U16),
        _flag(P.MAXIMUM_QOS, _CONNACK),
        _flag(P.RETAIN_AVAILABLE, _CONNACK),
        PropertySpec(P.USER_PROPERTY, Kind.STRING_PAIR, _EVERY_CONTEXT),
        PropertySpec(P.MAXIMUM_PACKET_SIZE, Kind.FOUR_BYTE, _CONNECT_CONNACK, 1, _U32),
        _flag(P.WILDCARD_SUBSCRIPTION_AVAILABLE, _CONNACK),
        _flag(P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, _CONNACK),
        _flag(P.SHARED_SUBSCRIPTION_AVAILABLE, _CONNACK),
    )
}

_INT_READERS: dict[Kind, Callable[[memoryview, int, int], int]] = {
    Kind.BYTE: read_u8,
    Kind.TWO_BYTE: read_u16,
    Kind.FOUR_BYTE: read_u32,
}
_INT_WIDTH = {Kind.BYTE: 1, Kind.TWO_BYTE: 2, Kind.FOUR_BYTE: 4}


class _Collected:
    """Property values seen so far while reading one property section."""

    __slots__ = ("binaries", "ints", "strings", "subscription_identifiers", "user")

    def __init__(self) -> None:
        self.ints: dict[int, int] = {}
        self.strings: dict[int, str] = {}
        self.binaries: dict[int, bytes] = {}
        self.user: list[tuple[str, str]] = []
        self.subscription_identifiers: list[int] = []

    def build(self) -> Properties:
        i, s, b = self.ints.get, self.strings.get, self.binaries.get
        return Properties(
            payload_format_indicator=i(P.PAYLOAD_FORMAT_INDICATOR),
            message_expiry_interval=i(P.MESSAGE_EXPIRY_INTERVAL),
            content_type=s(P.CONTENT_TYPE),
            response_topic=s(P.RESPONSE_TOPIC),
            correlation_data=b(P.CORRELATION_DATA),
            subscription_identifiers=tuple(self.subscription_identifiers),
            session_expiry_interval=i(P.SESSION_EXPIRY_INTERVAL),
            assigned_client_identifier=s(P.ASSIGNED_CLIENT_IDENTIFIER),
            server_keep_alive=i(P.SERVER_KEEP_ALIVE),
            authentication_method=s(P.AUTHENTICATION_METHOD),
            authentication_data=b(P.AUTHENTICATION_DATA),
            request_problem_information=i(P.REQUEST_PROBLEM_INFORMATION),
            will_delay_interval=i(P.WILL_DELAY_INTERVAL),
            request_response_information=i(P.REQUEST_RESPONSE_INFORMATION),
            response_information=s(P.RESPONSE_INFORMATION),
            server_reference=s(P.SERVER_REFERENCE),
            reason_string=s(P.REASON_STRING),
            receive_maximum=i(P.RECEIVE_MAXIMUM),
            topic_alias_maximum=i(P.TOPIC_ALIAS_MAXIMUM),
            topic_alias=i(P.TOPIC_ALIAS),
            maximum_qos=i(P.MAXIMUM_QOS),
            retain_available=i(P.RETAIN_AVAILABLE),
            user_properties=tuple(self.user),
            maximum_packet_size=i(P.MAXIMUM_PACKET_SIZE),
            wildcard_subscription_available=i(P.WILDCARD_SUBSCRIPTION_AVAILABLE),
            subscription_identifier_available=i(P.SUBSCRIPTION_IDENTIFIER_AVAILABLE),
            shared_subscription_available=i(P.SHARED_SUBSCRIPTION_AVAILABLE),
        )


def _out_of_range(spec: PropertySpec, value: int) -> ProtocolViolation:
    if spec.property_id == P.TOPIC_ALIAS:
        # [MQTT-3.3.2-8]: a Topic Alias of 0 is not permitted.
        return ProtocolViolation("Topic Alias 0", ReasonCode.TOPIC_ALIAS_INVALID)
    return ProtocolViolation(f"{spec.property_id.name} has the value {value}")


def _read_int_property(
    spec: PropertySpec, context: int, got: _Collected, buf: memoryview, pos: int, end: int
) -> int:
    if spec.kind is Kind.VARIABLE_BYTE:
        value, pos = read_varint(buf, pos, end)
    else:
        value = _INT_READERS[spec.kind](buf, pos, end)
        pos += _INT_WIDTH[spec.kind]
    if not spec.low <= value <= spec.high:
        raise _out_of_range(spec, value)
    if spec.property_id == P.SUBSCRIPTION_IDENTIFIER:
        # Several are allowed only in a PUBLISH from the Server [MQTT-3.3.4-4].
        if got.subscription_identifiers and context != T.PUBLISH:
            raise ProtocolViolation("Subscription Identifier given twice")
        got.subscription_identifiers.append(value)
    elif spec.property_id in got.ints:
        raise ProtocolViolation(f"{spec.property_id.name} given twice")
    else:
        got.ints[spec.property_id] = value
    return pos


def read_properties(buf: memoryview, pos: int, end: int, context: int) -> tuple[Properties, int]:
    """Read a Property Length and the properties after it (section 2.2.2)."""
    length, pos = read_varint(buf, pos, end)
    if length == 0:
        return NO_PROPERTIES, pos
    stop = pos + length
    if stop > end:
        raise MalformedPacket("Property Length runs past the end of the packet")
    got = _Collected()
    while pos < stop:
        pid, pos = read_varint(buf, pos, stop)
        spec = SPECS.get(pid)
        if spec is None or context not in spec.contexts:
            raise MalformedPacket(f"property 0x{pid:02X} is not valid in this packet")
        kind = spec.kind
        if kind is Kind.STRING_PAIR:
            name, pos = read_string(buf, pos, stop)
            value, pos = read_string(buf, pos, stop)
            got.user.append((name, value))
        elif kind is Kind.STRING:
            text, pos = read_string(buf, pos, stop)
            if pid in got.strings:
                raise ProtocolViolation(f"{spec.property_id.name} given twice")
            got.strings[pid] = text
        elif kind is Kind.BINARY:
            data, pos = read_binary(buf, pos, stop)
            if pid in got.binaries:
                raise ProtocolViolation(f"{spec.property_id.name} given twice")
            got.binaries[pid] = data
        else:
            pos = _read_int_property(spec, context, got, buf, pos, stop)
    return got.build(), pos


# --- encoding -------------------------------------------------------------------------

Writer = Callable[[Properties, bytearray], bool]


def _int_writer(pid: P, get: Callable[[Properties], int | None]) -> Writer:
    spec = SPECS[pid]
    width = _INT_WIDTH.get(spec.kind, 0)

    def write(props: Properties, out: bytearray) -> bool:
        value = get(props)
        if value is None:
            return False
        if not spec.low <= value <= spec.high:
            raise ValueError(f"{pid.name} out of range: {value}")
        out.append(pid)
        out += value.to_bytes(width, "big") if width else encode_varint(value)
        return True

    return write


def _str_writer(pid: P, get: Callable[[Properties], str | None]) -> Writer:
    def write(props: Properties, out: bytearray) -> bool:
        value = get(props)
        if value is None:
            return False
        out.append(pid)
        out += encode_string(value)
        return True

    return write


def _bin_writer(pid: P, get: Callable[[Properties], bytes | None]) -> Writer:
    def write(props: Properties, out: bytearray) -> bool:
        value = get(props)
        if value is None:
            return False
        out.append(pid)
        out += encode_binary(value)
        return True

    return write


def _write_subscription_identifiers(props: Properties, out: bytearray) -> bool:
    for value in props.subscription_identifiers:
        if not 1 <= value <= MAX_VARIABLE_BYTE_INTEGER:
            raise ValueError(f"Subscription Identifier out of range: {value}")
        out.append(P.SUBSCRIPTION_IDENTIFIER)
        out += encode_varint(value)
    return bool(props.subscription_identifiers)


def _write_user_properties(props: Properties, out: bytearray) -> bool:
    for name, value in props.user_properties:
        out.append(P.USER_PROPERTY)
        out += encode_string(name)
        out += encode_string(value)
    return bool(props.user_properties)


# In ascending Property Identifier order: the order in which Roost writes properties.
_WRITERS: tuple[tuple[P, Writer], ...] = (
    (P.PAYLOAD_FORMAT_INDICATOR, _int_writer(P.PAYLOAD_FORMAT_INDICATOR, lambda p: p.payload_format_indicator)),
    (P.MESSAGE_EXPIRY_INTERVAL, _int_writer(P.MESSAGE_EXPIRY_INTERVAL, lambda p: p.message_expiry_interval)),
    (P.CONTENT_TYPE, _str_writer(P.CONTENT_TYPE, lambda p: p.content_type)),
    (P.RESPONSE_TOPIC, _str_writer(P.RESPONSE_TOPIC, lambda p: p.response_topic)),
    (P.CORRELATION_DATA, _bin_writer(P.CORRELATION_DATA, lambda p: p.correlation_data)),
    (P.SUBSCRIPTION_IDENTIFIER, _write_subscription_identifiers),
    (P.SESSION_EXPIRY_INTERVAL, _int_writer(P.SESSION_EXPIRY_INTERVAL, lambda p: p.session_expiry_interval)),
    (P.ASSIGNED_CLIENT_IDENTIFIER, _str_writer(P.ASSIGNED_CLIENT_IDENTIFIER, lambda p: p.assigned_client_identifier)),
    (P.SERVER_KEEP_ALIVE, _int_writer(P.SERVER_KEEP_ALIVE, lambda p: p.server_keep_alive)),
    (P.AUTHENTICATION_METHOD, _str_writer(P.AUTHENTICATION_METHOD, lambda p: p.authentication_method)),
    (P.AUTHENTICATION_DATA, _bin_writer(P.AUTHENTICATION_DATA, lambda p: p.authentication_data)),
    (P.REQUEST_PROBLEM_INFORMATION, _int_writer(P.REQUEST_PROBLEM_INFORMATION, lambda p: p.request_problem_information)),
    (P.WILL_DELAY_INTERVAL, _int_writer(P.WILL_DELAY_INTERVAL, lambda p: p.will_delay_interval)),
    (P.REQUEST_RESPONSE_INFORMATION, _int_writer(P.REQUEST_RESPONSE_INFORMATION, lambda p: p.request_response_information)),
    (P.RESPONSE_INFORMATION, _str_writer(P.RESPONSE_INFORMATION, lambda p: p.response_information)),
    (P.SERVER_REFERENCE, _str_writer(P.SERVER_REFERENCE, lambda p: p.server_reference)),
    (P.REASON_STRING, _str_writer(P.REASON_STRING, lambda p: p.reason_string)),
    (P.RECEIVE_MAXIMUM, _int_writer(P.RECEIVE_MAXIMUM, lambda p: p.receive_maximum)),
    (P.TOPIC_ALIAS_MAXIMUM, _int_writer(P.TOPIC_ALIAS_MAXIMUM, lambda p: p.topic_alias_maximum)),
    (P.TOPIC_ALIAS, _int_writer(P.TOPIC_ALIAS, lambda p: p.topic_alias)),
    (P.MAXIMUM_QOS, _int_writer(P.MAXIMUM_QOS, lambda p: p.maximum_qos)),
    (P.RETAIN_AVAILABLE, _int_writer(P.RETAIN_AVAILABLE, lambda p: p.retain_available)),
    (P.USER_PROPERTY, _write_user_properties),
    (P.MAXIMUM_PACKET_SIZE, _int_writer(P.MAXIMUM_PACKET_SIZE, lambda p: p.maximum_packet_size)),
    (P.WILDCARD_SUBSCRIPTION_AVAILABLE, _int_writer(P.WILDCARD_SUBSCRIPTION_AVAILABLE, lambda p: p.wildcard_subscription_available)),
    (P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, _int_writer(P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, lambda p: p.subscription_identifier_available)),
    (P.SHARED_SUBSCRIPTION_AVAILABLE, _int_writer(P.SHARED_SUBSCRIPTION_AVAILABLE, lambda p: p.shared_subscription_available)),
)  # fmt: skip


def encode_property_values(props: Properties, context: int) -> bytes:
    """The properties without their Property Length, in ascending identifier order.

    A property that the packet (context) may not carry raises ValueError.
    """
    if props is NO_PROPERTIES:
        return b""
    if len(props.subscription_identifiers) > 1 and context != T.PUBLISH:
        raise ValueError("only a PUBLISH may carry several Subscription Identifiers")
    out = bytearray()
    for pid, write in _WRITERS:
        if write(props, out) and context not in SPECS[pid].contexts:
            raise ValueError(f"{pid.name} is not allowed in this packet")
    return bytes(out)


def encode_properties(props: Properties, context: int) -> bytes:
    """Property Length followed by the properties."""
    if props is NO_PROPERTIES:
        return b"\x00"
    values = encode_property_values(props, context)
    return encode_varint(len(values)) + values


def encoded_properties_length(props: Properties, context: int) -> int:
    """Size in bytes of the property section (Property Length included)."""
    values = len(encode_property_values(props, context))
    return values + len(encode_varint(values))
