"""The connections' deadlines (CONNECT in time, keep alive) on one timer: a wheel of slots.

A connection with a deadline sits in the slot of the first tick at or after it; one event
loop timer runs each tick and calls `expire()` on everything in the slots that are due.
A connection never expires before its deadline, and at most one tick (plus the loop's
own latency) after it. Moving a deadline (keep alive after each packet) costs nothing:
the connection looks at its real deadline when its slot comes up and files itself again.

Against a timer handle per connection this is smaller (a dict entry instead of a handle,
a callback and the loop's timer) and cheaper to arm and cancel (no heap operations).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

log = logging.getLogger(__name__)

# Seconds between two runs of the wheel: deadlines are kept to within one tick.
TICK = 1.0


class Expiring(Protocol):
    """What the wheel holds: told when its slot's tick has come."""

    def expire(self) -> None: ...


class _Slot(dict[Expiring, None]):
    """What is due at one tick, as the keys of a dict (at thousands of entries it takes
    about half the memory of a set), and the slot's index: the one int object handed to
    everything filed there, not one per `add` (32 bytes each above 256)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


class TimerWheel:
    """Slots of `tick` seconds on an event loop's clock (the running loop's unless one is
    given); the loop timer runs only while some slot is occupied."""

    __slots__ = ("_done", "_handle", "_loop", "_slots", "tick")

    def __init__(self, tick: float = TICK, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.tick = tick
        # Slot index (deadline / tick, rounded up) -> what is due then.
        self._slots: dict[int, _Slot] = {}
        # The last slot index that has been run (everything up to it is gone).
        self._done = 0
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(slot) for slot in self._slots.values())

    def add(self, item: Expiring, deadline: float) -> int:
        """File `item` to expire at the first tick at or after `deadline` (loop time);
        returns its slot, for `remove`."""
        if self._handle is None:
            self._start()
        index = max(math.ceil(deadline / self.tick), self._done + 1)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = _Slot(index)
        slot[item] = None
        return slot.index

    def remove(self, item: Expiring, index: int) -> None:
        """Take `item` out of slot `index` (no-op when it is not there)."""
        slot = self._slots.get(index)
        if slot is not None:
            slot.pop(item, None)
            if not slot:
                del self._slots[index]

    def close(self) -> None:
        """Stop the loop timer; what is filed stays (a later `add` starts it again)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _start(self) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # Slots before now have nothing in them: start the count at the current tick.
        self._done = max(self._done, math.floor(loop.time() / self.tick))
        self._schedule()

    def _schedule(self) -> None:
        assert self._loop is not None
        self._handle = self._loop.call_at((self._done + 1) * self.tick, self._run)

    def _run(self) -> None:
        # `_handle` stays set while this runs: an `add` from `expire` does not restart.
        assert self._loop is not None
        current = math.floor(self._loop.time() / self.tick)
        slots = self._slots
        try:
            while self._done < current:
                # Advanced first: whatever files itself again lands in a later slot.
                self._done += 1
                slot = slots.pop(self._done, None)
                if slot is not None:
                    for item in slot:
                        try:
                            item.expire()
                        except Exception:
                            log.exception("timer of %r failed", item)
        finally:
            if slots:
                self._schedule()
            else:
                self._handle = None
