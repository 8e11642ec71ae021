"""A session: subscriptions, the outbound queue and inflight window, inbound QoS 2 state."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from roost.core.message import Delivery, Message
from roost.empty import NO_IDS, EmptyDeque, EmptyDict
from roost.mqtt.packets import Subscription

if TYPE_CHECKING:
    from roost.core.store import Journal

SessionKey = tuple[str, str]  # (tenant, client_id)


class Waker(Protocol):
    """What delivers a session's queue (its connection): told when there is something new
    to send. The session keeps the object itself, not a bound method (one fewer per
    connection)."""

    def wake(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSubscription:
    """A subscription as a session holds it."""

    topic_filter: str  # as subscribed, including any $share/{group}/ prefix
    options: Subscription
    subscription_identifier: int | None = None


@dataclass(slots=True)
class QueueStats:
    dropped_overflow: int = 0
    dropped_expired: int = 0
    dropped_too_large: int = 0


class _SharedQueueStats(QueueStats):
    """The counters of every session that has dropped nothing yet: all zero, read-only."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError("the shared queue stats are read-only: use Session.own_stats()")


_NO_DROPS: QueueStats = _SharedQueueStats.__new__(_SharedQueueStats)
for _name in ("dropped_overflow", "dropped_expired", "dropped_too_large"):
    object.__setattr__(_NO_DROPS, _name, 0)


# Shared and empty until the first delivery is queued (an empty deque takes ~0.7 KiB, and
# most idle sessions never queue).
_NO_QUEUE: deque[Delivery] = EmptyDeque()
# Shared and empty until the first subscription / QoS 1-2 delivery in flight.
_NO_SUBSCRIPTIONS: dict[str, SessionSubscription] = EmptyDict()
_NO_INFLIGHT: dict[int, Delivery] = EmptyDict()


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """A session's queue limits (from the configuration): the broker makes one record
    that all its sessions share, not four fields in each."""

    max_queued_messages: int
    max_queued_bytes: int
    queue_overflow: str = "drop_oldest"
    max_in_memory: int = 1_000


