"""The shared empty queue lives with the other shared empties (roost.empty): every way of
adding to it raises, and sessions that have queued nothing all hold the same one."""

from __future__ import annotations

from collections import deque

import pytest

from roost.core.message import Delivery, Message
from roost.core.session import Session
from roost.empty import EmptyDeque


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
