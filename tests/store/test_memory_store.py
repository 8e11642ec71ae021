"""The memory store mirrors what the broker reports; a broker rebuilt from it has the same
persistent sessions, subscriptions and retained messages."""

from __future__ import annotations

from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.message import Message
from roost.core.session import SessionSubscription
from roost.mqtt.packets import Subscription
from roost.store.memory import MemoryStore


def _sub(topic_filter: str, qos: int = 1) -> SessionSubscription:
    return SessionSubscription(
        topic_filter=topic_filter, options=Subscription(topic_filter=topic_filter, qos=qos)
    )


def test_rebuilt_broker_has_sessions_subscriptions_and_retained() -> None:
    store = MemoryStore()
    broker = Broker(MQTTConfig(), store)
    persistent, _ = broker.open_session(
        "default", "keep", clean_start=True, expiry_interval=3600, now=100.0
    )
    broker.subscribe(persistent, _sub("a/+"))
    transient, _ = broker.open_session(
        "default", "gone", clean_start=True, expiry_interval=0, now=100.0
    )
    broker.subscribe(transient, _sub("b/#"))
    broker.publish(Message(topic="r/1", payload=b"x", retain=True), 100.0)
    broker.publish(Message(topic="r/2", payload=b"y", retain=True), 100.0)
    broker.publish(Message(topic="r/2", payload=b"", retain=True), 100.0)  # cleared
    broker.connection_closed(persistent, None, 0, 101.0)
    broker.connection_closed(transient, None, 0, 101.0)

    rebuilt = Broker(MQTTConfig(), store)
    rebuilt.restore(store.load(), now=200.0)
    assert set(rebuilt.sessions) == {("default", "keep")}
    assert list(rebuilt.sessions[("default", "keep")].subscriptions) == ["a/+"]
    assert [t for t, _ in rebuilt.retained["default"].items()] == ["r/1"]
    # The subscription routes again: a message to a/x is queued for the offline session.
    assert rebuilt.publish(Message(topic="a/x", payload=b"m", qos=1), 201.0) == 1


def test_restore_drops_sessions_that_expired_while_down() -> None:
    store = MemoryStore()
    broker = Broker(MQTTConfig(), store)
    session, _ = broker.open_session(
        "default", "short", clean_start=True, expiry_interval=10, now=0.0
    )
    broker.connection_closed(session, None, 0, 5.0)
    rebuilt = Broker(MQTTConfig(), store)
    rebuilt.restore(store.load(), now=16.0)
    assert rebuilt.sessions == {}
    assert store.sessions == {}
