"""Session claims between worker processes: a CONNECT claims its client id box-wide, and
the worker holding the session hands it over (docs/workers.md, "Client identifiers")."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roost.cluster.codec import Kind, Reader, Writer, read_message, write_message
from roost.core.message import Delivery
from roost.core.session import Session, SessionKey, SessionSubscription
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.decoder import subscription_of
from roost.mqtt.encoder import subscription_options

if TYPE_CHECKING:
    from roost.cluster.bus import LocalBus
    from roost.cluster.link import Peer

log = logging.getLogger(__name__)

# A claim not answered by every worker is forgotten this long after its timeout (at least
# 10 claim timeouts): a hand-over the link lost (docs/workers.md) never comes.
CLAIM_KEPT_SECONDS = 30.0


@dataclass(slots=True)
class HandOver:
    """A persistent session passed from the worker that held it to the one resuming it."""

    expiry_interval: int
    device_id: str | None
    subscription_qos: bool
    subscriptions: list[SessionSubscription] = field(default_factory=list)
    # Outbound QoS 1/2 exchanges under way, under their packet ids; `released`: PUBREC
    # received, PUBREL owed.
    inflight: list[Delivery] = field(default_factory=list)
    queued: list[Delivery] = field(default_factory=list)  # in order
    awaiting_rel: list[int] = field(default_factory=list)  # inbound QoS 2 ids


_DUP = 8
_RELEASED = 16


def _write_delivery(w: Writer, d: Delivery) -> None:
    write_message(w, d.message)
    w.u8(d.qos | (d.retain << 2) | (d.dup << 3) | (d.released << 4))
    w.u16(d.packet_id)
    w.u16(len(d.subscription_identifiers))
    for sid in d.subscription_identifiers:
        w.u32(sid)


def _read_delivery(r: Reader) -> Delivery:
    message = read_message(r)
    bits = r.u8()
    packet_id = r.u16()
    ids = tuple(r.u32() for _ in range(r.u16()))
    return Delivery(
        message=message,
        qos=bits & 3,
        retain=bool(bits & 4),
        dup=bool(bits & _DUP),
        released=bool(bits & _RELEASED),
        packet_id=packet_id,
        subscription_identifiers=ids,
    )


def write_hand_over(w: Writer, h: HandOver) -> None:
    w.u32(h.expiry_interval)
    w.opt_text(h.device_id)
    w.u8(h.subscription_qos)
    w.u32(len(h.subscriptions))
    for sub in h.subscriptions:
        w.text(sub.topic_filter)
        w.u8(subscription_options(sub.options, ProtocolVersion.V5))
        w.u32(sub.subscription_identifier or 0)
    for deliveries in (h.inflight, h.queued):
        w.u32(len(deliveries))
        for d in deliveries:
            _write_delivery(w, d)
    w.u32(len(h.awaiting_rel))
    for packet_id in h.awaiting_rel:
        w.u16(packet_id)


def read_hand_over(r: Reader) -> HandOver:
    h = HandOver(r.u32(), r.opt_text(), bool(r.u8()))
    for _ in range(r.u32()):
        topic_filter = r.text()
        options = subscription_of(topic_filter, r.u8(), ProtocolVersion.V5)
        sid = r.u32()
        h.subscriptions.append(
            SessionSubscription(
                topic_filter=topic_filter, options=options, subscription_identifier=sid or None
            )
        )
    h.inflight.extend(_read_delivery(r) for _ in range(r.u32()))
    h.queued.extend(_read_delivery(r) for _ in range(r.u32()))
    h.awaiting_rel.extend(r.u16() for _ in range(r.u32()))
    return h


def hand_over_of(session: Session) -> HandOver:
    """A session's state to pass on: the exchanges under way (released ones included),
    then the queue, in order."""
    queued = list(session.queue)
    journal = session.journal
    if session.spilled and journal is not None:
        # Past `max_queued_in_memory` the queue is on disk only: read it back, in order.
        queued.extend(journal.load_spilled(session.key, session.spill_after, session.spilled))
    return HandOver(
        expiry_interval=session.expiry_interval,
        device_id=session.device_id,
        subscription_qos=session.subscription_qos,
        subscriptions=list(session.subscriptions.values()),
        inflight=list(session.inflight.values()),
        queued=queued,
        awaiting_rel=sorted(session.awaiting_rel),
    )


@dataclass(slots=True)
class _Claim:
    key: SessionKey
    waiting: set[int]  # the workers that have not answered
    future: asyncio.Future[HandOver | None]
    # The client started clean since (here or on another worker): a session handed over
    # for this claim is not taken [MQTT-3.1.2-4].
    discarded: bool = False
    # The worker whose hand-over the future holds (the one to tell HANDED).
    holder: Peer | None = None


@dataclass(frozen=True, slots=True)
class _Claimed:
    """Another worker's claim, to answer."""

    peer: Peer
    transport: object  # the link to `peer` the claim came over: the answer goes on it
    request: int
    key: SessionKey
    clean_start: bool


