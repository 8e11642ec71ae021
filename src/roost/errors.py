"""The one exception tree of Roost; protocol errors carry their MQTT 5 reason code."""

from __future__ import annotations

from roost.mqtt.constants import ReasonCode


class RoostError(Exception):
    """Base of every error Roost raises on purpose."""


class ConfigError(RoostError):
    """The configuration is invalid."""


class MQTTError(RoostError):
    """A violation of the MQTT protocol by the peer; ends in CONNACK/DISCONNECT + close."""

    reason_code: ReasonCode = ReasonCode.UNSPECIFIED_ERROR

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(MQTTError):
    """The bytes do not form a valid packet (reason 0x81)."""

    reason_code = ReasonCode.MALFORMED_PACKET


class ProtocolViolation(MQTTError):
    """A well-formed packet that breaks a protocol rule (reason 0x82 unless given)."""

    reason_code = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(MQTTError):
    """A packet above the negotiated maximum packet size (reason 0x95)."""

    reason_code = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(MQTTError):
    """CONNECT with an unknown protocol name or level (reason 0x84 / v3 code 0x01)."""

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION


class StoreError(RoostError):
    """The store failed; what was asked of it did not happen."""


class RrpcError(RoostError):
    """A revert-RPC call (roost.server.rrpc) ended without the device's response."""


class DeviceOffline(RrpcError):
    """The device has no connection to send the request on."""


class RrpcTimeout(RrpcError):
    """The device did not respond within the call's timeout."""


class TooManyCalls(RrpcError):
    """The limit on outstanding calls is reached; nothing was sent."""


class StreamError(RoostError):
    """A request to the messaging service that cannot be done; nothing was changed."""


class UnknownStream(StreamError):
    """No stream of that name in the tenant."""


class UnknownGroup(StreamError):
    """No consumer group of that name on the stream."""


class InvalidStreamRequest(StreamError):
    """A stream declaration, position or batch size out of bounds or malformed."""
