"""The router keeps what matches each topic until the subscriptions change: every change
between two messages on the same topic must show in the second one's routing."""

from __future__ import annotations

from tests.core.test_broker import drain, make_broker, sub

from roost.core import router as router_module
from roost.core.message import Message


def test_a_subscription_made_after_a_message_receives_the_next() -> None:
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    assert broker.publish(Message(topic="a/b", qos=1), 1.0) == 0
    broker.subscribe(session, sub("a/+", qos=1))
    assert broker.publish(Message(topic="a/b", qos=1), 2.0) == 1
    assert len(drain(session)) == 1


def test_unsubscribe_between_messages_stops_delivery() -> None:
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a/#"))
    assert broker.publish(Message(topic="a/b"), 1.0) == 1
    broker.unsubscribe(session, "a/#")
    assert broker.publish(Message(topic="a/b"), 2.0) == 0
    assert len(drain(session)) == 1


def test_a_replaced_subscription_gives_its_new_qos_and_identifier() -> None:
    """[MQTT-3.8.4-3] the new subscription replaces the old one, also for routing."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a", qos=0, sub_id=1))
    broker.publish(Message(topic="a", qos=2), 1.0)
    broker.subscribe(session, sub("a", qos=2, sub_id=7))
    broker.publish(Message(topic="a", qos=2), 2.0)
    first, second = drain(session)
    assert (first.qos, first.subscription_identifiers) == (0, (1,))
    assert (second.qos, second.subscription_identifiers) == (2, (7,))


def test_merged_identifiers_do_not_pile_up_over_messages() -> None:
    """[MQTT-3.3.4-3] every matching identifier once per message, however many messages."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("a/+", qos=1, sub_id=2))
    broker.subscribe(session, sub("a/#", qos=2, sub_id=3))
    for i in range(3):
        broker.publish(Message(topic="a/b", qos=2), float(i))
    deliveries = drain(session)
    assert [sorted(d.subscription_identifiers) for d in deliveries] == [[2, 3]] * 3
    assert [d.qos for d in deliveries] == [2, 2, 2]


def test_no_local_holds_for_each_publisher_on_the_same_topic() -> None:
    """[MQTT-3.8.3-3] No Local is decided per message, by its publisher."""
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    other, _ = broker.open_session("default", "o", True, 0, 0.0)
    broker.subscribe(session, sub("a", qos=1, no_local=True))
    broker.subscribe(session, sub("+", qos=0))
    broker.subscribe(other, sub("a", qos=1))
    for publisher in ("c", "o", "c", "o"):
        broker.publish(Message(topic="a", qos=1, publisher=publisher), 1.0)
    # Its own messages come through "+" alone (QoS 0), the others' merged at QoS 1.
    assert [d.qos for d in drain(session)] == [0, 1, 0, 1]
    assert len(drain(other)) == 4


def test_shared_group_rotates_and_follows_members_joining_and_leaving() -> None:
    broker, _ = make_broker()
    a, b, c = (broker.open_session("default", n, True, 0, 0.0)[0] for n in "abc")
    broker.subscribe(a, sub("$share/g/jobs", qos=1))
    broker.subscribe(b, sub("$share/g/jobs", qos=1))
    for _ in range(4):
        broker.publish(Message(topic="jobs", qos=1), 1.0)
    assert (len(drain(a)), len(drain(b))) == (2, 2)
    broker.subscribe(c, sub("$share/g/jobs", qos=1))
    for _ in range(6):
        broker.publish(Message(topic="jobs", qos=1), 2.0)
    assert (len(drain(a)), len(drain(b)), len(drain(c))) == (2, 2, 2)
    broker.unsubscribe(a, "$share/g/jobs")
    broker.unsubscribe(b, "$share/g/jobs")
    broker.unsubscribe(c, "$share/g/jobs")
    assert broker.publish(Message(topic="jobs", qos=1), 3.0) == 0


def test_a_shared_member_going_offline_is_passed_over() -> None:
    broker, _ = make_broker()
    a, _ = broker.open_session("default", "a", True, 100, 0.0)
    b, _ = broker.open_session("default", "b", True, 0, 0.0)
    broker.subscribe(a, sub("$share/g/jobs", qos=1))
    broker.subscribe(b, sub("$share/g/jobs", qos=1))
    broker.publish(Message(topic="jobs", qos=1), 1.0)
    broker.publish(Message(topic="jobs", qos=1), 1.0)
    broker.connection_closed(a, None, 0, 1.5)
    for _ in range(3):
        broker.publish(Message(topic="jobs", qos=1), 2.0)
    assert (len(drain(a)), len(drain(b))) == (1, 4)


def test_a_new_session_of_the_same_client_receives_after_clean_start() -> None:
    broker, _ = make_broker()
    old, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(old, sub("a"))
    broker.publish(Message(topic="a"), 1.0)
    new, present = broker.open_session("default", "c", True, 0, 2.0)
    assert not present
    assert broker.publish(Message(topic="a"), 3.0) == 0
    broker.subscribe(new, sub("a"))
    assert broker.publish(Message(topic="a"), 4.0) == 1
    assert len(drain(new)) == 1


def test_routing_stays_right_past_the_number_of_topics_kept() -> None:
    broker, _ = make_broker()
    session, _ = broker.open_session("default", "c", True, 0, 0.0)
    broker.subscribe(session, sub("t/+"))
    topics = [f"t/{i}" for i in range(router_module.MAX_ROUTES + 5)]
    assert sum(broker.publish(Message(topic=topic), 1.0) for topic in topics) == len(topics)
    assert len(broker.routers["default"]._routes) <= router_module.MAX_ROUTES  # bounded
    broker.subscribe(session, sub("t/3", qos=1, sub_id=9))
    session.clear_messages()
    assert broker.publish(Message(topic="t/3", qos=1), 2.0) == 1
    (delivery,) = drain(session)
    assert (delivery.qos, delivery.subscription_identifiers) == (1, (9,))


def test_a_group_not_served_here_keeps_its_rotation_for_forwarded_messages() -> None:
    """A message forwarded by another worker picks members only for the `$share` groups it
    is served here for (`serve_groups`); the other groups' rotation is left as it was, so
    their members still take turns over the messages they do get."""
    broker, _ = make_broker()
    a1, a2, b1, b2 = (
        broker.open_session("default", n, True, 0, 0.0)[0] for n in ("a1", "a2", "b1", "b2")
    )
    for session, group in ((a1, "a"), (a2, "a"), (b1, "b"), (b2, "b")):
        broker.subscribe(session, sub(f"$share/{group}/jobs", qos=1))
    only_a = frozenset({"$share/a/jobs"})
    for forwarded in (False, True, False, True, False, False):
        if forwarded:
            broker.publish(Message(topic="jobs", qos=1), 1.0, forward=False, serve_groups=only_a)
        else:
            broker.publish(Message(topic="jobs", qos=1), 1.0)
    # Group b was served for the four local messages only, alternately.
    assert (len(drain(b1)), len(drain(b2))) == (2, 2)
    # Group a for all six.
    assert (len(drain(a1)), len(drain(a2))) == (3, 3)
