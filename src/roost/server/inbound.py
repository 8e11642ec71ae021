"""What the server does with each packet a connected client sends: the PUBLISH checks,
acknowledgements, SUBSCRIBE and UNSUBSCRIBE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from roost.auth.base import Action
from roost.config import MQTTConfig
from roost.core.message import Message
from roost.core.quotas import TenantUsage
from roost.core.session import SessionSubscription
from roost.core.topics import (
    is_dollar_topic,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared,
)
from roost.dialects.base import (
    ClientTopics,
    PublishNotice,
)
from roost.errors import MQTTError
from roost.mqtt.constants import ProtocolVersion, ReasonCode
from roost.mqtt.packets import (
    NO_PROPERTIES,
    Properties,
    Publish,
    Pubrec,
    Subscribe,
    Subscription,
    Unsubscribe,
)
from roost.protocol import events as ev
from roost.server.flow import HeldAck, acknowledge
from roost.streams.base import PendingCapture

if TYPE_CHECKING:
    from roost.server.handler import ConnectionHandler


def topic_name_checker(config: MQTTConfig) -> Callable[[str], bool]:
    max_length, max_levels = config.max_topic_length, config.max_topic_levels

    def check(topic_name: str) -> bool:
        return is_valid_topic_name(topic_name, max_length, max_levels)

    return check


# -- PUBLISH ------------------------------------------------------------------------------


def publish_refusal(h: ConnectionHandler, packet: Publish) -> int | None:
    """The reason code refusing an inbound PUBLISH, or None to accept it. In this order:
    too many user properties; a `$SYS` topic (the broker's own, clients may not publish
    there); the listener's dialect (topic policy, reserved topics, payload size,
    properties); the authorizers."""
    client = h.client
    assert client is not None
    properties = packet.properties
    # Without properties (max_user_properties is >= 0): nothing to count.
    if (
        properties is not NO_PROPERTIES
        and len(properties.user_properties) > h.ctx.config.mqtt.max_user_properties
    ):
        return ReasonCode.QUOTA_EXCEEDED
    topic = packet.topic
    if topic.startswith("$SYS"):
        return ReasonCode.NOT_AUTHORIZED
    profile = h.profile
    refused = profile.dialect.check_publish(
        client, topic, packet.qos, packet.retain, len(packet.payload)
    )
    if refused is not None:
        return refused
    rules = profile.packet_rules
    if rules is not None:
        refused = rules.check_publish_properties(client, properties)
        if refused is not None:
            return refused
    auth = h.ctx.auth
    if auth.allows_everything:
        return None
    decision = auth.authorize(client, Action.PUBLISH, topic, packet.qos, packet.retain)
    return None if decision.allowed else (decision.reason_code or ReasonCode.NOT_AUTHORIZED)


def on_publish(h: ConnectionHandler, event: ev.PublishReceived) -> None:
    packet = event.packet
    session = h.session
    assert (session is not None and packet.packet_id is not None) or packet.qos == 0
    assert session is not None
    conn = h.conn
    if event.duplicate:
        # Already received, PUBREL outstanding: acknowledge again, do not deliver twice.
        conn.send_pubrec(packet.packet_id or 0)
        return
    if packet.qos == 2 and packet.packet_id in session.awaiting_rel:
        # Resent after a reconnect before PUBREL arrived [MQTT-4.3.3-10]
        conn.send_pubrec(packet.packet_id)
        return
    refused = publish_refusal(h, packet)
    matched = 0
    if refused is None:
        now = h.ctx.clock()
        message = _message(h, packet, now)
        quota = h.quota
        if quota is not None and quota.publish_checked:
            refused = check_quota(h, quota, packet, message)
        if refused is None:
            matched = h.ctx.broker.publish(message, now)
            streams = h.ctx.streams
            if streams is not None and streams.captures(message.tenant):
                pending = (
                    streams.capture_later(message, packet.packet_id or 0, packet.dup)
                    if packet.qos
                    else None
                )
                if pending is None:
                    # Appended in the same group commit the acknowledgement below waits for.
                    matched += streams.capture(message, packet.packet_id, packet.dup, now)
                elif pending.count:
                    _hold_for_capture(h, pending, packet, matched)
                    return
    if packet.qos:
        acknowledge(
            conn,
            session,
            packet.packet_id or 0,
            packet.qos,
            _ack_code(refused, matched, conn.version == ProtocolVersion.V5),
        )
    if refused is not None and h.profile.publish_errors is not None:
        assert h.client is not None
        _publish_notice(
            h, h.profile.publish_errors.publish_refused(h.client, packet.topic, refused)
        )


def _hold_for_capture(
    h: ConnectionHandler, pending: PendingCapture, packet: Publish, matched: int
) -> None:
    """Worker processes > 0: a QoS 1/2 message some stream captures went to worker 0, and
    its acknowledgement waits for worker 0's answer that the append is committed (v5: 0x80
    Unspecified error if it cannot come; 3.x: the connection closes unacknowledged)."""
    session = h.session
    assert session is not None
    v5 = h.conn.version == ProtocolVersion.V5
    packet_id = packet.packet_id or 0
    if pending.ok is False:
        # Worker 0 is not linked: the message is not captured.
        if not v5:
            raise MQTTError(
                "streams unavailable (worker 0 not linked)", ReasonCode.UNSPECIFIED_ERROR
            )
        acknowledge(h.conn, session, packet_id, packet.qos, ReasonCode.UNSPECIFIED_ERROR)
        return
    held = HeldAck(pending, session, packet_id, packet.qos)
    h.hold_for_capture(held, _ack_code(None, matched + pending.count, v5))


def canonical_response_topic(topics: ClientTopics, props: Properties) -> Properties:
    """A Response Topic is a topic name too: in the canonical form, like the message's
    topic, so that whoever answers reaches the client (docs/dialects.md)."""
    if props.response_topic is None:
        return props
    return replace(props, response_topic=topics.inbound_topic(props.response_topic))


def _message(h: ConnectionHandler, packet: Publish, now: float) -> Message:
    """The message of an accepted PUBLISH, in the tenant, on the canonical topic."""
    session = h.session
    assert session is not None
    props = packet.properties
    expiry = props.message_expiry_interval
    if expiry is not None or props.subscription_identifiers:
        props = Properties(
            payload_format_indicator=props.payload_format_indicator,
            content_type=props.content_type,
            response_topic=props.response_topic,
            correlation_data=props.correlation_data,
            user_properties=props.user_properties,
        )
    topic = packet.topic
    if h.topics is not None:
        # The dialect's checks saw the client's own form; Roost routes the canonical one.
        topic = h.topics.inbound_topic(topic)
        props = canonical_response_topic(h.topics, props)
    return Message(
        tenant=session.tenant,
        topic=topic,
        payload=packet.payload,
        qos=packet.qos,
        # A dialect may accept the RETAIN flag and ignore it.
        retain=packet.retain and h.profile.keeps_retain,
        properties=props,
        expires_at=None if expiry is None else now + expiry,
        publisher=session.client_id,
        created_at=now,
    )


def check_quota(
    h: ConnectionHandler, quota: TenantUsage, packet: Publish, message: Message
) -> int | None:
    """The tenant's publish rate and retained quota (docs/quotas.md). Over either: 0x97
    Quota exceeded, the message is not delivered; a 3.x QoS 1/2 PUBLISH over the rate
    closes the connection instead, unacknowledged, so that the client sends it again
    later rather than have it acknowledged and lost."""
    if not quota.take_publish_token(h.loop.time()):
        if packet.qos and h.conn.version != ProtocolVersion.V5:
            raise MQTTError("tenant over its publish rate", ReasonCode.MESSAGE_RATE_TOO_HIGH)
        return ReasonCode.QUOTA_EXCEEDED
    if message.retain and not h.ctx.broker.may_retain(message):
        quota.refused_retained += 1
        return ReasonCode.QUOTA_EXCEEDED
    return None


def _publish_notice(h: ConnectionHandler, notice: PublishNotice | None) -> None:
    """The dialect's notice about a refused PUBLISH or SUBSCRIBE, published on the topic it
    names in the client's own form (SmartREST: `s/e`, which the dialect's topic mapping
    makes the publisher's own; Watson gateways: their `notify` topic); at QoS 2, so each
    subscription gets it at the QoS it asked for."""
    session = h.session
    assert session is not None
    if notice is None:
        return
    now = h.ctx.clock()
    message = Message(
        tenant=session.tenant,
        topic=notice.topic if h.topics is None else h.topics.inbound_topic(notice.topic),
        payload=notice.payload,
        qos=2,
        created_at=now,
    )
    h.ctx.broker.publish(message, now)


def _ack_code(refused: int | None, matched: int, v5: bool) -> int:
    if not v5:
        return ReasonCode.SUCCESS
    if refused is not None:
        return refused
    return ReasonCode.SUCCESS if matched else ReasonCode.NO_MATCHING_SUBSCRIBERS


def on_pubrel(h: ConnectionHandler, packet_id: int) -> None:
    session = h.session
    assert session is not None
    if session.remove_awaiting_rel(packet_id):
        h.conn.send_pubcomp(packet_id)
    elif h.conn.version == ProtocolVersion.V5:
        h.conn.send_pubcomp(packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)
    else:
        h.conn.send_pubcomp(packet_id)


def on_puback(h: ConnectionHandler, packet_id: int) -> None:
    """PUBACK or PUBCOMP from the client ends an outbound exchange; send more, if there
    is more (queued, or spilled to the store)."""
    session = h.session
    assert session is not None
    if session.acknowledge(packet_id) is not None and (session.queue or session.spilled):
        h.wake()


def on_pubrec(h: ConnectionHandler, packet: Pubrec) -> None:
    session = h.session
    assert session is not None
    if packet.reason_code >= 0x80:
        # A PUBREC with an error reason code ends the exchange: the slot is free.
        if session.acknowledge(packet.packet_id) is not None:
            h.wake()
        return
    delivery = session.received(packet.packet_id)
    if delivery is None and h.conn.version == ProtocolVersion.V5:
        h.conn.send_pubrel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND)
    else:
        h.conn.send_pubrel(packet.packet_id)


# -- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------


def _subscription_code(h: ConnectionHandler, sub: Subscription) -> int:
    """The SUBACK reason code for one requested subscription (granted QoS when < 0x80)."""
    m = h.profile.mqtt
    v5 = h.conn.version == ProtocolVersion.V5
    topic_filter = sub.topic_filter
    try:
        shared = parse_shared(topic_filter)
    except ValueError:
        return ReasonCode.TOPIC_FILTER_INVALID if v5 else 0x80
    inner = shared.topic_filter if shared else topic_filter
    if not is_valid_topic_filter(inner, m.max_topic_length, m.max_topic_levels):
        return ReasonCode.TOPIC_FILTER_INVALID if v5 else 0x80
    if topic_filter in m.refused_topic_filters or inner in m.refused_topic_filters:
        return ReasonCode.UNSPECIFIED_ERROR
    if shared is not None and not m.shared_subscription_available:
        return ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
    if not m.wildcard_subscription_available and ("+" in inner or "#" in inner):
        return ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED
    session = h.session
    assert session is not None and h.client is not None
    dialect = h.profile.dialect
    rules = h.profile.packet_rules
    if shared is not None and rules is not None:
        refused = rules.check_share_name(h.client, shared.group)
        if refused is not None:
            return refused
    refused = dialect.check_subscribe(h.client, inner, sub.qos, shared is not None)
    if refused is not None:
        return refused
    if topic_filter not in session.subscriptions:
        if len(session.subscriptions) >= m.max_subscriptions_per_session:
            return ReasonCode.QUOTA_EXCEEDED
        quota = h.quota
        if quota is not None and not quota.may_subscribe(len(session.subscriptions)):
            quota.refused_subscriptions += 1
            return ReasonCode.QUOTA_EXCEEDED
    decision = h.ctx.auth.authorize(h.client, Action.SUBSCRIBE, inner, sub.qos, False)
    if not decision.allowed:
        return decision.reason_code or ReasonCode.NOT_AUTHORIZED
    if not dialect.limits.honour_subscription_qos:
        return m.maximum_qos
    return min(sub.qos, m.maximum_qos)


def on_subscribe(h: ConnectionHandler, packet: Subscribe) -> None:
    session = h.session
    assert session is not None
    m = h.profile.mqtt
    sub_ids = packet.properties.subscription_identifiers
    sub_id = sub_ids[0] if sub_ids else None
    if sub_id is not None and not m.subscription_identifier_available:
        # Subscription identifiers when not available -> DISCONNECT 0xA1
        h.conn.fail(
            ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            "subscription identifiers not supported",
        )
        return
    for sub in packet.subscriptions:
        if sub.no_local and sub.topic_filter.startswith("$share/"):
            # No Local on a Shared Subscription is a Protocol Error [MQTT-3.8.3-4]
            h.conn.fail(ReasonCode.PROTOCOL_ERROR, "no local on a shared subscription")
            return
    codes: list[int] = []
    added: list[tuple[SessionSubscription, bool]] = []
    topics = h.topics
    for sub in packet.subscriptions:
        code = _subscription_code(h, sub)
        codes.append(code)
        if code >= 0x80:
            continue
        topic_filter = sub.topic_filter
        if topics is not None:
            topic_filter = topics.inbound_filter(topic_filter)
        granted = (
            sub
            if sub.qos == code and topic_filter == sub.topic_filter
            else Subscription(
                topic_filter=topic_filter,
                qos=code,
                no_local=sub.no_local,
                retain_as_published=sub.retain_as_published,
                retain_handling=sub.retain_handling,
            )
        )
        entry = SessionSubscription(
            topic_filter=topic_filter, options=granted, subscription_identifier=sub_id
        )
        existed = h.ctx.broker.subscribe(session, entry)
        added.append((entry, existed))
    # The SUBACK goes out before any retained message of the new subscriptions.
    h.conn.send_suback(packet.packet_id, tuple(codes))
    notify = h.profile.subscribe_errors
    if notify is not None and max(codes, default=0) >= 0x80:
        assert h.client is not None
        for sub, code in zip(packet.subscriptions, codes, strict=True):
            if code >= 0x80:
                _publish_notice(h, notify.subscribe_refused(h.client, sub.topic_filter, code))
    now = h.ctx.clock()
    for entry, existed in added:
        for delivery in h.ctx.broker.retained_for(session, entry, existed, now):
            if h.client is not None and not _may_receive(h, delivery.message.topic):
                continue
            session.enqueue(delivery)
    h.wake()


def _may_receive(h: ConnectionHandler, topic: str) -> bool:
    """Retained messages are authorized for the receiving client on delivery."""
    assert h.client is not None
    return h.ctx.auth.authorize(h.client, Action.SUBSCRIBE, topic, 0, True).allowed


def on_unsubscribe(h: ConnectionHandler, packet: Unsubscribe) -> None:
    session = h.session
    assert session is not None
    topics = h.topics
    codes = tuple(
        ReasonCode.SUCCESS
        if h.ctx.broker.unsubscribe(
            session, topic_filter if topics is None else topics.inbound_filter(topic_filter)
        )
        else ReasonCode.NO_SUBSCRIPTION_EXISTED
        for topic_filter in packet.topic_filters
    )
    # [MQTT-3.10.4-4]: UNSUBACK even if nothing was unsubscribed.
    h.conn.send_unsuback(packet.packet_id, codes)


__all__ = ["is_dollar_topic", "on_publish", "on_subscribe"]
