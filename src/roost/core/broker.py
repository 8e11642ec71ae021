"""The broker: session registry, routing, retained messages, wills and session expiry.

Synchronous and deterministic: time comes in as `now`, nothing here awaits or does I/O.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from roost.config import MQTTConfig
from roost.core.message import Delivery, Message
from roost.core.quotas import Quotas, no_quotas
from roost.core.retained import RetainedIndex
from roost.core.router import STRATEGIES, Router
from roost.core.session import QueueLimits, Session, SessionKey, SessionSubscription
from roost.core.store import Journal, Store, StoreSnapshot
from roost.core.topics import parse_shared

log = logging.getLogger(__name__)

NEVER_EXPIRES = 0xFFFFFFFF
# A connected session's queue longer than this (or than half its limit) is "deep": a
# worker process stops taking forwarded messages until it is drained (cluster/link.py).
DEEP_QUEUE = 1_000


@dataclass(slots=True)
class BrokerStats:
    """Counters for $SYS and metrics."""

    messages_received: int = 0
    messages_sent: int = 0
    messages_dropped: int = 0
    publish_bytes_received: int = 0
    publish_bytes_sent: int = 0
    clients_connected: int = 0
    clients_maximum: int = 0
    connections_total: int = 0
    wills_published: int = 0
    sessions_expired: int = 0


@dataclass(slots=True)
class PendingWill:
    message: Message
    due: float


@dataclass(order=True, slots=True)
class _Timer:
    due: float
    seq: int
    kind: str = field(compare=False)
    key: SessionKey = field(compare=False)


class Broker:
    """All sessions, subscriptions and retained messages of every tenant."""

    def __init__(
        self,
        config: MQTTConfig,
        store: Store,
        journal: Journal | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.config = config
        # One record of the queue limits, shared by every session of this broker.
        self.queue_limits = QueueLimits(
            config.max_queued_messages,
            config.max_queued_bytes,
            config.queue_overflow,
            config.max_queued_in_memory,
        )
        self.store = store
        # Per-message durability for persistent sessions (None: memory durability).
        self.journal = journal
        self.sessions: dict[SessionKey, Session] = {}
        self.routers: dict[str, Router] = {}
        self.retained: dict[str, RetainedIndex[Message]] = {}
        self.wills: dict[SessionKey, PendingWill] = {}
        self.stats = BrokerStats()
        # Per-tenant usage (connections, sessions, subscriptions, retained bytes), always
        # counted; limits are checked where `quotas.enabled`.
        self.quotas = quotas or no_quotas()
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._strategy = STRATEGIES[config.shared_subscription_strategy]
        # Called with each message the broker publishes by itself (wills, $SYS); the server
        # hooks its own pipeline in here.
        self.on_internal_publish: Callable[[Message], None] | None = None
        # Worker processes (docs/workers.md): told of each message published here, with
        # the `$share` groups (full filters) served here; answers how many other workers
        # have a subscription it matches. None with a single process.
        self.forward: Callable[[Message, tuple[str, ...]], int] | None = None
        # Told (tenant, filter, +1 / -1) as sessions' subscriptions come and go.
        self.on_filter_change: Callable[[str, str, int], None] | None = None
        # With worker processes, the last connected session whose queue grew deep
        # (DEEP_QUEUE) as `publish` fed it a message forwarded by another worker: what
        # forwarded messages are read against (cluster/link.py), which clears it. Not
        # watched for messages published here, nor with a single process.
        self.deep: Session | None = None

    # -- sessions ------------------------------------------------------------------------

    def router(self, tenant: str) -> Router:
        router = self.routers.get(tenant)
        if router is None:
            sessions = self.sessions

            def is_online(client_id: str) -> bool:
                session = sessions.get((tenant, client_id))
                return session is not None and session.connected

            router = self.routers[tenant] = Router(self._strategy, is_online)
            on_filter_change = self.on_filter_change
            if on_filter_change is not None:
                router.on_change = lambda f, delta: on_filter_change(tenant, f, delta)
        return router

    def get_session(self, tenant: str, client_id: str) -> Session | None:
        return self.sessions.get((tenant, client_id))

    def open_session(
        self,
        tenant: str,
        client_id: str,
        clean_start: bool,
        expiry_interval: int,
        now: float,
        device_id: str | None = None,
        subscription_qos: bool = False,
    ) -> tuple[Session, bool]:
        """Start or resume the session of a client that has just connected; `device_id` is
        the registry device it authenticated as, which owns the session from now on;
        `subscription_qos`: its messages are delivered at the subscription's QoS.

        Returns (session, session_present). A pending will of the old connection is cancelled
        when the session is resumed [MQTT-3.1.3-9]; it is published when the session ends.
        """
        key = (tenant, client_id)
        usage = self.quotas.of(tenant)
        existing = self.sessions.get(key)
        if existing is not None and clean_start:
            self.end_session(existing, now)
            existing = None
        present = existing is not None
        if existing is None:
            session = Session(tenant, client_id, self.queue_limits)
            # Keyed by the session's own key tuple (one tuple per session, not two).
            self.sessions[session.key] = session
            usage.sessions += 1
        else:
            session = existing
            self._cancel_will(key)
        session.expiry_interval = expiry_interval
        session.device_id = device_id
        session.subscription_qos = subscription_qos
        if expiry_interval and self.journal is not None:
            session.journal = self.journal
        session.connected = True
        session.disconnected_at = None
        if expiry_interval:
            self._save(session)
        stats = self.stats
        stats.clients_connected += 1
        usage.connections += 1
        stats.connections_total += 1
        if stats.clients_connected > stats.clients_maximum:
            stats.clients_maximum = stats.clients_connected
        return session, present

    def connection_closed(
        self, session: Session, will: Message | None, will_delay: int, now: float
    ) -> None:
        """The network connection of `session` ended (any reason). `will` is None when the
        client disconnected normally [MQTT-3.1.2-10] or the will was otherwise cleared."""
        session.connected = False
        session.waker = None
        session.disconnected_at = now
        self.stats.clients_connected -= 1
        self.quotas.of(session.tenant).connections -= 1
        if will is not None:
            if will_delay <= 0:
                self._publish_will(will, now)
            else:
                self.wills[session.key] = PendingWill(will, now + will_delay)
                if self.journal is not None and session.expiry_interval:
                    self.journal.will_saved(session.key, will, now + will_delay)
                self._schedule(now + will_delay, "will", session.key)
        if session.expiry_interval == 0:
            self.end_session(session, now)
            return
        self._save(session)
        if session.expiry_interval != NEVER_EXPIRES:
            self._schedule(now + session.expiry_interval, "expire", session.key)

    def _save(self, session: Session) -> None:
        session.stored = True
        self.store.session_saved(
            session.key,
            session.expiry_interval,
            session.disconnected_at,
            tuple(session.subscriptions.values()),
            session.device_id,
            session.subscription_qos,
        )

    def end_session(self, session: Session, now: float, *, publish_will: bool = True) -> None:
        """Discard a session: its subscriptions, queued and inflight messages, here and in
        the store; a pending will is published now [MQTT-3.1.2-8] unless `publish_will` is
        False (the device was revoked: nothing more on its behalf)."""
        pending = self._cancel_will(session.key)
        if pending is not None and publish_will:
            self._publish_will(pending.message, now)
        self._discard(session, delete_stored=True)

    def detach_session(self, session: Session) -> None:
        """Take a session out of this broker, its pending will cancelled, leaving its stored
        copy for the caller to delete later (handed over to another worker process, which
        stores it first: docs/workers.md)."""
        self._cancel_will(session.key)
        session.journal = None
        self._discard(session, delete_stored=False)

    def _discard(self, session: Session, delete_stored: bool) -> None:
        router = self.routers.get(session.tenant)
        if router is not None:
            for topic_filter in session.subscriptions:
                router.remove(session.client_id, topic_filter)
        usage = self.quotas.of(session.tenant)
        usage.subscriptions -= len(session.subscriptions)
        session.subscriptions.clear()
        session.clear_messages()
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
            usage.sessions -= 1
            if delete_stored and session.stored:
                # A session never saved (clean, expiry 0) has nothing in the store.
                self.store.session_deleted(session.key)

    def adopt_session(
        self,
        key: SessionKey,
        expiry_interval: int,
        device_id: str | None,
        subscription_qos: bool,
        subscriptions: list[SessionSubscription],
        now: float,
    ) -> Session:
        """Install a disconnected persistent session handed over by another worker process
        (docs/workers.md); it is stored here, its deliveries are for the caller to enqueue.
        It expires `expiry_interval` from `now` unless its client resumes it first (the
        client may have left meanwhile, or never come back for a late hand-over)."""
        session = Session(key[0], key[1], self.queue_limits)
        session.device_id = device_id
        session.subscription_qos = subscription_qos
        session.disconnected_at = now
        session.journal = self.journal
        self.sessions[key] = session
        self.quotas.of(key[0]).sessions += 1
        for subscription in subscriptions:
            self.subscribe(session, subscription)
        # Set last: `subscribe` saves a session with an expiry; this saves it once.
        session.expiry_interval = expiry_interval
        self._save(session)
        if expiry_interval != NEVER_EXPIRES:
            self._schedule(now + expiry_interval, "expire", key)
        return session

    def end_device_sessions(self, tenant: str, device_id: str, now: float) -> int:
        """End every session of a revoked registry device, connected or not, without
        publishing its wills. The caller closes live connections first. Returns how many."""
        ended = [
            s for s in self.sessions.values() if s.device_id == device_id and s.tenant == tenant
        ]
        for session in ended:
            self.end_session(session, now, publish_will=False)
        return len(ended)

    def _cancel_will(self, key: SessionKey) -> PendingWill | None:
        pending = self.wills.pop(key, None)
        if pending is not None and self.journal is not None:
            self.journal.will_deleted(key)
        return pending

    def _publish_will(self, will: Message, now: float) -> None:
        self.stats.wills_published += 1
        if self.on_internal_publish is not None:
            self.on_internal_publish(will)
        else:
            self.publish(will, now)

    # -- timers --------------------------------------------------------------------------

    def _schedule(self, due: float, kind: str, key: SessionKey) -> None:
        heapq.heappush(self._timers, _Timer(due, next(self._seq), kind, key))

    def next_deadline(self) -> float | None:
        return self._timers[0].due if self._timers else None

    def tick(self, now: float) -> None:
        """Fire due wills and expire sessions whose expiry interval has passed."""
        timers = self._timers
        while timers and timers[0].due <= now:
            timer = heapq.heappop(timers)
            session = self.sessions.get(timer.key)
            if timer.kind == "will":
                pending = self.wills.get(timer.key)
                if pending is not None and pending.due <= now:
                    self._cancel_will(timer.key)
                    self._publish_will(pending.message, now)
            elif timer.kind == "expire" and session is not None and not session.connected:
                assert session.disconnected_at is not None
                if session.disconnected_at + session.expiry_interval <= now:
                    self.stats.sessions_expired += 1
                    self.end_session(session, now)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, session: Session, subscription: SessionSubscription) -> bool:
        """Add or replace a subscription [MQTT-3.8.4-3]. Returns True if it existed."""
        existed = subscription.topic_filter in session.subscriptions
        if not existed:
            self.quotas.of(session.tenant).subscriptions += 1
        session.own_subscriptions()[subscription.topic_filter] = subscription
        self.router(session.tenant).add(session.client_id, subscription)
        if session.expiry_interval:
            self._save(session)
        return existed

    def unsubscribe(self, session: Session, topic_filter: str) -> bool:
        if session.subscriptions.pop(topic_filter, None) is None:
            return False
        self.quotas.of(session.tenant).subscriptions -= 1
        self.router(session.tenant).remove(session.client_id, topic_filter)
        if session.expiry_interval:
            self._save(session)
        return True

    def retained_for(
        self, session: Session, subscription: SessionSubscription, existed: bool, now: float
    ) -> list[Delivery]:
        """Retained messages to send for a new subscription, per Retain Handling
        [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]; none for shared ones."""
        options = subscription.options
        if options.retain_handling == 2 or (options.retain_handling == 1 and existed):
            return []
        if parse_shared(subscription.topic_filter) is not None:
            return []
        index = self.retained.get(session.tenant)
        if index is None:
            return []
        ids = (
            (subscription.subscription_identifier,)
            if subscription.subscription_identifier is not None
            else ()
        )
        out: list[Delivery] = []
        for topic, message in index.match(subscription.topic_filter):
            if message.expired(now):
                index.delete(topic)
                self.quotas.of(session.tenant).retained_changed(message, None)
                continue
            qos = options.qos if session.subscription_qos else min(options.qos, message.qos)
            # Retained messages sent on subscribe carry RETAIN=1 [MQTT-3.3.1-8]
            out.append(
                Delivery(message=message, qos=qos, retain=True, subscription_identifiers=ids)
            )
        return out

    # -- publishing ----------------------------------------------------------------------

    def publish(
        self,
        message: Message,
        now: float,
        *,
        count: bool = True,
        persist: bool = True,
        only: str | None = None,
        forward: bool = True,
        serve_groups: frozenset[str] | None = None,
        watch_depth: bool = False,
    ) -> int:
        """Store/clear the retained copy and hand the message to every matching session
        (`only`: to that client's session alone). Returns the number of sessions it was
        delivered to. With worker processes, the message is also forwarded to the other
        workers unless `forward` is False; `serve_groups`: of the `$share` groups, only
        these are served here, the others' members not even picked (a message forwarded
        by another worker); `watch_depth`: a session whose queue grows deep becomes
        `deep` (a message taken from the bus, whose reader waits for it)."""
        stats = self.stats
        if count:
            stats.messages_received += 1
            stats.publish_bytes_received += len(message.payload)
        if message.retain:
            self._retain(message, persist)
        router = self.routers.get(message.tenant)
        fwd = self.forward if forward and only is None else None
        if router is None:
            return 0 if fwd is None else fwd(message, ())
        sessions = self.sessions
        tenant = message.tenant
        targets = router.route(message.topic, message.publisher, serve_groups)
        # Other workers with a matching subscription count as matched (PUBACK 0x00, not
        # 0x10 No matching subscribers).
        delivered = 0
        if fwd is not None:
            # The groups' targets come last (Router.route): none when the last has none.
            if targets and targets[-1].group is not None:
                groups: tuple[str, ...] = tuple(
                    t.group.share_filter for t in targets if t.group is not None
                )
            else:
                groups = ()
            delivered = fwd(message, groups)
        message_qos = message.qos
        message_retain = message.retain
        for target in targets:
            if only is not None and target.client_id != only:
                continue
            session = sessions.get((tenant, target.client_id))
            if session is None:
                continue
            qos = target.qos
            if qos > message_qos and not session.subscription_qos:
                qos = message_qos
            if not session.connected and qos == 0 and session.expiry_interval == 0:
                continue
            dropped_before = session.stats.dropped_overflow
            if session.enqueue(
                Delivery(
                    message=message,
                    qos=qos,
                    retain=message_retain and target.retain_as_published,
                    subscription_identifiers=target.subscription_identifiers,
                )
            ):
                delivered += 1
                if watch_depth and session.connected:
                    depth = len(session.queue) + session.spilled
                    if depth > DEEP_QUEUE or depth * 2 > session.max_queued_messages:
                        self.deep = session
            # Read again: the first drop gives the session counters of its own.
            dropped = session.stats.dropped_overflow
            if dropped != dropped_before:
                stats.messages_dropped += dropped - dropped_before
        return delivered

    def may_retain(self, message: Message) -> bool:
        """Whether retaining `message` stays within its tenant's retained quota."""
        if not self.quotas.enabled or not message.payload:
            return True
        index = self.retained.get(message.tenant)
        old = None if index is None else index.get(message.topic)
        return self.quotas.of(message.tenant).may_retain(message, old)

    def clear_retained(self, tenant: str, topic: str) -> bool:
        """Remove a topic's retained message (an operator's action); True if there was one."""
        index = self.retained.get(tenant)
        old = None if index is None else index.get(topic)
        if index is None or old is None or not index.delete(topic):
            return False
        self.quotas.of(tenant).retained_changed(old, None)
        self.store.retained_deleted(tenant, topic)
        return True

    def set_retained(self, message: Message) -> None:
        """Set a topic's retained message without routing it (another worker's retained
        set, sent to a worker that starts): the one held here stays if it was created
        later (published meanwhile, its copy already forwarded here; one box, one clock)."""
        index = self.retained.get(message.tenant)
        held = None if index is None else index.get(message.topic)
        if held is None or held.created_at <= message.created_at:
            self._retain(message)

    def _retain(self, message: Message, persist: bool = True) -> None:
        index = self.retained.get(message.tenant)
        if index is None:
            index = self.retained[message.tenant] = RetainedIndex()
        usage = self.quotas.of(message.tenant)
        old = index.get(message.topic)
        if not message.payload:
            # A retained PUBLISH with an empty payload removes the retained message.
            if old is not None and index.delete(message.topic):
                usage.retained_changed(old, None)
                if persist:
                    self.store.retained_deleted(message.tenant, message.topic)
        elif (
            old is None and len(index) >= self.config.max_retained_messages
        ) or not self.may_retain(message):
            self.stats.messages_dropped += 1
            usage.refused_retained += 1
            log.warning("retained message on %r refused: retained quota", message.topic)
        else:
            index.set(message.topic, message)
            usage.retained_changed(old, message)
            if persist:
                self.store.retained_set(message)

    def restore(self, snapshot: StoreSnapshot, now: float) -> None:
        """Rebuild sessions, subscriptions and retained messages from a store snapshot;
        what expired meanwhile is dropped (expiry is wall-clock time)."""
        for message in snapshot.retained:
            if message.expired(now):
                self.store.retained_deleted(message.tenant, message.topic)
                continue
            index = self.retained.get(message.tenant)
            if index is None:
                index = self.retained[message.tenant] = RetainedIndex()
            index.set(message.topic, message)
            self.quotas.of(message.tenant).retained_changed(None, message)
        for stored in snapshot.sessions:
            key = (stored.tenant, stored.client_id)
            since = stored.disconnected_at if stored.disconnected_at is not None else now
            if stored.expiry_interval != NEVER_EXPIRES and since + stored.expiry_interval <= now:
                self.store.session_deleted(key)
                continue
            session = Session(stored.tenant, stored.client_id, self.queue_limits)
            session.expiry_interval = stored.expiry_interval
            session.device_id = stored.device_id
            session.subscription_qos = stored.subscription_qos
            session.disconnected_at = since
            session.journal = self.journal
            session.stored = True
            for delivery in stored.deliveries:
                if delivery.packet_id:
                    session.own_inflight()[delivery.packet_id] = delivery
                else:
                    session.own_queue().append(delivery)
                    session.queued_bytes += delivery.message.size
            session.spilled = stored.spilled
            session.spilled_bytes = stored.spilled_bytes
            if stored.awaiting_rel:
                session.own_awaiting_rel().update(stored.awaiting_rel)
            self.sessions[key] = session
            usage = self.quotas.of(stored.tenant)
            usage.sessions += 1
            usage.subscriptions += len(stored.subscriptions)
            router = self.router(stored.tenant)
            for subscription in stored.subscriptions:
                session.own_subscriptions()[subscription.topic_filter] = subscription
                router.add(stored.client_id, subscription)
            if stored.expiry_interval != NEVER_EXPIRES:
                self._schedule(since + stored.expiry_interval, "expire", key)
        for will in snapshot.wills:
            key = (will.tenant, will.client_id)
            self.wills[key] = PendingWill(will.message, will.due)
            self._schedule(will.due, "will", key)

    def retained_count(self) -> int:
        return sum(len(index) for index in self.retained.values())
