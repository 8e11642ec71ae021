"""The store interface (implemented in roost.store): what the broker reports, what it loads.

The broker keeps its working state in memory (core/); the store receives every change that
must outlive the process and hands it back on start. A store that is not `durable` (the
memory store) is not told of per-message changes, so the hot path pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable
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
    # The registry device the session belongs to (revoking it ends the session).
    device_id: str | None = None
    # Deliveries at the subscription's QoS rather than the lower of it and the message's.
    subscription_qos: bool = False
    subscriptions: tuple[SessionSubscription, ...] = ()
    # Outbound messages, queued or inflight, in delivery order (durable stores only).
    deliveries: tuple[Delivery, ...] = ()
    # Inbound QoS 2 packet ids waiting for PUBREL (durable stores only).
    awaiting_rel: tuple[int, ...] = ()
    # Queued deliveries left on disk (beyond the in-memory part of the queue).
    spilled: int = 0
    spilled_bytes: int = 0


@dataclass(slots=True)
class StoreSnapshot:
    """Everything a store hands back on start."""

    sessions: list[StoredSession] = field(default_factory=list)
    retained: list[Message] = field(default_factory=list)
    wills: list[StoredWill] = field(default_factory=list)


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
        device_id: str | None = None,
        subscription_qos: bool = False,
    ) -> None: ...

    def session_deleted(self, key: SessionKey) -> None: ...

    def retained_set(self, message: Message) -> None: ...

    def retained_deleted(self, tenant: str, topic: str) -> None: ...

    def close(self) -> None: ...


class Committer(Protocol):
    """Group commit as the server sees it: changes are numbered as they are recorded;
    `after_commit(seq, cb)` runs cb once every change up to seq is on disk."""

    write_seq: int
    barrier_seq: int
    committed_seq: int

    def after_commit(self, seq: int, callback: Callable[[], None]) -> None: ...


class Journal(Protocol):
    """Per-message changes, reported only to a durable store for persistent sessions.

    Each call is recorded at once and committed with others (group commit). A call made
    with `barrier` semantics must be committed before the server sends any packet that
    reveals it (acknowledgement, PUBREL, PUBCOMP, the PUBLISH itself); the server asks
    `after_commit` for that. Deletions are lazy: losing one in a crash only repeats a
    delivery the at-least-once rules allow."""

    def delivery_queued(self, key: SessionKey, delivery: Delivery) -> int:
        """Store a queued QoS 1/2 delivery (barrier); returns the change's seq."""
        ...

    def load_spilled(self, key: SessionKey, after_id: int, limit: int) -> list[Delivery]:
        """Queued deliveries kept on disk only, committed ones, after store id `after_id`."""
        ...

    @property
    def committed_seq(self) -> int: ...

    def after_commit(self, seq: int, callback: Callable[[], None]) -> None: ...

    def delivery_sent(self, delivery: Delivery) -> None:
        """A QoS 1/2 delivery got its packet id (barrier)."""
        ...

    def delivery_released(self, delivery: Delivery) -> None:
        """PUBREC received for it: PUBREL is owed, not the PUBLISH (barrier)."""
        ...

    def delivery_deleted(self, delivery: Delivery) -> None: ...

    def awaiting_rel_added(self, key: SessionKey, packet_id: int) -> None: ...

    def awaiting_rel_removed(self, key: SessionKey, packet_id: int) -> None: ...

    def will_saved(self, key: SessionKey, message: Message, due: float) -> None: ...

    def will_deleted(self, key: SessionKey) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredWill:
    tenant: str
    client_id: str
    message: Message
    due: float
