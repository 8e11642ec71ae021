"""CONNECT handling: client identifier rules, keep alive and session expiry negotiation,
and the CONNACK properties. Pure decisions over the packet and the config."""

from __future__ import annotations

import secrets

from roost.config import MQTTConfig
from roost.core.broker import NEVER_EXPIRES
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect, Properties
from roost.records import record


@record()
class Negotiated:
    """The outcome of CONNECT's parameters against the server's limits (one per CONNECT)."""

    client_id: str
    assigned: bool
    keep_alive: int
    session_expiry_interval: int


class ConnectRefused(Exception):
    def __init__(self, reason_code: int, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code


def assign_client_id() -> str:
    return "roost-" + secrets.token_hex(8)


def negotiate(connect: Connect, config: MQTTConfig) -> Negotiated:
    """Apply the client-id, keep-alive and session-expiry rules; raise ConnectRefused."""
    version = connect.protocol_version
    client_id = connect.client_id
    assigned = False
    if not client_id:
        if version == ProtocolVersion.V5:
            # [MQTT-3.1.3-6] a zero-length ClientID is assigned one, returned in CONNACK.
            if not config.allow_empty_client_id:
                raise ConnectRefused(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id")
        elif version == ProtocolVersion.V31 or not connect.clean_start:
            # 3.1 requires 1..23 characters; 3.1.1 allows empty only with clean session
            # [MQTT-3.1.3-8]: CONNACK 0x02 Identifier rejected.
            raise ConnectRefused(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id")
        elif not config.allow_empty_client_id:
            raise ConnectRefused(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "empty client id")
        client_id = assign_client_id()
        assigned = True
    elif len(client_id.encode()) > config.max_client_id_length:
        raise ConnectRefused(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "client id too long")

    will = connect.will
    if will is not None and version == ProtocolVersion.V5:
        if will.qos > config.maximum_qos:
            # [MQTT-3.2.2-12]: a Will QoS above Maximum QoS is refused with 0x9B.
            raise ConnectRefused(ReasonCode.QOS_NOT_SUPPORTED, "will QoS not supported")
        if will.retain and not config.retain_available:
            # [MQTT-3.2.2-13]: Will Retain when retain is not available: 0x9A.
            raise ConnectRefused(ReasonCode.RETAIN_NOT_SUPPORTED, "will retain not supported")

    keep_alive = connect.keep_alive
    if config.max_keep_alive < 65_535 and (keep_alive == 0 or keep_alive > config.max_keep_alive):
        if version == ProtocolVersion.V5:
            # Server Keep Alive tells the client the value to use [MQTT-3.2.2-21].
            keep_alive = config.max_keep_alive
        elif keep_alive > config.max_keep_alive:
            # 3.x has no way to tell the client; refuse rather than cut it off later.
            raise ConnectRefused(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID, "keep alive too long")

    if version == ProtocolVersion.V5:
        expiry = connect.properties.session_expiry_interval or 0
    else:
        # 3.x: clean session 0 keeps the session; the server caps how long.
        expiry = 0 if connect.clean_start else NEVER_EXPIRES
    if expiry > config.max_session_expiry_interval:
        expiry = config.max_session_expiry_interval
    return Negotiated(client_id, assigned, keep_alive, expiry)


def connack_properties(
    connect: Connect,
    negotiated: Negotiated,
    config: MQTTConfig,
    max_packet_size: int,
    response_information: str | None,
) -> Properties:
    """CONNACK properties for a v5 client: the server's limits and capabilities."""
    requested_expiry = connect.properties.session_expiry_interval or 0
    return Properties(
        session_expiry_interval=(
            negotiated.session_expiry_interval
            if negotiated.session_expiry_interval != requested_expiry
            else None
        ),
        assigned_client_identifier=negotiated.client_id if negotiated.assigned else None,
        server_keep_alive=(
            negotiated.keep_alive if negotiated.keep_alive != connect.keep_alive else None
        ),
        receive_maximum=config.receive_maximum,
        maximum_qos=config.maximum_qos if config.maximum_qos < 2 else None,
        retain_available=None if config.retain_available else 0,
        maximum_packet_size=max_packet_size,
        topic_alias_maximum=config.topic_alias_maximum or None,
        wildcard_subscription_available=1 if config.wildcard_subscription_available else 0,
        subscription_identifier_available=1 if config.subscription_identifier_available else 0,
        shared_subscription_available=1 if config.shared_subscription_available else 0,
        response_information=response_information,
    )


# Characters a client identifier may not hold: it appears in topic templates and ACL
# patterns, where a wildcard would match other clients' topics.
CLIENT_ID_REFUSED_CHARACTERS = frozenset("+#")


def check_connect_limits(connect: Connect, max_user_properties: int) -> int | None:
    """CONNECT's own limits beyond the codec's. A client id with a wildcard (`+`, `#`) is
    refused with CONNACK 0x85 / 0x02 (a valid string the server does not allow); too many
    user properties on CONNECT or on the will, which the session keeps, with v5 CONNACK
    0x97 Quota exceeded. None when within them."""
    if not CLIENT_ID_REFUSED_CHARACTERS.isdisjoint(connect.client_id):
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    will = connect.will
    count = len(connect.properties.user_properties)
    if will is not None:
        count = max(count, len(will.properties.user_properties))
    if count > max_user_properties:
        return ReasonCode.QUOTA_EXCEEDED
    return None


def match_certificate_identity(
    negotiated: Negotiated, identity: str | None
) -> tuple[Negotiated, int | None]:
    """A listener that requires the client id to be the TLS client certificate's identity:
    an empty client id is given the identity; another one is refused with CONNACK 0x85
    Client Identifier not valid (3.x: 0x02 Identifier rejected), the code the spec gives to
    "a valid string but not allowed by the Server"."""
    if identity is None:
        return negotiated, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    if negotiated.assigned:
        return Negotiated(
            client_id=identity,
            assigned=True,
            keep_alive=negotiated.keep_alive,
            session_expiry_interval=negotiated.session_expiry_interval,
        ), None
    if negotiated.client_id != identity:
        return negotiated, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    return negotiated, None
