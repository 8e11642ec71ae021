"""The local bus between the worker processes of one box: Unix domain sockets, full
mesh; filter summaries, forwarded messages, retained messages (session claims: in
roost/cluster/handover.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from roost.cluster.captures import STREAMS_WORKER, RemoteCaptures, captured, streams_frames
from roost.cluster.codec import (
    HEADER,
    MAX_FRAME,
    Kind,
    Reader,
    Writer,
    decode_message,
    encode_message,
    read_message,
    write_message,
)
from roost.cluster.handover import Claims, read_hand_over
from roost.cluster.link import ROUTES_MAX, InLink, OutLink, Peer
from roost.core.message import Message
from roost.core.session import Session, SessionKey
from roost.core.topics import parse_shared
from roost.core.trie import SubscriptionTrie
from roost.server.flow import INPUT_LINK

if TYPE_CHECKING:
    from roost.server.context import ServerContext
    from roost.streams.service import LocalStreams

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 0.2
# How long a starting worker waits for its links before it opens its listeners.
START_WAIT = 5.0
_FORWARD = int(Kind.FORWARD)


def socket_path(run_dir: Path, index: int) -> Path:
    return run_dir / f"worker-{index}.sock"


class LocalBus:
    """This worker's end of the bus."""

    def __init__(self, ctx: ServerContext, index: int, count: int, run_dir: Path) -> None:
        self.ctx = ctx
        self.broker = ctx.broker
        self.index = index
        self.run_dir = run_dir
        self.count = count
        self.peers: dict[int, Peer] = {}
        self.peer_list: list[Peer] = []
        self.links: list[Peer] = []  # peers whose link is up
        self.counts: dict[tuple[str, str], int] = {}
        # Per tenant, how many `$share` filters the local sessions have.
        self.shared: dict[str, int] = {}
        # Subscribers not waited for (their queue stayed deep), each until a loop time.
        self._ignored: dict[Session, float] = {}
        self.needs_retained = True
        self._rotate = itertools.count()
        self.claims = Claims(self)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._all_ready = asyncio.Event()
        self.forwarded = 0
        self.received = 0
        # Worker 0: the streams, told to the others; worker k > 0: what they capture.
        self.streams: LocalStreams | None = None
        self.remote: RemoteCaptures | None = None
        ctx.broker.forward = self.forward
        ctx.broker.on_filter_change = self.filter_changed

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.peers = {i: Peer(i, loop) for i in range(self.count) if i != self.index}
        self.peer_list = list(self.peers.values())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = socket_path(self.run_dir, self.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._server = await loop.create_unix_server(lambda: InLink(self), path=str(path))
        os.chmod(path, 0o600)
        for peer in self.peer_list:
            self._tasks.append(asyncio.create_task(self._link(peer)))
        # The listeners open once every other worker is linked and the retained set is here
        # (or after START_WAIT): a client of the first moments is claimed box-wide, its
        # messages are routed, its subscriptions get the retained messages.
        try:
            await asyncio.wait_for(self._all_ready.wait(), START_WAIT)
        except TimeoutError:
            waiting = [p.index for p in self.peer_list if not p.ready]
            log.warning(
                "worker %d: not linked to workers %s (or no retained set) yet, starting",
                self.index,
                waiting,
            )

    def serve_streams(self, streams: LocalStreams) -> None:
        """Worker 0: the others hear which topics its streams capture (on link-up, on
        each declare or delete) and send it what they capture."""
        self.streams = streams

        def declared(tenant: str) -> None:
            for frame in streams_frames(streams, [tenant]):
                for peer in self.links:
                    peer.send(frame)

        streams.on_declared = declared

    def _maybe_started(self) -> None:
        """Every other worker is linked and the retained set has arrived."""
        if not self.needs_retained and all(p.ready for p in self.peer_list):
            self._all_ready.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
        for peer in self.peer_list:
            peer.flush()
            if peer.transport is not None:
                peer.transport.close()

    async def _link(self, peer: Peer) -> None:
        """Keep the link to `peer` up; on each (re)connect it gets our whole summary."""
        path = str(socket_path(self.run_dir, peer.index))
        loop = asyncio.get_running_loop()
        while True:
            try:
                transport, link = await loop.create_unix_connection(
                    lambda: OutLink(self, peer), path
                )
            except OSError:
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            peer.transport = cast(asyncio.WriteTransport, transport)
            hello = Writer(Kind.HELLO)
            hello.u16(self.index)
            hello.u8(self.needs_retained)
            peer.send(hello.frame())
            for (tenant, topic_filter), count in self.counts.items():
                if count > 0:
                    peer.send(_filter_frame(tenant, topic_filter, True))
            if self.streams is not None:
                for frame in streams_frames(self.streams):
                    peer.send(frame)
            peer.send(Writer(Kind.SYNCED).frame())
            self.links.append(peer)
            remote = self.remote
            if remote is not None and peer.index == STREAMS_WORKER:
                remote.peer = peer
            log.info("worker %d: linked to worker %d", self.index, peer.index)
            if peer.wants_retained:
                self._send_retained(peer)
            self._replay(peer)
            await link.closed
            if remote is not None and peer.index == STREAMS_WORKER:
                remote.peer = None
                remote.fail_all("link to worker 0 lost")
            self.links.remove(peer)
            peer.transport = None
            peer.out = []
            if peer.paused:
                self.link_resumed(peer)
            transport.close()
            log.info("worker %d: link to worker %d lost", self.index, peer.index)
            await asyncio.sleep(RECONNECT_SECONDS)

    # -- receiving -----------------------------------------------------------------------

    def held_back(self) -> bool:
        """Whether forwarded messages wait: a connected subscriber's queue they feed is
        deep (Broker.deep), and it is not one that was given up on a moment ago."""
        deep = self.broker.deep
        if deep is None:
            return False
        until = self._ignored.get(deep)
        if until is not None and asyncio.get_running_loop().time() < until:
            self.broker.deep = None
            return False
        return True

    def ignore_deep(self, session: Session, until: float) -> None:
        """`session` did not take its messages in time: do not wait for it until `until`."""
        log.info(
            "worker %d: %s/%s does not take its messages; not held back for it",
            self.index,
            *session.key,
        )
        now = asyncio.get_running_loop().time()
        ignored = self._ignored
        for stale in [s for s, t in ignored.items() if t <= now]:
            del ignored[stale]
        ignored[session] = until

    def receive(self, link: InLink, data: bytes, pos: int, limit: int) -> int:
        """Take the whole frames of `data` from `pos` on, at most `limit` of them; where
        the first frame not taken starts."""
        end = len(data)
        publish = self.broker.publish
        shared = self.shared
        now = self.ctx.clock()
        try:
            while end - pos >= HEADER.size and limit > 0:
                limit -= 1
                length, kind = HEADER.unpack_from(data, pos)
                if length < 1 or length > MAX_FRAME:
                    log.error("worker %d: bad frame from a peer, link dropped", self.index)
                    link.drop()
                    return end
                stop: int = pos + 4 + length
                if stop > end:
                    break
                if kind == _FORWARD and link.peer is not None:
                    message, groups, _ = decode_message(data, pos + HEADER.size)
                    self.received += 1
                    # No local `$share` filter in the tenant: no group to leave out.
                    serve = groups if groups or message.tenant in shared else None
                    publish(
                        message,
                        now,
                        count=False,
                        forward=False,
                        serve_groups=serve,
                        watch_depth=True,
                    )
                    if self.broker.deep is not None and self.held_back():
                        return stop  # a subscriber's queue is deep: the link waits
                else:
                    self._control(link, Kind(kind), Reader(data[pos + HEADER.size : stop]))
                pos = stop
        except Exception:
            log.exception("worker %d: bus frame failed, link dropped", self.index)
            link.drop()
            return end
        return pos

    def _control(self, link: InLink, kind: Kind, r: Reader) -> None:
        peer = link.peer
        if kind is Kind.HELLO:
            peer = link.peer = self.peers.get(r.u16())
            if peer is None:
                link.drop()
                return
            peer.forget()
            peer.inbound = link
            if self.remote is not None and peer.index == STREAMS_WORKER:
                self.remote.relinked()
            if r.u8():
                peer.wants_retained = True
                if peer.transport is not None:
                    self._send_retained(peer)
        elif peer is None:
            return
        elif kind is Kind.FILTER:
            tenant, topic_filter, added = r.text(), r.text(), r.u8()
            trie = peer.summary.get(tenant)
            if trie is None:
                trie = peer.summary[tenant] = SubscriptionTrie()
            peer.routes.pop(tenant, None)
            shared = parse_shared(topic_filter)
            inner = topic_filter if shared is None else shared.topic_filter
            if added:
                trie.add(inner, topic_filter, "" if shared is None else topic_filter)
            else:
                trie.remove(inner, topic_filter)
        elif kind is Kind.SYNCED:
            peer.synced = True
            if self.remote is not None and peer.index == STREAMS_WORKER:
                self.remote.synced()
            self._replay(peer)
        elif kind is Kind.RETAINED_DONE:
            self.needs_retained = False
            self._maybe_started()
        elif kind is Kind.CLAIM:
            self.claims.claimed(peer, r.u32(), (r.text(), r.text()), bool(r.u8()))
        elif kind is Kind.CLAIMED:
            self.claims.answered(peer, r.u32(), read_hand_over(r) if r.u8() else None)
        elif kind is Kind.HANDED:
            self.claims.handed((r.text(), r.text()))
        elif kind is Kind.RETAIN:
            self.broker.set_retained(read_message(r))
        elif kind is Kind.CAPTURE and self.streams is not None:
            captured(self.streams, peer, r, self.ctx.clock())
        elif kind is Kind.CAPTURED and self.remote is not None:
            self.remote.answered(r.u32(), bool(r.u8()))
        elif kind is Kind.STREAMS and self.remote is not None:
            self.remote.declared(r)

    def inbound_lost(self, link: InLink) -> None:
        peer = link.peer
        if peer is None or peer.inbound is not link:
            return  # a link the peer has already replaced
        peer.inbound = None
        peer.forget()
        remote = self.remote
        if remote is not None and peer.index == STREAMS_WORKER:
            remote.fail_all("link from worker 0 lost")
        self.claims.peer_lost(peer.index)

    # -- routing -------------------------------------------------------------------------

    def filter_changed(self, tenant: str, topic_filter: str, delta: int) -> None:
        """A local subscription came or went: peers hear of a filter's first and last."""
        key = (tenant, topic_filter)
        count = self.counts.get(key, 0) + delta
        if count > 0:
            self.counts[key] = count
        else:
            self.counts.pop(key, None)
        if (count == 1 and delta > 0) or count == 0:
            if topic_filter.startswith("$share/"):
                groups = self.shared.get(tenant, 0) + (1 if count else -1)
                if groups > 0:
                    self.shared[tenant] = groups
                else:
                    self.shared.pop(tenant, None)
            frame = _filter_frame(tenant, topic_filter, count > 0)
            for peer in self.links:
                peer.send(frame)

    def forward(self, message: Message, local_groups: tuple[str, ...]) -> int:
        """A message published here: once to each peer with a matching subscription (all
        of them for a retained one); each `$share` group not served here goes to exactly
        one peer that has members, told so in the frame. A peer not linked yet gets it
        when it is (held, bounded). Returns how many peers have a subscription it matches
        (a peer not linked yet is not counted)."""
        peers = self.peer_list
        if len(peers) > 1:
            start = next(self._rotate) % len(peers)
            peers = peers[start:] + peers[:start]
        served = set(local_groups)
        waiting: list[Peer] | None = None
        matched = 0
        for peer in peers:
            if peer.synced and peer.transport is not None:
                matched += self._route(peer, message, served)
            elif waiting is None:
                waiting = [peer]
            else:
                waiting.append(peer)
        if waiting is not None:
            for peer in waiting:
                peer.hold(message, served)
        return matched

    def _route(self, peer: Peer, message: Message, served: set[str]) -> bool:
        """Send `message` to `peer` if it has a matching subscription (or the message is
        retained); whether it has one."""
        tenant = message.tenant
        topic = message.topic
        routes = peer.routes.get(tenant)
        if routes is None:
            routes = peer.routes[tenant] = {}
        hit = routes.get(topic)
        if hit is None:
            hit = peer.match(tenant, topic)
            if len(routes) >= ROUTES_MAX:
                routes.clear()
            routes[topic] = hit
        plain, shared = hit
        groups: tuple[str, ...] = ()
        if shared:
            groups = tuple(g for g in shared if g not in served)
            served.update(groups)
        if plain or groups or message.retain:
            peer.send(encode_message(message, groups, _FORWARD))
            self.forwarded += 1
            if peer.paused:
                self._block(peer, message)
        return bool(plain or groups)

    def _replay(self, peer: Peer) -> None:
        """The peer is ready: route what was held for it, in order."""
        if not peer.ready:
            return
        self._maybe_started()
        if not peer.held:
            return
        held = peer.held
        log.info(
            "worker %d: %d messages held for worker %d sent (%d dropped)",
            self.index,
            len(held),
            peer.index,
            peer.dropped,
        )
        peer.held = type(held)()
        peer.dropped = 0
        for message, served in held:
            self._route(peer, message, served)

    # -- flow control --------------------------------------------------------------------

    def link_paused(self, peer: Peer) -> None:
        """The link's write buffer is above the high-water mark: the connections that
        publish into it stop being read until it is below the low-water mark."""
        peer.paused = True
        transport = peer.transport
        peer.most_buffered = 0 if transport is None else transport.get_write_buffer_size()
        log.info(
            "worker %d: link to worker %d paused (%d bytes buffered)",
            self.index,
            peer.index,
            peer.most_buffered,
        )

    def link_resumed(self, peer: Peer) -> None:
        peer.paused = False
        blocked = peer.blocked
        peer.blocked = {}
        log.info(
            "worker %d: link to worker %d resumed (at most %d bytes buffered, %d publishers held)",
            self.index,
            peer.index,
            peer.most_buffered,
            len(blocked),
        )
        for handler in blocked.values():
            # Read again unless another link holds it (or another reason: flow.INPUT_*).
            if not any(p.paused and handler in p.blocked.values() for p in self.peer_list):
                handler.resume_input(INPUT_LINK)

    def _block(self, peer: Peer, message: Message) -> None:
        publisher = message.publisher
        if publisher is None:
            return
        key = (message.tenant, publisher)
        handler = self.ctx.connections.get(key)
        if handler is None:
            return
        if not handler.transport.is_closing():
            handler.pause_input(INPUT_LINK)
            peer.blocked[key] = handler

    def _send_retained(self, peer: Peer) -> None:
        """The whole retained set ($SYS aside) to a worker that has just started."""
        peer.wants_retained = False
        now = self.ctx.clock()
        for index in self.broker.retained.values():
            for topic, message in index.match("#"):
                if not topic.startswith("$") and not message.expired(now):
                    w = Writer(Kind.RETAIN)
                    write_message(w, message)
                    peer.send(w.frame())
        peer.send(Writer(Kind.RETAINED_DONE).frame())

    # -- session claims (roost/cluster/handover.py) --------------------------------------

    async def claim(self, key: SessionKey, clean_start: bool) -> None:
        """A client connects here: see `Claims.claim`."""
        await self.claims.claim(key, clean_start)


def _filter_frame(tenant: str, topic_filter: str, added: bool) -> bytes:
    w = Writer(Kind.FILTER)
    w.text(tenant)
    w.text(topic_filter)
    w.u8(added)
    return w.frame()
