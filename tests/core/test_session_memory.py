"""Idle sessions share one empty queue and one empty set of packet ids until they need
their own: nothing queued or awaited in one session ever shows in another."""

from __future__ import annotations

import pytest

from roost.core.message import Delivery, Message
from roost.core.session import Session


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
    assert len(session("b").queue) == 0 and len(session("b").awaiting_rel) == 0
