"""The Cumulocity SmartREST dialect (seed: cumulocity-mqtt-smartrest.md): connection, topic
and device-hierarchy rules. The SmartREST payload templates are not interpreted here."""

from __future__ import annotations

from dataclasses import replace

from roost.auth.base import ClientInfo
from roost.auth.credentials import CredentialStore
from roost.dialects.base import Admission, DialectLimits, PublishNotice, Refusal, RetainPolicy
from roost.dialects.cumulocity_connect import tenant_login
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import Connect

# The processing modes of the upstream topics: s (persistent), t (transient),
# q (quiescent), c (CEP).
MODES = frozenset({"s", "t", "q", "c"})
# "connectionType ... default: d (device)": the only connection type the seed names.
CONNECTION_TYPES = frozenset({"d"})
# Canonical topics: a device's own `s/us` is `smartrest/<deviceIdentifier>/s/us` to the
# rest of its tenant, so that devices never see each other's topics.
PREFIX = "smartrest"
# Downstream topics a device may subscribe to: the base levels of each.
DOWNSTREAM = frozenset({"s/ds", "s/e", "s/dt"})
ERROR_TOPIC = "s/e"
# Characters that cannot be in a device identifier: the client-id separator and what would
# break the identifier as one topic level.
_NOT_IN_IDENTIFIER = frozenset(":/+#\x00")


def device_identifier(client_id: str) -> str | None:
    """The deviceIdentifier of `[connectionType:]deviceIdentifier[:template]`, or None."""
    parts = client_id.split(":")
    if len(parts) == 1:
        identifier = parts[0]
    elif len(parts) in (2, 3):
        if parts[0] not in CONNECTION_TYPES or (len(parts) == 3 and not parts[2]):
            return None
        identifier = parts[1]
    else:
        return None
    if not identifier or not _NOT_IN_IDENTIFIER.isdisjoint(identifier):
        return None
    return identifier


def _is_level(value: str) -> bool:
    return bool(value) and "/" not in value and "+" not in value and "#" not in value


def upstream_allowed(topic: str) -> bool:
    """`<mode>/us[/<child>]`, `<mode>/uc/<template>[/<child>]`, `s/ut/<template>`."""
    levels = topic.split("/")
    if len(levels) < 2 or levels[0] not in MODES:
        return False
    kind, rest = levels[1], levels[2:]
    if kind == "us":
        return len(rest) <= 1 and all(map(_is_level, rest))
    if kind == "uc":
        return 1 <= len(rest) <= 2 and all(map(_is_level, rest))
    if kind == "ut":
        return levels[0] == "s" and len(rest) == 1 and _is_level(rest[0])
    return False


def downstream_base(topic_filter: str) -> bool:
    """`s/ds`, `s/dc/<template>`, `s/e`, `s/dt`: what a device may subscribe to."""
    if topic_filter in DOWNSTREAM:
        return True
    levels = topic_filter.split("/")
    return len(levels) == 3 and levels[:2] == ["s", "dc"] and _is_level(levels[2])


def escape(value: str) -> str:
    """SmartREST escaping: quoted when holding `,` `\\n` `\\r` or `"`, each `"` as `\\"`."""
    if any(c in value for c in ',\n\r"'):
        return '"' + value.replace('"', '\\"') + '"'
    return value


class SmartRestTopics:
    """One device's topics: its own form <-> `smartrest/<deviceIdentifier>/...`.

    Upstream topics keep their child suffix. A downstream subscription covers the device and
    every child below it (`s/ds` -> `smartrest/<id>/s/ds/#`), and whatever it receives is
    delivered on the topic the device subscribed to (the child is named in the payload)."""

    __slots__ = ("_prefix",)

    def __init__(self, identifier: str) -> None:
        self._prefix = f"{PREFIX}/{identifier}/"

    def inbound_topic(self, topic: str) -> str:
        return self._prefix + topic

    def inbound_filter(self, topic_filter: str) -> str:
        if downstream_base(topic_filter):
            return f"{self._prefix}{topic_filter}/#"
        return self._prefix + topic_filter

    def outbound_topic(self, topic: str) -> str:
        if not topic.startswith(self._prefix):
            return topic
        levels = topic[len(self._prefix) :].split("/")
        base = "/".join(levels[:3] if levels[:2] == ["s", "dc"] else levels[:2])
        return base if downstream_base(base) else "/".join(levels)


