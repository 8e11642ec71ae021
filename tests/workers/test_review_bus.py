"""The local bus behind deep subscriber queues (several subscribers that take nothing)
and retained messages on a restarted worker; docs/workers.md."""

from __future__ import annotations

from pathlib import Path

from roost.cluster.codec import HEADER, Kind, Reader, Writer
from roost.cluster.handover import HandOver, read_hand_over, write_hand_over
from roost.cluster.link import DEEP_PATIENCE
from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.message import Message
from roost.core.session import SessionSubscription
from roost.mqtt.packets import Subscription
from roost.store.memory import MemoryStore
from tests.workers.conftest import Workers


def test_two_subscribers_that_take_nothing_do_not_hold_the_others_back(tmp_path: Path) -> None:
    """Two subscribers on worker 1 never acknowledge, on topics published in turn: each is
    given up on after DEEP_PATIENCE without progress, and both stay given up on, so the
    link does not stop for one, then the other, message after message; a third session on
    worker 1 still receives what worker 0 forwards [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        first = broker.connect_on(1)
        second = broker.connect_on(1)
        other = broker.connect_on(1)
        pub = broker.connect_on(0)
        for client, topic in ((first, "stuck/a"), (second, "stuck/b")):
            client.paho.manual_ack_set(True)
            client.subscribe(topic, 1)
            broker.synced(client, pub)
        other.subscribe("other/t", 1)
        broker.synced(other, pub)
        for i in range(400):
            pub.publish("stuck/a", i.to_bytes(4, "big"), 1)
            pub.publish("stuck/b", i.to_bytes(4, "big"), 1)
        pub.publish("other/t", b"still flowing", 1)
        # Once per subscriber, not once per message (each hold lasts DEEP_PATIENCE).
        assert other.expect_message(timeout=5 * DEEP_PATIENCE).payload == b"still flowing"
        broker.wait_log(r"worker 1: \S+ does not take its messages", 2)
        for client in (first, second, other, pub):
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_a_deep_queue_fed_by_local_publishers_does_not_hold_the_link(tmp_path: Path) -> None:
    """A subscriber on worker 1 takes nothing of what a publisher on worker 1 sends it (its
    queue grows deep): the link from worker 0 is not held for it, since the link adds
    nothing to that queue. A message from worker 0 reaches another session on worker 1
    without worker 1 first waiting DEEP_PATIENCE and giving up on the subscriber (which it
    would log before going on) [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        other, pub = broker.across("other/t")
        stuck = broker.connect_on(1)
        local = broker.connect_on(1)
        stuck.paho.manual_ack_set(True)
        stuck.subscribe("local/t", 1)
        for i in range(400):  # past half its queue limit: deep
            local.publish("local/t", i.to_bytes(4, "big"), 1)
        pub.publish("other/t", b"not held", 1)
        assert other.expect_message().payload == b"not held"
        assert "does not take its messages" not in broker.text()
        for client in (stuck, local, other, pub):
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_a_hand_over_keeps_every_subscription_option() -> None:
    """The subscriptions a hand-over carries come back with their QoS, No Local, Retain As
    Published, Retain Handling [MQTT-3.8.3-1] and Subscription Identifier, as the
    Subscription Options byte of a SUBSCRIBE carries them."""
    subscriptions = [
        SessionSubscription(
            topic_filter=f"{n}/#",
            options=Subscription(
                topic_filter=f"{n}/#",
                qos=n % 3,
                no_local=bool(n & 1),
                retain_as_published=bool(n & 2),
                retain_handling=n % 3,
            ),
            subscription_identifier=n or None,
        )
        for n in range(6)
    ]
    w = Writer(Kind.CLAIMED)
    write_hand_over(w, HandOver(300, "device-1", True, subscriptions=subscriptions))
    back = read_hand_over(Reader(w.frame()[HEADER.size :]))
    assert back.subscriptions == subscriptions
    assert (back.expiry_interval, back.device_id, back.subscription_qos) == (300, "device-1", True)


def test_a_retained_set_from_another_worker_keeps_a_newer_retained_message() -> None:
    """A restarted worker takes another worker's retained set (Broker.set_retained) after a
    newer retained message of the same topic, forwarded by a third, has arrived: the newer
    one stays the retained message [MQTT-3.3.1-5]; an older one held is replaced."""
    broker = Broker(MQTTConfig(), MemoryStore())
    newer = Message(topic="r/t", payload=b"newer", retain=True, created_at=20.0)
    broker.publish(newer, 20.0, forward=False)
    broker.set_retained(Message(topic="r/t", payload=b"older", retain=True, created_at=10.0))
    broker.set_retained(Message(topic="r/u", payload=b"only", retain=True, created_at=10.0))
    index = broker.retained[newer.tenant]
    assert index.get("r/t") is newer
    assert index.get("r/u") is not None
    latest = Message(topic="r/u", payload=b"latest", retain=True, created_at=30.0)
    broker.set_retained(latest)
    assert index.get("r/u") is latest
