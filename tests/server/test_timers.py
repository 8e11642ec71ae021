"""The timer wheel of the connections' deadlines (server/timers.py), on a manual clock:
[MQTT-3.1.2-24] needs the close after one and a half times the Keep Alive, never before
it, and at most one tick after it."""

from __future__ import annotations

import random
from collections.abc import Callable

from roost.server.timers import TICK, TimerWheel


class ManualLoop:
    """The two things the wheel asks of its event loop: the time, and one timer."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.timer: tuple[float, Callable[[], None]] | None = None

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> ManualLoop.Handle:
        self.timer = (when, callback)
        return ManualLoop.Handle(self)

    class Handle:
        def __init__(self, loop: ManualLoop) -> None:
            self.loop = loop

        def cancel(self) -> None:
            self.loop.timer = None

    def advance_to(self, t: float) -> None:
        """Run the timer each time it is due, up to time t."""
        while self.timer is not None and self.timer[0] <= t:
            when, callback = self.timer
            self.timer = None
            self.now = max(self.now, when)
            callback()
        self.now = t


class Deadline:
    """Expires at `deadline`; records when it was told."""

    def __init__(self, loop: ManualLoop, wheel: TimerWheel, deadline: float) -> None:
        self.loop, self.wheel, self.deadline = loop, wheel, deadline
        self.expired_at: list[float] = []
        self.slot = wheel.add(self, deadline)

    def expire(self) -> None:
        self.expired_at.append(self.loop.now)


def wheel_on(loop: ManualLoop) -> TimerWheel:
    return TimerWheel(loop=loop)  # type: ignore[arg-type]


def test_deadline_is_kept_to_within_one_tick_never_early() -> None:
    """Whatever the deadline, expire() comes at or after it and less than a tick later."""
    loop = ManualLoop(1000.25)
    wheel = wheel_on(loop)
    rng = random.Random(24)
    items = [Deadline(loop, wheel, loop.now + rng.uniform(0.0, 90.0)) for _ in range(500)]
    items.append(Deadline(loop, wheel, 1010.0))  # exactly on a tick
    t = loop.now
    while t < 1100.0:
        t += rng.uniform(0.05, 0.4)
        loop.advance_to(t)
    for item in items:
        assert len(item.expired_at) == 1
        assert item.deadline <= item.expired_at[0] < item.deadline + TICK


def test_one_and_a_half_keep_alive_closes_at_the_next_tick() -> None:
    """[MQTT-3.1.2-24] Keep Alive 10 s, last packet at 1000.3: due at 1015.3, expired by
    the tick at 1016.0 and not at 1015.0."""
    loop = ManualLoop(1000.3)
    wheel = wheel_on(loop)
    item = Deadline(loop, wheel, 1000.3 + 1.5 * 10)
    loop.advance_to(1015.99)
    assert item.expired_at == []
    loop.advance_to(1016.0)
    assert item.expired_at == [1016.0]


def test_removed_item_never_expires_and_the_timer_stops_when_empty() -> None:
    loop = ManualLoop()
    wheel = wheel_on(loop)
    item = Deadline(loop, wheel, 1003.5)
    assert loop.timer is not None
    wheel.remove(item, item.slot)
    assert len(wheel) == 0
    loop.advance_to(1010.0)
    assert item.expired_at == []
    assert loop.timer is None  # nothing filed: no timer runs
    later = Deadline(loop, wheel, 1012.2)  # filing again starts it
    loop.advance_to(1013.0)
    assert later.expired_at == [1013.0]


def test_an_item_filing_itself_again_goes_to_a_later_slot() -> None:
    """A connection whose keep alive moved (a packet arrived) files its new deadline."""
    loop = ManualLoop()
    wheel = wheel_on(loop)
    seen: list[float] = []

    class Moving:
        def __init__(self) -> None:
            self.deadlines = [1002.0, 1005.5]

        def expire(self) -> None:
            seen.append(loop.now)
            self.deadlines.pop(0)
            if self.deadlines:
                wheel.add(self, self.deadlines[0])

    wheel.add(Moving(), 1002.0)
    loop.advance_to(1020.0)
    assert seen == [1002.0, 1006.0]


def test_a_failing_item_does_not_stop_the_others() -> None:
    loop = ManualLoop()
    wheel = wheel_on(loop)

    class Failing:
        def expire(self) -> None:
            raise RuntimeError("boom")

    wheel.add(Failing(), 1001.0)
    a = Deadline(loop, wheel, 1001.0)
    b = Deadline(loop, wheel, 1004.0)
    loop.advance_to(1005.0)
    assert a.expired_at == [1001.0]
    assert b.expired_at == [1004.0]


def test_a_late_tick_runs_every_slot_it_missed() -> None:
    """The loop was busy for several ticks: everything due meanwhile expires at once."""
    loop = ManualLoop()
    wheel = wheel_on(loop)
    items = [Deadline(loop, wheel, 1000.5 + i) for i in range(5)]
    assert loop.timer is not None
    _, callback = loop.timer
    loop.timer = None
    loop.now = 1007.2  # the timer runs late
    callback()
    assert [i.expired_at for i in items] == [[1007.2]] * 5


def test_entries_of_one_slot_share_its_index_object() -> None:
    """Thousands of connections sit in a few slots: each is handed the slot's own index
    object (no int of its own per connection), and removing one by it leaves the others."""
    loop = ManualLoop()
    wheel = wheel_on(loop)
    a, b = (Deadline(loop, wheel, 5_000.2), Deadline(loop, wheel, 5_000.7))
    assert a.slot == b.slot and a.slot is b.slot
    wheel.remove(a, a.slot)
    loop.advance_to(5_002.0)
    assert a.expired_at == [] and len(b.expired_at) == 1
