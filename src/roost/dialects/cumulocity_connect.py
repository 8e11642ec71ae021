"""The Cumulocity MQTT Connect dialect (seed: cumulocity-mqtt-connect.md), rule by rule."""

from __future__ import annotations

import re
from dataclasses import replace

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.dialects.base import Admission, DialectLimits, Refusal, RetainPolicy
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect

# "ClientId may consist of up to 128 alphanumeric characters."
MAX_CLIENT_ID_LENGTH = 128
_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,128}", re.ASCII)
# "Only alphanumeric characters and slash (/) can be used in topic name."
_TOPIC = re.compile(r"[A-Za-z0-9/]+", re.ASCII)
# "the maximum accepted payload size is 1048576 bytes (1 MiB), which includes both message
# header and body": the whole packet.
MAX_PACKET_SIZE = 1_048_576
# Reserved "for historic purposes and future use": `error`, `devicecontrol/notifications`
# and every SmartREST 2.0 topic. SmartREST topics live under the processing-mode levels
# s (persistent), t (transient), q (quiescent) and c (CEP): `s/us`, `s/uc/<X-ID>`, `s/ds`,
# `s/e`, `t/us`, ... Roost reserves those four namespaces as a whole.
RESERVED_TOPICS = frozenset({"error", "devicecontrol/notifications"})
SMARTREST_NAMESPACES = frozenset({"s", "t", "q", "c"})


def is_reserved(topic: str) -> bool:
    """Whether a topic name (or wildcard-free filter) is one of the reserved topics."""
    if topic in RESERVED_TOPICS:
        return True
    first, separator, _ = topic.partition("/")
    return bool(separator) and first in SMARTREST_NAMESPACES


def topic_name_allowed(topic: str) -> bool:
    """Alphanumerics and `/` only."""
    return _TOPIC.fullmatch(topic) is not None


def tenant_login(connect: Connect, credentials: CredentialStore | None) -> Admission | Refusal:
    """Cumulocity's login: username `<tenant>/<user>` and a password credential of that
    tenant; anything else 0x05 (v5 0x87). Without a registry the tenant is the username's
    and the AuthChain decides. Shared by both Cumulocity dialects."""
    refused = Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="invalid credentials")
    username = connect.username
    if username is None:
        return refused
    tenant, separator, user = username.partition("/")
    if not separator or not tenant or not user:
        return refused
    if credentials is None:
        return Admission(tenant=tenant, username=user)
    if not credentials.has_tenant(tenant) or connect.password is None:
        return refused
    principal = credentials.check_password(tenant, user, connect.password)
    if principal is None:
        return refused
    return Admission(
        tenant=tenant, username=user, device_id=principal.device_id, authenticated=True
    )


class CumulocityConnectDialect:
    """MQTT Connect: `<tenantID>/<username>` + password, alphanumeric client ids of at most
    128 characters, QoS 0 and 1, clean sessions, retained flag accepted and ignored, last
    will on unreserved topics, no wildcard subscriptions, alphanumeric topics, reserved
    topics refused, 1 MiB packets.

    Where the seed leaves room, Roost decides (docs/dialects.md):
    - MQTT 3.1.1 as the seed says, and 5.0 too (the seed has it "planned"); 3.1 is refused
      (CONNACK 0x01).
    - Clean session 0 is accepted and treated as 1: nothing is kept after the connection,
      Session Present is 0, a v5 client is told Session Expiry Interval 0.
    - An empty client id is refused (0x02 / 0x85): the seed requires each client to bring a
      unique one.
    - Invalid credentials, a username without `<tenantID>/`, an unknown tenant: 0x05 (v5:
      0x87 Not authorized), the code the seed names.
    - A will on a reserved topic or a topic with other characters refuses the CONNECT
      (v5: 0x90 Topic Name invalid; 3.x: 0x05); a will's QoS 2 is lowered to 1 and its
      retain flag ignored, as for any PUBLISH.
    - A PUBLISH to a reserved or non-alphanumeric topic is dropped (v5 PUBACK 0x87 / 0x90;
      3.x has no negative PUBACK). QoS 2 closes the connection (v5 DISCONNECT 0x9B).
    - Shared subscriptions are not offered (`$` is not alphanumeric)."""

    __slots__ = ()

    name = "cumulocity-connect"
    limits = DialectLimits(
        max_packet_size=MAX_PACKET_SIZE,
        max_client_id_length=MAX_CLIENT_ID_LENGTH,
        maximum_qos=1,
        retain=RetainPolicy.IGNORED,
        wildcard_subscriptions=False,
        shared_subscriptions=False,
        persistent_sessions=False,
    )

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        if connect.protocol_version == ProtocolVersion.V31:
            return Refusal(
                reason_code=ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, reason="MQTT 3.1.1 or 5.0"
            )
        if _CLIENT_ID.fullmatch(connect.client_id) is None:
            return Refusal(
                reason_code=ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                reason="client id must be 1..128 alphanumeric characters",
            )
        will = connect.will
        if will is not None:
            if not topic_name_allowed(will.topic) or is_reserved(will.topic):
                code = (
                    ReasonCode.TOPIC_NAME_INVALID
                    if connect.protocol_version == ProtocolVersion.V5
                    else ReasonCode.NOT_AUTHORIZED
                )
                return Refusal(reason_code=code, reason="will topic not allowed")
            if will.qos > 1 or will.retain:
                will = replace(will, qos=min(will.qos, 1), retain=False)
        if not connect.clean_start or will is not connect.will:
            # "MQTT Connect requires clean session to be set to 1": treated as 1.
            connect = replace(connect, clean_start=True, will=will)
        return connect

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal:
        return tenant_login(connect, credentials)

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        if not topic_name_allowed(topic):
            return ReasonCode.TOPIC_NAME_INVALID
        if is_reserved(topic):
            return ReasonCode.NOT_AUTHORIZED
        return None

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        if not topic_name_allowed(topic_filter):
            return ReasonCode.TOPIC_FILTER_INVALID
        if is_reserved(topic_filter):
            return ReasonCode.NOT_AUTHORIZED
        return None
