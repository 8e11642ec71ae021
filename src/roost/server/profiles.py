"""What a listener's dialect makes of the server's settings: its effective MQTT limits,
protocol limits, default tenant and retain policy (made once per listener)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from roost.config import Config, MQTTConfig
from roost.dialects import Dialect, make_dialect
from roost.dialects.base import (
    DialectLimits,
    PacketRules,
    PublishErrors,
    RetainPolicy,
    SubscribeErrors,
    TopicMapping,
    topic_mapping,
)
from roost.protocol.connection import ConnectionLimits
from roost.server import inbound


@dataclass(frozen=True, slots=True)
class ListenerProfile:
    dialect: Dialect
    # The server's [mqtt] settings with the dialect's limits applied (only ever lower).
    mqtt: MQTTConfig
    connection_limits: ConnectionLimits
    topic_name_valid: Callable[[str], bool]
    tenant: str
    # False: the RETAIN flag of a PUBLISH is accepted and ignored.
    keeps_retain: bool
    # The dialect's optional hooks, found once (an isinstance against a runtime-checkable
    # Protocol costs microseconds: too much for every PUBLISH).
    packet_rules: PacketRules | None = None
    publish_errors: PublishErrors | None = None
    subscribe_errors: SubscribeErrors | None = None
    topic_mapping: TopicMapping | None = None


def _lower(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def effective_mqtt(mqtt: MQTTConfig, limits: DialectLimits) -> MQTTConfig:
    """The listener's MQTT settings: the server's, lowered by the dialect's limits."""
    return replace(
        mqtt,
        max_packet_size=_lower(mqtt.max_packet_size, limits.max_packet_size),
        max_client_id_length=_lower(mqtt.max_client_id_length, limits.max_client_id_length),
        maximum_qos=min(mqtt.maximum_qos, limits.maximum_qos),
        retain_available=mqtt.retain_available and limits.retain is not RetainPolicy.REFUSED,
        wildcard_subscription_available=(
            mqtt.wildcard_subscription_available and limits.wildcard_subscriptions
        ),
        shared_subscription_available=(
            mqtt.shared_subscription_available and limits.shared_subscriptions
        ),
        max_session_expiry_interval=(
            mqtt.max_session_expiry_interval if limits.persistent_sessions else 0
        ),
    )


def build_profile(config: Config, listener: str) -> ListenerProfile:
    """The profile of the listener called `listener` (generic on the default tenant for a
    name the config does not know, e.g. a handler made by a test)."""
    dialect_name, tenant = "generic", "default"
    for listener_config in config.listeners:
        if listener_config.name == listener:
            dialect_name, tenant = listener_config.dialect, listener_config.tenant
    dialect = make_dialect(dialect_name, tenant, config.registry.allow_anonymous)
    limits = dialect.limits
    m = effective_mqtt(config.mqtt, limits)
    connection_limits = ConnectionLimits(
        max_packet_size=m.max_packet_size,
        receive_maximum=m.receive_maximum,
        max_awaiting_rel=m.max_awaiting_rel,
        topic_alias_maximum=m.topic_alias_maximum,
        maximum_qos=m.maximum_qos,
        retain_available=m.retain_available,
        max_topic_length=m.max_topic_length,
        max_topic_levels=m.max_topic_levels,
    )
    return ListenerProfile(
        dialect=dialect,
        mqtt=m,
        connection_limits=connection_limits,
        topic_name_valid=inbound.topic_name_checker(m),
        tenant=tenant,
        keeps_retain=limits.retain is not RetainPolicy.IGNORED,
        packet_rules=dialect if isinstance(dialect, PacketRules) else None,
        publish_errors=dialect if isinstance(dialect, PublishErrors) else None,
        subscribe_errors=dialect if isinstance(dialect, SubscribeErrors) else None,
        topic_mapping=topic_mapping(dialect),
    )
