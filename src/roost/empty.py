"""One read-only empty set of packet identifiers, shared by the many connections and
sessions that have none in flight yet (an empty set takes 216 bytes); their owner makes a
set of its own on first use. Adding to the shared one raises instead of leaking ids into
every other owner."""

from __future__ import annotations

from collections.abc import Iterable


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
