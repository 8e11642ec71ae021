"""The queue limits come from the broker's configuration as one record: every session the
broker makes (opened by a client, restored from the store, adopted from another worker)
shares it, rather than four fields or a record of its own each."""

from __future__ import annotations

import pytest

from roost.config import MQTTConfig
from roost.core.broker import Broker
from roost.core.session import QueueLimits, Session
from roost.core.store import StoredSession, StoreSnapshot
from roost.store.memory import MemoryStore


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
