"""Events the connection state machine reports to the server."""

from __future__ import annotations

from dataclasses import dataclass

from roost.mqtt.packets import (
    Auth,
    Connect,
    Disconnect,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Unsubscribe,
)


@dataclass(frozen=True, slots=True)
class ConnectReceived:
    packet: Connect


@dataclass(frozen=True, slots=True)
class AuthReceived:
    packet: Auth


@dataclass(frozen=True, slots=True)
class PublishReceived:
    """A PUBLISH whose topic alias has been resolved into `packet.topic`.

    `duplicate` is True for a QoS 2 PUBLISH whose packet id is still waiting for PUBREL:
    the server answers PUBREC again and does not deliver it twice [MQTT-4.3.3-10]."""

    packet: Publish
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class PubackReceived:
    packet: Puback


@dataclass(frozen=True, slots=True)
class PubrecReceived:
    packet: Pubrec


@dataclass(frozen=True, slots=True)
class PubrelReceived:
    packet: Pubrel


@dataclass(frozen=True, slots=True)
class PubcompReceived:
    packet: Pubcomp


@dataclass(frozen=True, slots=True)
class SubscribeReceived:
    packet: Subscribe


@dataclass(frozen=True, slots=True)
class UnsubscribeReceived:
    packet: Unsubscribe


@dataclass(frozen=True, slots=True)
class DisconnectReceived:
    packet: Disconnect


@dataclass(frozen=True, slots=True)
class ProtocolFailed:
    """The connection must close; a DISCONNECT or CONNACK was queued where the spec wants one."""

    reason_code: int
    reason: str


Event = (
    ConnectReceived
    | AuthReceived
    | PublishReceived
    | PubackReceived
    | PubrecReceived
    | PubrelReceived
    | PubcompReceived
    | SubscribeReceived
    | UnsubscribeReceived
    | DisconnectReceived
    | ProtocolFailed
)