class CumulocitySmartRestDialect:
    """SmartREST over MQTT: client id `[connectionType:]deviceIdentifier[:template]` with
    sessions keyed by the device identifier, `<tenant>/<username>` + password, QoS 0..2,
    persistent sessions, retained flag accepted and ignored, no last will, publishing only
    to the upstream topics and subscribing only to the downstream ones, child devices as a
    topic suffix, refused publishes reported on `s/e`.

    Where the seed leaves room, Roost decides (docs/dialects.md):
    - MQTT 3.1.1 as the seed says, and 5.0; 3.1 is refused (CONNACK 0x01).
    - connectionType `d` only; a client id of more than three parts, an empty identifier or
      one holding `/`, `+`, `#` is refused (0x02 / v5 0x85).
    - A will is dropped at CONNECT (the CONNECT is accepted; nothing is published).
    - Credentials are checked as in `cumulocity-connect` (0x05 / v5 0x87).
    - Everything a device subscribed to (operations, errors, templates: the only topics it
      may subscribe to) is delivered at the subscription's QoS, also when it was published
      with a lower one."""

    __slots__ = ()

    name = "cumulocity-smartrest"
    limits = DialectLimits(
        maximum_qos=2,
        retain=RetainPolicy.IGNORED,
        wildcard_subscriptions=False,
        shared_subscriptions=False,
        persistent_sessions=True,
        subscription_qos=True,
    )

    def check_connect(self, connect: Connect) -> Connect | Refusal:
        if connect.protocol_version == ProtocolVersion.V31:
            return Refusal(
                reason_code=ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, reason="MQTT 3.1.1 or 5.0"
            )
        if device_identifier(connect.client_id) is None:
            return Refusal(
                reason_code=ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                reason="client id must be [connectionType:]deviceIdentifier[:template]",
            )
        if connect.will is not None:
            # "The Last Will feature is currently not supported": dropped.
            connect = replace(connect, will=None)
        return connect

    def authenticate(
        self, connect: Connect, client: ClientInfo, credentials: CredentialStore | None
    ) -> Admission | Refusal:
        identifier = device_identifier(connect.client_id)
        if identifier is None:
            return Refusal(reason_code=ReasonCode.NOT_AUTHORIZED, reason="invalid credentials")
        admission = tenant_login(connect, credentials)
        if isinstance(admission, Refusal):
            return admission
        # Sessions and takeover are keyed on the device identifier, not the client id.
        return replace(admission, session_client_id=identifier)

    def check_publish(
        self, client: ClientInfo, topic: str, qos: int, retain: bool, payload_size: int
    ) -> int | None:
        return None if upstream_allowed(topic) else ReasonCode.NOT_AUTHORIZED

    def check_subscribe(
        self, client: ClientInfo, topic_filter: str, qos: int, shared: bool
    ) -> int | None:
        return None if downstream_base(topic_filter) else ReasonCode.NOT_AUTHORIZED

    def client_topics(self, client: ClientInfo) -> SmartRestTopics | None:
        identifier = device_identifier(client.client_id)
        return None if identifier is None else SmartRestTopics(identifier)

    def publish_refused(self, client: ClientInfo, topic: str, reason_code: int) -> PublishNotice:
        """The error line on `s/e`: `<reason code>,<topic>,<reason>`."""
        reason = "not authorized" if reason_code == ReasonCode.NOT_AUTHORIZED else "refused"
        line = f"{reason_code},{escape(topic)},{escape(reason)}"
        return PublishNotice(topic=ERROR_TOPIC, payload=line.encode())
