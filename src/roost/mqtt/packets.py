"""Immutable MQTT control packets and MQTT 5 properties, shared by all protocol versions.

Fields that exist only in MQTT 5 (properties, reason codes) take their neutral defaults
when a 3.1 / 3.1.1 packet is decoded; the encoder leaves them out for those versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.mqtt.constants import PacketType, ProtocolVersion, ReasonCode
from roost.records import record

UserProperties = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Properties:
    """MQTT 5 properties (section 2.2.2.2); None means "absent"."""

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: UserProperties = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None


NO_PROPERTIES = Properties()


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    """The Will Message carried by CONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)  # one per connection
class Connect:
    packet_type = PacketType.CONNECT
    protocol_name: str = "MQTT"
    protocol_version: ProtocolVersion = ProtocolVersion.V311
    clean_start: bool = True
    keep_alive: int = 0
    client_id: str = ""
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Connack:
    packet_type = PacketType.CONNACK
    session_present: bool = False
    # v5 reason code; for 3.1 / 3.1.1 the encoder maps it to a ConnackReturnCode.
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)
class Publish:
    packet_type = PacketType.PUBLISH
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)
class Puback:
    packet_type = PacketType.PUBACK
    packet_id: int
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)
class Pubrec:
    packet_type = PacketType.PUBREC
    packet_id: int
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)
class Pubrel:
    packet_type = PacketType.PUBREL
    packet_id: int
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


@record(kw_only=True)
class Pubcomp:
    packet_type = PacketType.PUBCOMP
    packet_id: int
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One topic filter and its Subscription Options."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    packet_type = PacketType.SUBSCRIBE
    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Suback:
    packet_type = PacketType.SUBACK
    packet_id: int
    # v5 reason codes; for 3.x granted QoS 0/1/2 or 0x80 (failure).
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    packet_type = PacketType.UNSUBSCRIBE
    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsuback:
    packet_type = PacketType.UNSUBACK
    packet_id: int
    # v5 only; a 3.x UNSUBACK has no payload.
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Pingreq:
    packet_type = PacketType.PINGREQ


@dataclass(frozen=True, slots=True, kw_only=True)
class Pingresp:
    packet_type = PacketType.PINGRESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    packet_type = PacketType.DISCONNECT
    reason_code: int = ReasonCode.NORMAL_DISCONNECTION
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    packet_type = PacketType.AUTH
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = NO_PROPERTIES


Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)

__all__ = [
    "NO_PROPERTIES",
    "Auth",
    "Connack",
    "Connect",
    "Disconnect",
    "Packet",
    "Pingreq",
    "Pingresp",
    "Properties",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "Suback",
    "Subscribe",
    "Subscription",
    "Unsuback",
    "Unsubscribe",
    "UserProperties",
    "Will",
]