class Session:
    """State that outlives a network connection (MQTT "Session State" [MQTT-4.1.0-1])."""

    __slots__ = (
        "_next_packet_id",
        "_refill_waiting",
        "awaiting_rel",
        "connected",
        "device_id",
        "disconnected_at",
        "expiry_interval",
        "inflight",
        "journal",
        "key",
        "limits",
        "queue",
        "queued_bytes",
        "queued_qos0",
        "spill_after",
        "spill_seq",
        "spilled",
        "spilled_bytes",
        "stats",
        "stored",
        "subscription_qos",
        "subscriptions",
        "waker",
    )

    def __init__(
        self,
        tenant: str,
        client_id: str,
        limits: QueueLimits | None = None,
        *,
        max_queued_messages: int | None = None,
        max_queued_bytes: int | None = None,
        queue_overflow: str = "drop_oldest",
        max_in_memory: int = 1_000,
    ) -> None:
        """`limits`: the broker's shared record; without it, one of the session's own from
        the four values (an internal session, a test)."""
        # The tenant and the client id are read from the key (one tuple, no copies).
        self.key: SessionKey = (tenant, client_id)
        # The registry device of the client that opened it last (None: not a device).
        self.device_id: str | None = None
        # Messages are delivered at the subscription's QoS, whatever the message's (a
        # dialect's rule: SmartREST operations); else at the lower of the two [MQTT-3.8.4-8].
        self.subscription_qos = False
        # Shared and empty until the first (own_subscriptions()).
        self.subscriptions: dict[str, SessionSubscription] = _NO_SUBSCRIPTIONS
        self.expiry_interval = 0
        # Shared and empty until the first (own_inflight()).
        self.inflight: dict[int, Delivery] = _NO_INFLIGHT
        # Shared and empty until the first delivery is queued (own_queue()).
        self.queue: deque[Delivery] = _NO_QUEUE
        self.queued_bytes = 0
        self.queued_qos0 = 0
        # Journaled sessions keep at most `max_in_memory` queued deliveries in RAM; later
        # ones live only in the store ("spilled") and are read back in pages, in order.
        if limits is None:
            if max_queued_messages is None or max_queued_bytes is None:
                raise TypeError("a session needs its queue limits")
            limits = QueueLimits(
                max_queued_messages, max_queued_bytes, queue_overflow, max_in_memory
            )
        self.limits = limits
        self.spilled = 0
        self.spilled_bytes = 0
        self.spill_after = 0  # store id of the last delivery that is in RAM
        self.spill_seq = 0  # store change that wrote the last spilled delivery
        self._refill_waiting = False
        # Shared and empty until the first one (own_awaiting_rel()).
        self.awaiting_rel: set[int] = NO_IDS
        # Shared and all zero until the first drop (own_stats()).
        self.stats = _NO_DROPS
        self.connected = False
        self.disconnected_at: float | None = None
        # Told when there is something new to send; set by the connection that owns it.
        self.waker: Waker | None = None
        # Set for a persistent session when the store is durable: QoS 1/2 state is journaled.
        self.journal: Journal | None = None
        # The store may hold rows of this session (it was saved or restored): deleted with it.
        self.stored = False
        self._next_packet_id = 1

    @property
    def tenant(self) -> str:
        return self.key[0]

    @property
    def client_id(self) -> str:
        return self.key[1]

    @property
    def max_queued_messages(self) -> int:
        return self.limits.max_queued_messages

    @property
    def max_queued_bytes(self) -> int:
        return self.limits.max_queued_bytes

    @property
    def queue_overflow(self) -> str:
        return self.limits.queue_overflow

    @property
    def max_in_memory(self) -> int:
        return self.limits.max_in_memory

    def own_subscriptions(self) -> dict[str, SessionSubscription]:
        """The session's subscriptions, to add to (made on first use)."""
        subscriptions = self.subscriptions
        if subscriptions is _NO_SUBSCRIPTIONS:
            subscriptions = self.subscriptions = {}
        return subscriptions

    def own_inflight(self) -> dict[int, Delivery]:
        """The deliveries in flight, to add to (made on first use)."""
        inflight = self.inflight
        if inflight is _NO_INFLIGHT:
            inflight = self.inflight = {}
        return inflight

    def own_stats(self) -> QueueStats:
        """The session's drop counters, to count in (made on the first drop)."""
        stats = self.stats
        if stats is _NO_DROPS:
            stats = self.stats = QueueStats()
        return stats

    def own_queue(self) -> deque[Delivery]:
        """The session's queue, to add to (made on first use)."""
        queue = self.queue
        if queue is _NO_QUEUE:
            queue = self.queue = deque()
        return queue

    def own_awaiting_rel(self) -> set[int]:
        """The packet ids awaiting PUBREL, to add to (made on first use)."""
        ids = self.awaiting_rel
        if ids is NO_IDS:
            ids = self.awaiting_rel = set()
        return ids

    # -- outbound ------------------------------------------------------------------------

    def enqueue(self, delivery: Delivery) -> bool:
        """Queue a delivery under the overflow policy (QoS 0 is always dropped first).
        Returns False if this delivery itself was not queued; every drop is counted."""
        size = delivery.message.size
        limits = self.limits
        max_messages = limits.max_queued_messages
        max_bytes = limits.max_queued_bytes
        if max_messages == 0 or size > max_bytes:
            self.own_stats().dropped_overflow += 1
            return False
        while (
            len(self.queue) + self.spilled >= max_messages
            or self.queued_bytes + self.spilled_bytes + size > max_bytes
        ):
            if self.queued_qos0 and self._drop_one_qos0():
                continue
            if limits.queue_overflow == "drop_newest" or delivery.qos == 0 or not self.queue:
                self.own_stats().dropped_overflow += 1
                return False
            dropped = self.queue.popleft()
            self.queued_bytes -= dropped.message.size
            self.own_stats().dropped_overflow += 1
            if dropped.store_id and self.journal is not None:
                self.journal.delivery_deleted(dropped)
        journal = self.journal
        if journal is not None and (self.spilled or len(self.queue) >= limits.max_in_memory):
            if delivery.qos == 0:
                # Not stored, and it may not overtake what is on disk: dropped first.
                self.own_stats().dropped_overflow += 1
                return False
            self.spill_seq = journal.delivery_queued(self.key, delivery)
            delivery.store_id = 0  # the object is not kept: the row is read back later
            self.spilled += 1
            self.spilled_bytes += size
        else:
            self.own_queue().append(delivery)
            self.queued_bytes += size
            if delivery.qos == 0:
                self.queued_qos0 += 1
            elif journal is not None:
                journal.delivery_queued(self.key, delivery)
                self.spill_after = delivery.store_id
        if self.waker is not None:
            self.waker.wake()
        return True

    def _drop_one_qos0(self) -> bool:
        for i, queued in enumerate(self.queue):
            if queued.qos == 0:
                del self.queue[i]
                self.queued_bytes -= queued.message.size
                self.queued_qos0 -= 1
                self.own_stats().dropped_overflow += 1
                return True
        return False

    def _refill(self) -> None:
        """Read the next page of spilled deliveries back into RAM, once committed."""
        journal = self.journal
        if journal is None or self._refill_waiting:
            return
        if journal.committed_seq < self.spill_seq:
            self._refill_waiting = True
            journal.after_commit(self.spill_seq, self._refilled)
            return
        page = journal.load_spilled(
            self.key, self.spill_after, self.max_in_memory - len(self.queue)
        )
        if not page:
            self.spilled = self.spilled_bytes = 0
            return
        queue = self.own_queue()
        for delivery in page:
            queue.append(delivery)
            size = delivery.message.size
            self.queued_bytes += size
            self.spilled_bytes -= size
        self.spilled -= len(page)
        self.spill_after = page[-1].store_id
        if self.spilled <= 0:
            self.spilled = self.spilled_bytes = 0

    def _refilled(self) -> None:
        self._refill_waiting = False
        if self.waker is not None:
            self.waker.wake()

    def allocate_packet_id(self) -> int:
        """A packet id not in use by an outbound QoS 1/2 exchange [MQTT-2.2.1-3]."""
        for _ in range(65_535):
            packet_id = self._next_packet_id
            self._next_packet_id = packet_id % 65_535 + 1
            if packet_id not in self.inflight:
                return packet_id
        raise RuntimeError("no free packet identifier")

    def take_ready(self, window: int, now: float, limit: int = 1_000) -> list[Delivery]:
        """Move deliveries from the queue to the wire: QoS 0 directly, QoS 1/2 into inflight
        while fewer than `window` are unacknowledged. Expired messages are dropped."""
        out: list[Delivery] = []
        queue = self.queue
        if self.spilled and len(queue) <= self.max_in_memory // 2:
            self._refill()
            queue = self.queue  # the session's own now, if it had none
        while queue and len(out) < limit:
            head = queue[0]
            if head.qos > 0 and len(self.inflight) >= window:
                break
            queue.popleft()
            self.queued_bytes -= head.message.size
            if head.qos == 0:
                self.queued_qos0 -= 1
            if head.message.expires_at is not None and head.message.expired(now):
                self.own_stats().dropped_expired += 1
                if head.store_id and self.journal is not None:
                    self.journal.delivery_deleted(head)
                continue
            if head.qos > 0:
                head.packet_id = self.allocate_packet_id()
                self.own_inflight()[head.packet_id] = head
                if head.store_id and self.journal is not None:
                    self.journal.delivery_sent(head)
            out.append(head)
        return out

    def acknowledge(self, packet_id: int) -> Delivery | None:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) ends an exchange; frees its packet id."""
        delivery = self.inflight.pop(packet_id, None)
        if delivery is not None and delivery.store_id and self.journal is not None:
            self.journal.delivery_deleted(delivery)
        return delivery

    def received(self, packet_id: int) -> Delivery | None:
        """PUBREC for an outbound QoS 2 message: now waiting for PUBCOMP."""
        delivery = self.inflight.get(packet_id)
        if delivery is not None and delivery.qos == 2 and not delivery.released:
            delivery.released = True
            if delivery.store_id and self.journal is not None:
                self.journal.delivery_released(delivery)
        return delivery

    def add_awaiting_rel(self, packet_id: int) -> None:
        """An inbound QoS 2 message was accepted; its PUBREL is awaited."""
        self.own_awaiting_rel().add(packet_id)
        if self.journal is not None:
            self.journal.awaiting_rel_added(self.key, packet_id)

    def remove_awaiting_rel(self, packet_id: int) -> bool:
        """PUBREL arrived; False if the packet id was not awaited."""
        if packet_id not in self.awaiting_rel:
            return False
        self.awaiting_rel.discard(packet_id)
        if self.journal is not None:
            self.journal.awaiting_rel_removed(self.key, packet_id)
        return True

    def resend_list(self) -> list[Delivery]:
        """Unacknowledged exchanges, in order, to resend on resume [MQTT-4.4.0-1]."""
        for delivery in self.inflight.values():
            if not delivery.released:
                delivery.dup = True
        return list(self.inflight.values())

    def drop_inflight(self, packet_id: int) -> None:
        """Forget an exchange the client can never receive (too large for it)."""
        delivery = self.inflight.pop(packet_id, None)
        if delivery is not None:
            self.own_stats().dropped_too_large += 1
            if delivery.store_id and self.journal is not None:
                self.journal.delivery_deleted(delivery)

    def message_count(self) -> int:
        return len(self.queue) + self.spilled + len(self.inflight)

    def clear_messages(self) -> None:
        journal = self.journal
        if journal is not None:
            for delivery in (*self.queue, *self.inflight.values()):
                if delivery.store_id:
                    journal.delivery_deleted(delivery)
        self.queue.clear()
        self.queued_bytes = 0
        self.queued_qos0 = 0
        self.spilled = self.spilled_bytes = 0
        self.inflight.clear()
        self.awaiting_rel.clear()


def make_delivery(message: Message, qos: int, retain: bool, ids: tuple[int, ...]) -> Delivery:
    return Delivery(message=message, qos=qos, retain=retain, subscription_identifiers=ids)
