"""The broker's domain with a fake clock: wills, expiry, queues, routing. No sockets, no sleeps."""

from __future__ import annotations

from dataclasses import replace

from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.message import Delivery, Message
from roost.core.session import Session, SessionSubscription
from roost.mqtt.packets import Subscription
from roost.store.memory import MemoryStore


def make_broker(**overrides: object) -> tuple[Broker, list[Message]]:
    broker = Broker(replace(MQTTConfig(), **overrides), MemoryStore())  # type: ignore[arg-type]
    published: list[Message] = []

    def capture(message: Message) -> None:
        published.append(message)

    broker.on_internal_publish = capture
    return broker, published


def sub(
    topic_filter: str, qos: int = 2, sub_id: int | None = None, **options: object
) -> SessionSubscription:
    return SessionSubscription(
        topic_filter=topic_filter,
        options=Subscription(topic_filter=topic_filter, qos=qos, **options),  # type: ignore[arg-type]
        subscription_identifier=sub_id,
    )


def will(topic: str = "will/t") -> Message:
    return Message(topic=topic, payload=b"gone", qos=1)


def drain(session: Session, now: float = 0.0) -> list[Delivery]:
    return session.take_ready(window=1000, now=now)


# -- wills ----------------------------------------------------------------------------------


def test_will_without_delay_is_published_on_connection_loss() -> None:
    """[MQTT-3.1.2-8] the will is published when the connection closes without DISCONNECT."""
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.connection_closed(session, will(), 0, 10.0)
    assert [m.topic for m in published] == ["will/t"]


def test_will_delay_waits_for_the_interval() -> None:
    """[MQTT-3.1.3-9] the will is delayed by the Will Delay Interval."""
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.connection_closed(session, will(), 5, 10.0)
    broker.tick(14.9)
    assert published == []
    broker.tick(15.0)
    assert [m.topic for m in published] == ["will/t"]


def test_will_delay_cancelled_when_session_resumes() -> None:
    """[MQTT-3.1.3-9] a client reconnecting before the delay cancels the will."""
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.connection_closed(session, will(), 5, 10.0)
    _, present = broker.open_session("default", "c", False, 100, 12.0)
    assert present
    broker.tick(20.0)
    assert published == []


def test_will_published_when_session_ends_before_delay() -> None:
    """[MQTT-3.1.2-8] the will goes out when the session ends, if that comes first."""
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 2, 0.0)
    broker.connection_closed(session, will(), 5, 10.0)
    broker.tick(11.9)
    assert published == []
    broker.tick(12.0)
    assert [m.topic for m in published] == ["will/t"]
    assert broker.sessions == {}


def test_will_with_zero_session_expiry_published_at_once() -> None:
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.connection_closed(session, will(), 5, 10.0)
    assert [m.topic for m in published] == ["will/t"]


def test_clean_start_on_reconnect_publishes_pending_will() -> None:
    broker, published = make_broker()
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.connection_closed(session, will(), 30, 10.0)
    _, present = broker.open_session("default", "c", True, 100, 11.0)
    assert not present
    assert [m.topic for m in published] == ["will/t"]


# -- sessions -------------------------------------------------------------------------------


def test_session_expires_after_interval() -> None:
    """[MQTT-4.1.0-2] the session is discarded when the Session Expiry Interval passes."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 10, 0.0)
    broker.subscribe(session, sub("a"))
    broker.connection_closed(session, None, 0, 5.0)
    broker.tick(14.9)
    assert ("default", "c") in broker.sessions
    broker.tick(15.0)
    assert broker.sessions == {}
    assert broker.publish(Message(topic="a", qos=1), 16.0) == 0


def test_session_present_on_resume_and_queue_kept() -> None:
    broker, _ = make_broker()
    session, present = broker.open_session("default", "c", True, 100, 0.0)
    assert not present
    broker.subscribe(session, sub("a", qos=1))
    broker.connection_closed(session, None, 0, 1.0)
    broker.publish(Message(topic="a", payload=b"1", qos=1), 2.0)
    resumed, present = broker.open_session("default", "c", False, 100, 3.0)
    assert present and resumed is session
    assert [d.message.payload for d in drain(resumed)] == [b"1"]


def test_tenants_do_not_share_sessions_or_messages() -> None:
    broker, _ = make_broker()
    a, _ = broker.open_session("t1", "same", True, 0, 0.0)
    b, _ = broker.open_session("t2", "same", True, 0, 0.0)
    assert a is not b
    broker.subscribe(a, sub("x"))
    broker.subscribe(b, sub("x"))
    broker.publish(Message(tenant="t1", topic="x", qos=1, payload=b"only-t1"), 1.0)
    assert [d.message.payload for d in drain(a)] == [b"only-t1"]
    assert drain(b) == []


# -- queues ---------------------------------------------------------------------------------


def test_queue_overflow_drops_qos0_first_then_oldest() -> None:
    broker, _ = make_broker(max_queued_messages=3)
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.subscribe(session, sub("a", qos=1))
    broker.connection_closed(session, None, 0, 0.0)
    broker.publish(Message(topic="a", payload=b"q1-1", qos=1), 1.0)
    broker.publish(Message(topic="a", payload=b"q0", qos=0), 1.0)
    broker.publish(Message(topic="a", payload=b"q1-2", qos=1), 1.0)
    broker.publish(Message(topic="a", payload=b"q1-3", qos=1), 1.0)  # drops q0
    broker.publish(Message(topic="a", payload=b"q1-4", qos=1), 1.0)  # drops q1-1
    payloads = [d.message.payload for d in drain(session)]
    assert payloads == [b"q1-2", b"q1-3", b"q1-4"]
    assert session.stats.dropped_overflow == 2


def test_queue_overflow_drop_newest_refuses_new_messages() -> None:
    broker, _ = make_broker(max_queued_messages=2, queue_overflow="drop_newest")
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.subscribe(session, sub("a", qos=1))
    broker.connection_closed(session, None, 0, 0.0)
    for i in range(4):
        broker.publish(Message(topic="a", payload=b"%d" % i, qos=1), 1.0)
    assert [d.message.payload for d in drain(session)] == [b"0", b"1"]
    assert session.stats.dropped_overflow == 2
    assert broker.stats.messages_dropped == 2


def test_expired_messages_are_not_delivered_from_the_queue() -> None:
    """[MQTT-3.3.2-5] a message whose expiry passed is not delivered."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 100, 0.0)
    broker.subscribe(session, sub("a", qos=1))
    broker.connection_closed(session, None, 0, 0.0)
    broker.publish(Message(topic="a", payload=b"short", qos=1, expires_at=5.0), 1.0)
    broker.publish(Message(topic="a", payload=b"long", qos=1, expires_at=50.0), 1.0)
    assert [d.message.payload for d in drain(session, now=10.0)] == [b"long"]
    assert session.stats.dropped_expired == 1


