"""Idle sessions share one empty queue and one empty set of packet ids until they need
their own: nothing queued or awaited in one session ever shows in another. A clean
session costs the store nothing. The queue limits come from the broker's configuration
as one record that every session the broker makes shares."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.message import Delivery, Message
from roost.core.session import QueueLimits, Session
from roost.core.store import StoredSession, StoreSnapshot
from roost.empty import EmptyDeque
from roost.store.memory import MemoryStore
from roost.store.sqlite import SqliteStore


def session(client_id: str) -> Session:
    return Session("t", client_id, max_queued_messages=100, max_queued_bytes=1 << 20)


def delivery(topic: str, qos: int = 1) -> Delivery:
    return Delivery(message=Message(topic=topic, payload=b"x", qos=qos), qos=qos, retain=False)


def test_new_sessions_share_the_empty_queue_until_one_enqueues() -> None:
    a, b = session("a"), session("b")
    assert a.queue is b.queue and len(a.queue) == 0
    assert a.enqueue(delivery("t/1"))
    assert a.queue is not b.queue
    assert [d.message.topic for d in a.queue] == ["t/1"]
    assert len(b.queue) == 0 and session("c").queue is b.queue
    assert [d.message.topic for d in a.take_ready(10, 0.0)] == ["t/1"]
    assert b.take_ready(10, 0.0) == []


def test_packet_ids_awaiting_pubrel_are_per_session() -> None:
    a, b = session("a"), session("b")
    assert a.awaiting_rel is b.awaiting_rel
    a.add_awaiting_rel(7)
    assert 7 in a.awaiting_rel and 7 not in b.awaiting_rel
    assert not b.remove_awaiting_rel(7)
    assert a.remove_awaiting_rel(7)
    b.clear_messages()
    assert len(session("c").awaiting_rel) == 0


def test_the_shared_empty_containers_refuse_additions() -> None:
    """A path that adds without taking its own first fails loudly, never shares."""
    s = session("a")
    with pytest.raises(TypeError):
        s.queue.append(delivery("t"))
    with pytest.raises(TypeError):
        s.queue.extend([delivery("t")])
    with pytest.raises(TypeError):
        s.awaiting_rel.add(1)
    with pytest.raises(TypeError):
        s.awaiting_rel.update({1})
    ids = s.awaiting_rel
    with pytest.raises(TypeError):
        ids |= {1}
    with pytest.raises(TypeError):
        ids ^= {1}
    with pytest.raises(TypeError):
        ids.symmetric_difference_update({1})
    assert len(session("b").queue) == 0 and len(session("b").awaiting_rel) == 0


def test_a_clean_session_writes_nothing_to_the_store(tmp_path: Path) -> None:
    """A session never saved (clean, expiry 0) has no rows: opening and ending it queues no
    store change; a persistent one is saved, and deleted when it ends."""
    store = SqliteStore(tmp_path)
    try:
        store.load()
        broker = Broker(MQTTConfig(), store, journal=store)
        clean, _ = broker.open_session("t", "clean", True, 0, 0.0)
        broker.connection_closed(clean, None, 0, 1.0)
        assert broker.get_session("t", "clean") is None
        assert store.write_seq == 0
        broker.open_session("t", "kept", False, 60, 2.0)
        saved = store.write_seq
        assert saved > 0
        broker.open_session("t", "kept", True, 0, 3.0)  # clean start ends the stored one
        assert store.write_seq > saved
    finally:
        store.close()


def test_sessions_with_the_same_limits_share_one_record() -> None:
    """The queue limits come from the configuration: one record for all the sessions that
    have the same, not a copy in each; different limits stay apart."""
    broker = Broker(MQTTConfig(max_queued_messages=100, max_queued_bytes=1 << 20), MemoryStore())
    a, b = (broker.open_session("t", c, False, 60, 1.0)[0] for c in ("a", "b"))
    assert a.limits is b.limits
    assert (a.max_queued_messages, a.max_queued_bytes) == (100, 1 << 20)
    other = Session("t", "c", max_queued_messages=5, max_queued_bytes=1 << 20)
    assert other.limits is not a.limits and other.max_queued_messages == 5
    assert (a.tenant, a.client_id) == a.key == ("t", "a")


def test_idle_sessions_share_empty_subscriptions_inflight_and_counters() -> None:
    """Until a session subscribes, sends a QoS 1/2 message or drops one, it shares the
    empty dicts and the zero counters; what one session adds never shows in another, and
    the shared ones refuse additions."""
    a, b = session("a"), session("b")
    assert a.subscriptions is b.subscriptions and a.inflight is b.inflight
    assert a.stats is b.stats
    with pytest.raises(TypeError):
        a.subscriptions["t"] = None  # type: ignore[assignment]
    with pytest.raises(TypeError):
        a.inflight.setdefault(1, delivery("t"))
    with pytest.raises(TypeError):
        a.stats.dropped_overflow += 1
    assert a.enqueue(delivery("t/1"))
    assert [d.message.topic for d in a.take_ready(10, 0.0)] == ["t/1"]
    assert list(a.inflight) == [1] and len(b.inflight) == 0
    full = Session("t", "full", max_queued_messages=0, max_queued_bytes=1 << 20)
    assert not full.enqueue(delivery("t/2"))
    assert full.stats.dropped_overflow == 1 and b.stats.dropped_overflow == 0


def test_every_session_of_a_broker_shares_its_one_limits_record() -> None:
    config = MQTTConfig(max_queued_messages=7, max_queued_bytes=4096, queue_overflow="drop_newest")
    broker = Broker(config, MemoryStore())
    assert broker.queue_limits == QueueLimits(7, 4096, "drop_newest", config.max_queued_in_memory)
    opened, _ = broker.open_session("t", "opened", False, 60, 1.0)
    stored = StoredSession(
        tenant="t", client_id="restored", expiry_interval=60, disconnected_at=1.0
    )
    broker.restore(StoreSnapshot(sessions=[stored]), 2.0)
    restored = broker.get_session("t", "restored")
    adopted = broker.adopt_session(("t", "adopted"), 60, None, False, [], 2.0)
    assert restored is not None
    assert opened.limits is restored.limits is adopted.limits is broker.queue_limits
    assert (opened.max_queued_messages, opened.queue_overflow) == (7, "drop_newest")
    other = Broker(MQTTConfig(max_queued_messages=8), MemoryStore())
    assert other.open_session("t", "o", False, 60, 1.0)[0].limits.max_queued_messages == 8


def test_a_session_made_outside_a_broker_has_its_own_record() -> None:
    """An internal session or a test gives the values; without limits or values, refused."""
    session = Session("t", "s", max_queued_messages=5, max_queued_bytes=100)
    assert session.limits == QueueLimits(5, 100)
    shared = QueueLimits(5, 100)
    assert Session("t", "a", shared).limits is Session("t", "b", shared).limits is shared
    with pytest.raises(TypeError):
        Session("t", "none")


def test_the_shared_empty_deque_refuses_every_addition() -> None:
    shared = EmptyDeque()
    item = Delivery(message=Message(topic="t", payload=b"x", qos=1), qos=1, retain=False)
    for add in (
        lambda: shared.append(item),
        lambda: shared.appendleft(item),
        lambda: shared.extend([item]),
        lambda: shared.extendleft([item]),
        lambda: shared.insert(0, item),
    ):
        with pytest.raises(TypeError):
            add()
    queue: deque[Delivery] = shared
    with pytest.raises(TypeError):
        queue += [item]
    assert len(shared) == 0
    a = Session("t", "a", max_queued_messages=10, max_queued_bytes=1000)
    b = Session("t", "b", max_queued_messages=10, max_queued_bytes=1000)
    assert isinstance(a.queue, EmptyDeque) and a.queue is b.queue
