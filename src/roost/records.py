"""Records made once per message or packet: frozen for the type checker, cheap at run time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(*, kw_only: bool = False) -> Callable[[type[T]], type[T]]:
    """A dataclass with slots, equality and a hash like a frozen one, that mypy --strict
    checks as frozen (assigning a field is a type error), but whose `__init__` assigns its
    fields directly: a frozen dataclass's goes through `object.__setattr__` once per field,
    which costs about three times as much. For the objects made per PUBLISH (the decoded
    packet, its event, the routed Message) and per connection (its CONNECT, ClientInfo,
    the dialect's Admission); treat them as immutable like any frozen one."""

    def make(cls: type[T]) -> type[T]:
        return dataclass(slots=True, kw_only=kw_only, unsafe_hash=True)(cls)

    return make
