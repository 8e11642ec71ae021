"""Read-only empty containers shared by the many connections and sessions that hold
nothing yet: a set of packet identifiers (an empty set takes 216 bytes), dicts (64 bytes
each) and a queue (a deque, ~0.7 KiB); their owner makes one of its own on first use. Adding to a shared one raises
instead of leaking into every other owner."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any


class EmptyIds(set[int]):
    __slots__ = ()

    def _refuse(self, *_: object) -> None:
        raise TypeError("the shared empty packet id set is read-only: make an own set first")

    def add(self, element: int, /) -> None:
        self._refuse()

    def update(self, *s: Iterable[int]) -> None:
        self._refuse()

    def symmetric_difference_update(self, s: Iterable[int], /) -> None:
        self._refuse()

    def __ior__(self, value: object, /) -> EmptyIds:  # type: ignore[override]
        self._refuse()
        return self

    def __ixor__(self, value: object, /) -> EmptyIds:  # type: ignore[override]
        self._refuse()
        return self


NO_IDS: set[int] = EmptyIds()


class EmptyDict(dict[Any, Any]):
    __slots__ = ()

    def _refuse(self, *_: object, **__: object) -> None:
        raise TypeError("a shared empty dict is read-only: make an own dict first")

    def __setitem__(self, key: object, value: object, /) -> None:
        self._refuse()

    def setdefault(self, key: object, default: object = None, /) -> None:
        self._refuse()

    def update(self, *args: object, **kwargs: object) -> None:
        self._refuse()

    def __ior__(self, value: object, /) -> EmptyDict:  # type: ignore[misc]
        self._refuse()
        return self


class EmptyDeque(deque[Any]):
    __slots__ = ()

    def _refuse(self, *_: object) -> None:
        raise TypeError("a shared empty queue is read-only: make an own deque first")

    def append(self, x: Any, /) -> None:
        self._refuse()

    def appendleft(self, x: Any, /) -> None:
        self._refuse()

    def extend(self, iterable: Iterable[Any], /) -> None:
        self._refuse()

    def extendleft(self, iterable: Iterable[Any], /) -> None:
        self._refuse()

    def insert(self, i: int, x: Any, /) -> None:
        self._refuse()

    def __iadd__(self, value: Iterable[Any], /) -> EmptyDeque:
        self._refuse()
        return self
