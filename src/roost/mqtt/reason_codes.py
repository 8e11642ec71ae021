"""Reason codes allowed per packet type (MQTT 5 section 2.4) and the MQTT 3.x mappings."""

from __future__ import annotations

from roost.mqtt.constants import ConnackReturnCode, PacketType
from roost.mqtt.constants import ReasonCode as R

T = PacketType

_PUBACK_PUBREC = frozenset(
    {
        R.SUCCESS,
        R.NO_MATCHING_SUBSCRIBERS,
        R.UNSPECIFIED_ERROR,
        R.IMPLEMENTATION_SPECIFIC_ERROR,
        R.NOT_AUTHORIZED,
        R.TOPIC_NAME_INVALID,
        R.PACKET_IDENTIFIER_IN_USE,
        R.QUOTA_EXCEEDED,
        R.PAYLOAD_FORMAT_INVALID,
    }
)
_PUBREL_PUBCOMP = frozenset({R.SUCCESS, R.PACKET_IDENTIFIER_NOT_FOUND})

VALID_REASON_CODES: dict[PacketType, frozenset[int]] = {
    T.CONNACK: frozenset(
        {
            R.SUCCESS,
            R.UNSPECIFIED_ERROR,
            R.MALFORMED_PACKET,
            R.PROTOCOL_ERROR,
            R.IMPLEMENTATION_SPECIFIC_ERROR,
            R.UNSUPPORTED_PROTOCOL_VERSION,
            R.CLIENT_IDENTIFIER_NOT_VALID,
            R.BAD_USER_NAME_OR_PASSWORD,
            R.NOT_AUTHORIZED,
            R.SERVER_UNAVAILABLE,
            R.SERVER_BUSY,
            R.BANNED,
            R.BAD_AUTHENTICATION_METHOD,
            R.TOPIC_NAME_INVALID,
            R.PACKET_TOO_LARGE,
            R.QUOTA_EXCEEDED,
            R.PAYLOAD_FORMAT_INVALID,
            R.RETAIN_NOT_SUPPORTED,
            R.QOS_NOT_SUPPORTED,
            R.USE_ANOTHER_SERVER,
            R.SERVER_MOVED,
            R.CONNECTION_RATE_EXCEEDED,
        }
    ),
    T.PUBACK: _PUBACK_PUBREC,
    T.PUBREC: _PUBACK_PUBREC,
    T.PUBREL: _PUBREL_PUBCOMP,
    T.PUBCOMP: _PUBREL_PUBCOMP,
    T.SUBACK: frozenset(
        {
            R.GRANTED_QOS_0,
            R.GRANTED_QOS_1,
            R.GRANTED_QOS_2,
            R.UNSPECIFIED_ERROR,
            R.IMPLEMENTATION_SPECIFIC_ERROR,
            R.NOT_AUTHORIZED,
            R.TOPIC_FILTER_INVALID,
            R.PACKET_IDENTIFIER_IN_USE,
            R.QUOTA_EXCEEDED,
            R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        }
    ),
    T.UNSUBACK: frozenset(
        {
            R.SUCCESS,
            R.NO_SUBSCRIPTION_EXISTED,
            R.UNSPECIFIED_ERROR,
            R.IMPLEMENTATION_SPECIFIC_ERROR,
            R.NOT_AUTHORIZED,
            R.TOPIC_FILTER_INVALID,
            R.PACKET_IDENTIFIER_IN_USE,
        }
    ),
    T.DISCONNECT: frozenset(
        {
            R.NORMAL_DISCONNECTION,
            R.DISCONNECT_WITH_WILL_MESSAGE,
            R.UNSPECIFIED_ERROR,
            R.MALFORMED_PACKET,
            R.PROTOCOL_ERROR,
            R.IMPLEMENTATION_SPECIFIC_ERROR,
            R.NOT_AUTHORIZED,
            R.SERVER_BUSY,
            R.SERVER_SHUTTING_DOWN,
            R.KEEP_ALIVE_TIMEOUT,
            R.SESSION_TAKEN_OVER,
            R.TOPIC_FILTER_INVALID,
            R.TOPIC_NAME_INVALID,
            R.RECEIVE_MAXIMUM_EXCEEDED,
            R.TOPIC_ALIAS_INVALID,
            R.PACKET_TOO_LARGE,
            R.MESSAGE_RATE_TOO_HIGH,
            R.QUOTA_EXCEEDED,
            R.ADMINISTRATIVE_ACTION,
            R.PAYLOAD_FORMAT_INVALID,
            R.RETAIN_NOT_SUPPORTED,
            R.QOS_NOT_SUPPORTED,
            R.USE_ANOTHER_SERVER,
            R.SERVER_MOVED,
            R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            R.CONNECTION_RATE_EXCEEDED,
            R.MAXIMUM_CONNECT_TIME,
            R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        }
    ),
    T.AUTH: frozenset({R.SUCCESS, R.CONTINUE_AUTHENTICATION, R.RE_AUTHENTICATE}),
}

