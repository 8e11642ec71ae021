"""The memory store: the reference implementation of the store interface, in this process.

It holds what the broker reported, so `load` gives it back (a broker rebuilt in the same
process from it has the same sessions, subscriptions and retained messages); nothing
survives the process. Per-message state lives only in the broker's own queues."""

from __future__ import annotations

from roost.core.message import Message
from roost.core.session import SessionKey, SessionSubscription
from roost.core.store import StoredSession, StoreSnapshot


class MemoryStore:
    """Sessions and retained messages in dictionaries."""

    durable = False

    def __init__(self) -> None:
        self.sessions: dict[SessionKey, StoredSession] = {}
        self.retained: dict[tuple[str, str], Message] = {}

    def load(self) -> StoreSnapshot:
        return StoreSnapshot(list(self.sessions.values()), list(self.retained.values()))

    def session_saved(
        self,
        key: SessionKey,
        expiry_interval: int,
        disconnected_at: float | None,
        subscriptions: tuple[SessionSubscription, ...],
        device_id: str | None = None,
        subscription_qos: bool = False,
    ) -> None:
        tenant, client_id = key
        self.sessions[key] = StoredSession(
            tenant=tenant,
            client_id=client_id,
            expiry_interval=expiry_interval,
            disconnected_at=disconnected_at,
            subscriptions=subscriptions,
            device_id=device_id,
            subscription_qos=subscription_qos,
        )

    def session_deleted(self, key: SessionKey) -> None:
        self.sessions.pop(key, None)

    def retained_set(self, message: Message) -> None:
        self.retained[(message.tenant, message.topic)] = message

    def retained_deleted(self, tenant: str, topic: str) -> None:
        self.retained.pop((tenant, topic), None)

    def close(self) -> None:
        self.sessions.clear()
        self.retained.clear()