def test_remaining_expiry_is_rounded_up() -> None:
    """[MQTT-3.3.2-6] the forwarded interval is the received one minus the time waited."""
    message = Message(topic="a", expires_at=100.0)
    assert message.remaining_expiry(90.0) == 10
    assert message.remaining_expiry(90.5) == 10
    assert message.remaining_expiry(100.0) == 0


def test_inflight_window_and_packet_ids() -> None:
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a", qos=1))
    for i in range(3):
        broker.publish(Message(topic="a", payload=b"%d" % i, qos=1), 1.0)
    first = session.take_ready(window=2, now=1.0)
    assert [d.packet_id for d in first] == [1, 2]
    assert session.take_ready(window=2, now=1.0) == []
    assert session.acknowledge(1) is not None
    (third,) = session.take_ready(window=2, now=1.0)
    assert third.packet_id == 3
    # Resend on resume marks DUP [MQTT-3.3.1-1]
    assert all(d.dup for d in session.resend_list())


# -- routing --------------------------------------------------------------------------------


def test_overlapping_subscriptions_give_one_delivery_with_all_identifiers() -> None:
    """[MQTT-3.3.4-2] one message per session at the highest QoS; [MQTT-3.3.4-3] all ids."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a/+", qos=1, sub_id=2))
    broker.subscribe(session, sub("a/#", qos=2, sub_id=3))
    broker.publish(Message(topic="a/b", qos=2), 1.0)
    (delivery,) = drain(session)
    assert delivery.qos == 2
    assert sorted(delivery.subscription_identifiers) == [2, 3]


def test_no_local_skips_the_publisher() -> None:
    """[MQTT-3.8.3-3] No Local: not sent back to the publishing client."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a", no_local=True))
    broker.publish(Message(topic="a", publisher="c"), 1.0)
    assert drain(session) == []
    broker.publish(Message(topic="a", publisher="other"), 1.0)
    assert len(drain(session)) == 1


def test_shared_subscription_round_robin() -> None:
    """Each message goes to one member of a $share group; round robin by default."""
    broker, _ = make_broker()
    members = [broker.open_session("default", f"m{i}", True, 0, 0.0)[0] for i in range(3)]
    for member in members:
        broker.subscribe(member, sub("$share/g/jobs", qos=1))
    for i in range(9):
        broker.publish(Message(topic="jobs", payload=b"%d" % i, qos=1), 1.0)
    counts = [len(drain(m)) for m in members]
    assert counts == [3, 3, 3]


def test_shared_subscription_prefers_connected_members() -> None:
    broker, _ = make_broker()
    online, _ = broker.open_session("default", "on", True, 0, 0.0)
    offline, _ = broker.open_session("default", "off", True, 100, 0.0)
    for member in (online, offline):
        broker.subscribe(member, sub("$share/g/jobs", qos=1))
    broker.connection_closed(offline, None, 0, 0.5)
    for _ in range(4):
        broker.publish(Message(topic="jobs", qos=1), 1.0)
    assert len(drain(online)) == 4
    assert drain(offline) == []


def test_retain_handling() -> None:
    """[MQTT-3.3.1-9] handling 0 sends, [MQTT-3.3.1-10] 1 only if new, [MQTT-3.3.1-11] 2 never."""
    broker, _ = make_broker()
    broker.publish(Message(topic="r", payload=b"kept", retain=True, qos=1), 0.0)
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    for handling, existed, expected in ((0, True, 1), (1, False, 1), (1, True, 0), (2, False, 0)):
        entry = sub("r", qos=1, retain_handling=handling)
        got = broker.retained_for(session, entry, existed, 1.0)
        assert len(got) == expected, (handling, existed)
        assert all(d.retain for d in got)  # [MQTT-3.3.1-8]


def test_retained_cleared_by_empty_payload_and_not_sent_to_shared() -> None:
    broker, _ = make_broker()
    broker.publish(Message(topic="r", payload=b"v", retain=True), 0.0)
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    assert broker.retained_for(session, sub("$share/g/r"), False, 1.0) == []
    broker.publish(Message(topic="r", payload=b"", retain=True), 1.0)
    assert broker.retained_for(session, sub("r"), False, 1.0) == []
    assert broker.retained_count() == 0


def test_unsubscribe_stops_delivery() -> None:
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a"))
    assert broker.unsubscribe(session, "a")
    assert not broker.unsubscribe(session, "a")
    assert broker.publish(Message(topic="a"), 1.0) == 0
