"""The two ends of a bus link: frames queued for a peer and written once per loop turn
(with write-side flow control), and the incoming byte stream cut into frames."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

from roost.cluster.codec import HEADER
from roost.core.message import Message
from roost.core.session import SessionKey
from roost.core.trie import SubscriptionTrie

if TYPE_CHECKING:
    from roost.cluster.bus import LocalBus
    from roost.server.handler import ConnectionHandler

# A link whose write buffer passes HIGH_WATER bytes pauses the connections publishing into
# it; they read again once the buffer is back under LOW_WATER (as TCP backpressure would).
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024
# Messages held for a peer whose link is not up yet (start, restart); the oldest go first.
HOLD_MAX = 10_000
# Frames a link's reader takes per loop turn (the rest waits for the next turn).
FRAMES_PER_TURN = 256
# Behind a deep subscriber queue (core/broker.DEEP_QUEUE) a link's reader looks again
# every DEEP_WAIT seconds and goes on once the queue is down to DRAINED_QUEUE (or a
# quarter of its limit).
DEEP_WAIT = 0.002
DRAINED_QUEUE = 250
# A subscriber whose deep queue does not shrink for DEEP_PATIENCE seconds (it takes
# nothing) is not waited for during the next DEEP_IGNORE seconds: its own queue limit
# applies, and the other sessions' messages flow.
DEEP_PATIENCE = 2.0
DEEP_IGNORE = 10.0
# Topics whose match against a peer's summary is remembered, per tenant (then forgotten).
ROUTES_MAX = 4096


class Peer:
    """Another worker: the link we send on, and the filters its sessions subscribe to."""

    __slots__ = (
        "blocked",
        "dropped",
        "held",
        "inbound",
        "index",
        "loop",
        "most_buffered",
        "out",
        "paused",
        "routes",
        "summary",
        "synced",
        "transport",
        "wants_retained",
    )

    def __init__(self, index: int, loop: asyncio.AbstractEventLoop) -> None:
        self.index = index
        self.loop = loop
        self.transport: asyncio.WriteTransport | None = None
        self.inbound: InLink | None = None  # the peer's link to us
        # Per tenant: filter -> "" for plain subscriptions, the full `$share/g/f` for groups.
        self.summary: dict[str, SubscriptionTrie[str, str]] = {}
        # Per tenant, topic -> (a plain subscription matches, the `$share` groups that do);
        # dropped whenever the tenant's summary changes.
        self.routes: dict[str, dict[str, tuple[bool, tuple[str, ...]]]] = {}
        # The peer's whole summary has arrived (SYNCED) and not been lost since.
        self.synced = False
        self.wants_retained = False
        self.out: list[bytes] = []
        # The link's write buffer is above the high-water mark.
        self.paused = False
        self.most_buffered = 0
        # Publishing connections whose input is paused for this link.
        self.blocked: dict[SessionKey, ConnectionHandler] = {}
        # Messages for the peer until it is ready: each with the `$share` groups already
        # served (a set shared with the other peers holding the same message).
        self.held: deque[tuple[Message, set[str]]] = deque()
        self.dropped = 0

    @property
    def ready(self) -> bool:
        """Messages can be routed to the peer: our link is up and its summary is known."""
        return self.synced and self.transport is not None

    def match(self, tenant: str, topic: str) -> tuple[bool, tuple[str, ...]]:
        """Whether the peer has a plain subscription matching `topic`, and its groups."""
        trie = self.summary.get(tenant)
        if trie is None:
            return False, ()
        plain = False
        groups: list[str] = []
        for _, group in trie.match(topic):
            if group:
                groups.append(group)
            else:
                plain = True
        return plain, tuple(groups)

    def forget(self) -> None:
        """The peer's summary is gone (it restarts, or its link to us is lost)."""
        self.summary.clear()
        self.routes.clear()
        self.synced = False

    def send(self, frame: bytes) -> None:
        """Queue a frame; the frames of one loop turn go out in one write."""
        if self.transport is None:
            return
        out = self.out
        if not out:
            self.loop.call_soon(self.flush)
        out.append(frame)

    def flush(self) -> None:
        out = self.out
        if not out:
            return
        self.out = []
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.paused:
            self.most_buffered = max(self.most_buffered, transport.get_write_buffer_size())

    def hold(self, message: Message, served: set[str]) -> None:
        held = self.held
        if len(held) >= HOLD_MAX:
            held.popleft()
            self.dropped += 1
        held.append((message, served))


