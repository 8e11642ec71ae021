"""Events the connection state machine reports to the server."""

from __future__ import annotations

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
from roost.records import record


@record()
class ConnectReceived:
    packet: Connect


@record()
class AuthReceived:
    packet: Auth


@record()
class PublishReceived:
    """A PUBLISH whose topic alias has been resolved into `packet.topic`.

    `duplicate` is True for a QoS 2 PUBLISH whose packet id is still waiting for PUBREL:
    the server answers PUBREC again and does not deliver it twice [MQTT-4.3.3-10]."""

    packet: Publish
    duplicate: bool = False


@record()
class PubackReceived:
    packet: Puback


@record()
class PubrecReceived:
    packet: Pubrec


@record()
class PubrelReceived:
    packet: Pubrel


@record()
class PubcompReceived:
    packet: Pubcomp


@record()
class SubscribeReceived:
    packet: Subscribe


@record()
class UnsubscribeReceived:
    packet: Unsubscribe


@record()
class DisconnectReceived:
    packet: Disconnect


@record()
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