class Claims:
    """This worker's claims and its answers to the others' (the bus routes the frames)."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.broker = bus.broker
        self._ids = itertools.count(1)
        # Kept past the claim's timeout until every worker has answered: a session
        # handed over late is still taken (merged), never dropped.
        self._claims: dict[int, _Claim] = {}

    async def claim(self, key: SessionKey, clean_start: bool) -> None:
        """A client connects here: the others drop its connection (takeover) and, unless it
        starts clean, hand its session over; installed here before this returns if it
        comes within `server.claim_timeout`, merged into the session when it comes later."""
        bus = self.bus
        if clean_start:
            self._discard(key)
        links = list(bus.links)
        if not links:
            return
        request = next(self._ids)
        future: asyncio.Future[HandOver | None] = asyncio.get_running_loop().create_future()
        entry = self._claims[request] = _Claim(key, {p.index for p in links}, future)
        w = Writer(Kind.CLAIM)
        w.u32(request)
        w.text(key[0])
        w.text(key[1])
        w.u8(clean_start)
        frame = w.frame()
        for peer in links:
            peer.send(frame)
        timeout = bus.ctx.config.server.claim_timeout
        try:
            hand_over = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            if future.done() and not future.cancelled():
                # Answered as the timeout fired (Python 3.12+ raises even so): taken.
                hand_over = future.result()
            else:
                # Expected on every CONNECT with `claim_timeout = 0`: no warning then.
                (log.warning if timeout > 0 else log.debug)(
                    "worker %d: claim of %s/%s not answered in %g s; a session handed "
                    "over later is merged",
                    bus.index,
                    *key,
                    timeout,
                )
                if request in self._claims:
                    kept = (
                        max(10 * timeout, CLAIM_KEPT_SECONDS)
                        + bus.ctx.config.server.hand_over_delay
                    )
                    asyncio.get_running_loop().call_later(kept, self._forget, request)
                return
        finally:
            if not entry.waiting:
                self._claims.pop(request, None)
        if hand_over is not None and entry.holder is not None:
            self._take(entry, hand_over, entry.holder)

    def _discard(self, key: SessionKey) -> None:
        """The client of `key` starts clean: its claims under way take no session."""
        for entry in self._claims.values():
            if entry.key == key:
                entry.discarded = True

    def _forget(self, request: int) -> None:
        entry = self._claims.pop(request, None)
        if entry is not None:
            log.warning(
                "worker %d: claim of %s/%s never answered by worker(s) %s; forgotten",
                self.bus.index,
                *entry.key,
                ", ".join(map(str, sorted(entry.waiting))),
            )

    def answered(self, peer: Peer, request: int, hand_over: HandOver | None) -> None:
        """A CLAIMED frame: `peer`'s answer to one of our claims."""
        entry = self._claims.get(request)
        if entry is None:
            return
        entry.waiting.discard(peer.index)
        future = entry.future
        if future.done():
            # After the timeout (or a second holder's copy): taken now.
            if not entry.waiting:
                del self._claims[request]
            if hand_over is not None:
                self._take(entry, hand_over, peer)
        elif hand_over is not None:
            entry.holder = peer
            future.set_result(hand_over)
        elif not entry.waiting:
            future.set_result(None)

    def peer_lost(self, index: int) -> None:
        """The link from worker `index` is gone: it will not answer."""
        for request, entry in list(self._claims.items()):
            entry.waiting.discard(index)
            if not entry.waiting:
                if not entry.future.done():
                    entry.future.set_result(None)
                else:
                    del self._claims[request]

    def claimed(self, peer: Peer, request: int, key: SessionKey, clean_start: bool) -> None:
        """A CLAIM frame: another worker's client connected with a client id that may live
        here."""
        bus = self.bus
        if clean_start:
            self._discard(key)
        handler = bus.ctx.connections.get(key)
        if handler is not None:
            log.info("worker %d: %s/%s taken over by worker %d", bus.index, *key, peer.index)
            handler.take_over()
        # The answer goes on this link: if it is lost meanwhile, so is the claim over there.
        claim = _Claimed(peer, peer.transport, request, key, clean_start)
        delay = bus.ctx.config.server.hand_over_delay
        if delay > 0:  # a test hook: the answer comes after the claim timed out
            asyncio.get_running_loop().call_later(delay, self._prepare, claim)
        else:
            self._prepare(claim)

    def _prepare(self, claim: _Claimed) -> None:
        key, clean_start = claim.key, claim.clean_start
        session = self.broker.get_session(*key)
        journal = None if session is None else session.journal
        if (
            session is not None
            and not clean_start
            and session.spilled
            and journal is not None
            and journal.committed_seq < session.spill_seq
        ):
            # The queue's spilled part is read back from the store once it is committed;
            # checked again then, since the session (still subscribed) may spill more.
            journal.after_commit(session.spill_seq, lambda: self._prepare(claim))
            return
        self._answer(claim)

    def _answer(self, claim: _Claimed) -> None:
        bus = self.bus
        peer, key = claim.peer, claim.key
        session = self.broker.get_session(*key)
        if session is not None and (session.connected or claim.clean_start):
            if not session.connected:  # clean start: the old session is ended [MQTT-3.1.2-4]
                self.broker.end_session(session, bus.ctx.clock())
            session = None
        transport = peer.transport
        if transport is None or transport is not claim.transport or transport.is_closing():
            # The claimer has dropped the claim with the link (or will never read the
            # answer): a session stays here, for a later claim.
            log.warning(
                "worker %d: link to worker %d lost before the answer to its claim of %s/%s",
                bus.index,
                peer.index,
                *key,
            )
            return
        w = Writer(Kind.CLAIMED)
        w.u32(claim.request)
        if session is None:
            w.u8(0)
        else:
            w.u8(1)
            write_hand_over(w, hand_over_of(session))
            self.broker.detach_session(session)
        peer.send(w.frame())

    def handed(self, key: SessionKey) -> None:
        """A HANDED frame: the session is stored by the worker it went to."""
        if self.broker.get_session(*key) is None:
            self.broker.store.session_deleted(key)

    def _take(self, entry: _Claim, h: HandOver, holder: Peer) -> None:
        """`holder`'s hand-over of the claimed session: installed or merged here."""
        key = entry.key
        if entry.discarded:
            # Not merged into the clean session [MQTT-3.1.2-4]; the old holder still
            # deletes its stored copy.
            log.warning(
                "worker %d: session %s/%s handed over after its client started clean; dropped",
                self.bus.index,
                *key,
            )
            self._handed(key, holder)
            return
        session = self.broker.get_session(*key)
        if session is None:
            self._install(key, h)
        else:
            self._merge(session, h)
        self._handed(key, holder)

    def _install(self, key: SessionKey, h: HandOver) -> None:
        """The session as it was: its exchanges under way under the same packet ids (resent
        on resume, PUBLISH with DUP=1 or PUBREL [MQTT-4.4.0-1]), its queue, its inbound
        QoS 2 ids; journaled, so that a crash here keeps them."""
        now = self.bus.ctx.clock()
        session = self.broker.adopt_session(
            key, h.expiry_interval, h.device_id, h.subscription_qos, h.subscriptions, now
        )
        journal = session.journal
        for delivery in h.inflight:
            session.own_inflight()[delivery.packet_id] = delivery
            if journal is not None:
                journal.delivery_queued(key, delivery)
                journal.delivery_sent(delivery)
                if delivery.released:
                    journal.delivery_released(delivery)
        for delivery in h.queued:
            session.enqueue(delivery)
        for packet_id in h.awaiting_rel:
            session.add_awaiting_rel(packet_id)
        log.info(
            "worker %d: session %s/%s handed over (%d subscriptions, %d inflight, %d queued)",
            self.bus.index,
            *key,
            len(h.subscriptions),
            len(h.inflight),
            len(h.queued),
        )

    def _merge(self, session: Session, h: HandOver) -> None:
        """A session came after its claim timed out: the client has a new session here
        (CONNACK Session Present 0). It gets the subscriptions it lacks, and the messages
        not yet received, queued as new deliveries; a released QoS 2 message is with the
        client already; inbound QoS 2 ids are not kept (the client has dropped them and
        may use them again)."""
        for subscription in h.subscriptions:
            if subscription.topic_filter not in session.subscriptions:
                self.broker.subscribe(session, subscription)
        merged = 0
        for delivery in (*h.inflight, *h.queued):
            if delivery.released:
                continue
            delivery.packet_id = 0
            delivery.dup = False
            merged += session.enqueue(delivery)
        log.warning(
            "worker %d: session %s/%s handed over after its claim; merged (%d subscriptions, "
            "%d messages)",
            self.bus.index,
            *session.key,
            len(h.subscriptions),
            merged,
        )

    def _handed(self, key: SessionKey, holder: Peer) -> None:
        """Tell the old holder, once the session is stored here, to delete its copy (the
        other workers have none to delete)."""
        w = Writer(Kind.HANDED)
        w.text(key[0])
        w.text(key[1])
        frame = w.frame()

        def tell() -> None:
            holder.send(frame)  # nothing if its link is down meanwhile

        committer = self.bus.ctx.committer
        if committer is None:
            tell()
        else:
            committer.after_commit(committer.write_seq, tell)