class OutLink(asyncio.Protocol):
    """Our sending end of a link (the peer never writes on it: EOF when it goes)."""

    def __init__(self, bus: LocalBus, peer: Peer) -> None:
        self.bus = bus
        self.peer = peer
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).set_write_buffer_limits(HIGH_WATER, LOW_WATER)

    def pause_writing(self) -> None:
        self.bus.link_paused(self.peer)

    def resume_writing(self) -> None:
        self.bus.link_resumed(self.peer)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class InLink(asyncio.Protocol):
    """A peer's link to us: the stream cut into frames, at most FRAMES_PER_TURN of them
    per loop turn. With more in hand, reading stops until the next turn: this worker's own
    connections are served in between, and a peer that sends faster than this worker
    delivers fills its write buffer, which pauses the peer's publishers (write-side flow
    control above) instead of this worker's subscriber queues overflowing."""

    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.peer: Peer | None = None
        self.transport: asyncio.Transport | None = None
        self.rest = bytearray()
        self.need = 0  # bytes `rest` must reach before a frame can be taken
        # Read but not taken yet (a later turn takes it), from where; reading is paused
        # while `waiting`.
        self.pending = b""
        self.offset = 0
        self.waiting = False
        # Since when a deep subscriber queue has not shrunk below `deep_depth` (None: not
        # waiting for one).
        self.deep_since: float | None = None
        self.deep_depth = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        rest = self.rest
        if rest:
            rest += data
            if len(rest) < self.need:
                return
            data = bytes(rest)
            rest.clear()
        self._take(data, 0)

    def _take(self, data: bytes, pos: int) -> None:
        end = len(data)
        bus = self.bus
        if not bus.held_back():
            pos = bus.receive(self, data, pos, FRAMES_PER_TURN)
        need = HEADER.size
        if end - pos >= HEADER.size:
            need = HEADER.unpack_from(data, pos)[0] + 4
        if end - pos >= need or bus.held_back():
            # Whole frames left (the next loop turn takes them) or a subscriber's queue
            # is deep (a later turn, once it is drained): no reading meanwhile.
            if not self.waiting and self.transport is not None:
                self.waiting = True
                self.transport.pause_reading()
                asyncio.get_running_loop().call_soon(self._next_turn)
            self.pending, self.offset = data, pos
            return
        if pos < end:
            self.rest = bytearray(data[pos:])
            self.need = need

    def _next_turn(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            self.pending = b""
            return
        bus = self.bus
        deep = bus.broker.deep
        if deep is not None and bus.held_back():
            depth = len(deep.queue) + deep.spilled
            if deep.connected and depth > min(DRAINED_QUEUE, deep.max_queued_messages // 4):
                # Wait until its subscriber has taken most of it; meanwhile the peer's
                # write buffer fills and its flow control pauses its publishers. A
                # subscriber that does not take its messages is not waited for long.
                now = asyncio.get_running_loop().time()
                if self.deep_since is None or depth < self.deep_depth:
                    self.deep_since, self.deep_depth = now, depth  # it makes progress
                if now - self.deep_since < DEEP_PATIENCE:
                    asyncio.get_running_loop().call_later(DEEP_WAIT, self._next_turn)
                    return
                bus.ignore_deep(deep, now + DEEP_IGNORE)
            bus.broker.deep = None
        self.deep_since = None
        data, pos = self.pending, self.offset
        self.pending = b""
        self.waiting = False
        self._take(data, pos)
        if not self.waiting:
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.bus.inbound_lost(self)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.close()
