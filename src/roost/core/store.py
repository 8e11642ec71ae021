"""The store interface (implemented in roost.store): what the broker reports, what it loads.

The broker keeps its working state in memory (core/); the store receives every change that
must outlive the process and hands it back on start. A store that is not `durable` (the
memory store) is not told of per-message changes, so the hot path pays nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from roost.core.message import Delivery, Message
from roost.core.session import SessionKey, SessionSubscription


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSession:
    """A session as the store keeps it."""

    tenant: str
    client_id: str
    expiry_interval: int
    disconnected_at: float | None
    subscriptions: tuple[SessionSubscription, ...] = ()
    # Outbound messages, queued or inflight, in delivery order (durable stores only).
    deliveries: tuple[Delivery, ...] = ()
    # Inbound QoS 2 packet ids waiting for PUBREL (durable stores only).
    awaiting_rel: tuple[int, ...] = ()


@dataclass(slots=True)
class StoreSnapshot:
    """Everything a store hands back on start."""

    sessions: list[StoredSession] = field(default_factory=list)
    retained: list[Message] = field(default_factory=list)


class Store(Protocol):
    """Receives changes as they happen; `load` returns the state they add up to."""

    @property
    def durable(self) -> bool:
        """True if per-message changes must be reported (queue, inflight, awaiting PUBREL)."""
        ...

    def load(self) -> StoreSnapshot: ...

    def session_saved(
        self,
        key: SessionKey,
        expiry_interval: int,
        disconnected_at: float | None,
        subscriptions: tuple[SessionSubscription, ...],
    ) -> None: ...

    def session_deleted(self, key: SessionKey) -> None: ...

    def retained_set(self, message: Message) -> None: ...

    def retained_deleted(self, tenant: str, topic: str) -> None: ...

    def close(self) -> None: ...