# MQTT 3.x SUBACK return codes: granted QoS 0/1/2 or 0x80 Failure.
V3_SUBACK_CODES = frozenset({0x00, 0x01, 0x02, 0x80})

# MQTT 3.x CONNACK return code -> the MQTT 5 reason code Roost stores in Connack.
CONNACK_V3_TO_V5: dict[int, int] = {
    ConnackReturnCode.ACCEPTED: R.SUCCESS,
    ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION: R.UNSUPPORTED_PROTOCOL_VERSION,
    ConnackReturnCode.IDENTIFIER_REJECTED: R.CLIENT_IDENTIFIER_NOT_VALID,
    ConnackReturnCode.SERVER_UNAVAILABLE: R.SERVER_UNAVAILABLE,
    ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD: R.BAD_USER_NAME_OR_PASSWORD,
    ConnackReturnCode.NOT_AUTHORIZED: R.NOT_AUTHORIZED,
}

# MQTT 5 CONNACK reason code -> the closest MQTT 3.x return code. Reason codes not listed
# (server-side failures, limits, redirection) become "Server unavailable".
_CONNACK_V5_TO_V3: dict[int, ConnackReturnCode] = {
    R.SUCCESS: ConnackReturnCode.ACCEPTED,
    R.UNSUPPORTED_PROTOCOL_VERSION: ConnackReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,
    R.CLIENT_IDENTIFIER_NOT_VALID: ConnackReturnCode.IDENTIFIER_REJECTED,
    R.SERVER_UNAVAILABLE: ConnackReturnCode.SERVER_UNAVAILABLE,
    R.SERVER_BUSY: ConnackReturnCode.SERVER_UNAVAILABLE,
    R.BAD_USER_NAME_OR_PASSWORD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    R.BAD_AUTHENTICATION_METHOD: ConnackReturnCode.BAD_USER_NAME_OR_PASSWORD,
    R.NOT_AUTHORIZED: ConnackReturnCode.NOT_AUTHORIZED,
    R.BANNED: ConnackReturnCode.NOT_AUTHORIZED,
}


def connack_v3_return_code(reason_code: int) -> int:
    """Map an MQTT 5 CONNACK reason code down to an MQTT 3.x return code."""
    if reason_code not in VALID_REASON_CODES[T.CONNACK]:
        raise ValueError(f"0x{reason_code:02X} is not a CONNACK reason code")
    return _CONNACK_V5_TO_V3.get(reason_code, ConnackReturnCode.SERVER_UNAVAILABLE)


def suback_v3_return_code(reason_code: int) -> int:
    """Map an MQTT 5 SUBACK reason code down to 3.x: granted QoS as is, failures to 0x80."""
    if reason_code not in VALID_REASON_CODES[T.SUBACK]:
        raise ValueError(f"0x{reason_code:02X} is not a SUBACK reason code")
    return reason_code if reason_code < 0x80 else 0x80
