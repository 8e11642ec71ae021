"""Streams with worker processes: worker 0 runs the streams; the others know which topics
they capture, send it what they capture (CAPTURE frames) and hold the device's
acknowledgement of a QoS 1/2 message until worker 0 answers that its append is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from roost.cluster.codec import Kind, Reader, Writer, read_message, write_message
from roost.core.message import Message
from roost.core.trie import SubscriptionTrie
from roost.streams.base import PendingCapture

if TYPE_CHECKING:
    from roost.cluster.link import Peer
    from roost.streams.service import LocalStreams

log = logging.getLogger(__name__)

# How long an acknowledgement waits for worker 0's answer before the device gets an error.
CAPTURE_TIMEOUT = 10.0
# The worker that runs the streams (and the HTTP API).
STREAMS_WORKER = 0
# What capture_later answers for a message no stream captures (never settled).
NOT_CAPTURED = PendingCapture(0, 0.0, True)


class RemoteCaptures:
    """A worker k > 0's view of the streams: which topics are captured, per tenant; the
    captures sent to worker 0 and the acknowledgements waiting for its answers. Stands in
    for the StreamStore in the PUBLISH pipeline (`captures`, `capture`, `capture_later`)
    and in the tick."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        # Per tenant: topic filter -> stream name (absent: the tenant captures nothing).
        self.filters: dict[str, SubscriptionTrie[str, str]] = {}
        self.captures: Callable[[str], bool] = self.filters.__contains__
        self.peer: Peer | None = None  # the link to worker 0, once up
        # Worker 0's declarations since it (re)linked, until its SYNCED frame.
        self._incoming: dict[str, SubscriptionTrie[str, str]] | None = None
        self._ids = 0
        # In the order sent (so in the order answered, and of their deadlines).
        self.waiting: dict[int, PendingCapture] = {}
        self.sent = 0

    # -- what worker 0 declares -------------------------------------------------------------

    def declared(self, r: Reader) -> None:
        """A STREAMS frame: the tenant's capturing streams, each with its filters."""
        tenant = r.text()
        trie: SubscriptionTrie[str, str] = SubscriptionTrie()
        for _ in range(r.u32()):
            name = r.text()
            for _ in range(r.u32()):
                trie.add(r.text(), name, name)
        filters = self.filters if self._incoming is None else self._incoming
        if len(trie):
            filters[tenant] = trie
        else:
            filters.pop(tenant, None)

    def relinked(self) -> None:
        """Worker 0 (re)linked to us: its whole set of declarations follows, then SYNCED.
        Until then the ones known are kept: while worker 0 is away a message they capture
        gets an error, never an acknowledgement without its capture."""
        self._incoming = {}

    def synced(self) -> None:
        incoming = self._incoming
        if incoming is not None:
            self._incoming = None
            self.filters.clear()
            self.filters.update(incoming)

    def matches(self, tenant: str, topic: str) -> int:
        trie = self.filters.get(tenant)
        if trie is None:
            return 0
        return len({name for name, _ in trie.match(topic)})

    # -- capturing ---------------------------------------------------------------------------

    def capture(self, message: Message, packet_id: int | None, dup: bool, now: float) -> int:
        """Fire and forget (QoS 0, wills): how many streams capture it, as worker 0 will."""
        count = self.matches(message.tenant, message.topic)
        if count:
            self.send(message, packet_id, dup, 0)
        return count

    def send(self, message: Message, packet_id: int | None, dup: bool, request: int) -> bool:
        """A CAPTURE frame to worker 0 (request 0: no answer wanted); False if not linked."""
        peer = self.peer
        if peer is None or peer.transport is None:
            return False
        w = Writer(Kind.CAPTURE)
        w.u32(request)
        w.u16(packet_id or 0)
        w.u8(dup)
        write_message(w, message)
        peer.send(w.frame())
        self.sent += 1
        return True

    def capture_later(self, message: Message, packet_id: int, dup: bool) -> PendingCapture:
        """Send a QoS 1/2 message to worker 0: its answer settles the PendingCapture the
        acknowledgement waits for (`ok` False at once if worker 0 is not linked)."""
        count = self.matches(message.tenant, message.topic)
        if not count:
            return NOT_CAPTURED
        self._ids = request = (self._ids + 1) & 0xFFFFFFFF or 1
        if not self.send(message, packet_id, dup, request):
            return PendingCapture(count, 0.0, False)
        pending = PendingCapture(count, self.clock() + CAPTURE_TIMEOUT)
        self.waiting[request] = pending
        return pending

    def answered(self, request: int, ok: bool) -> None:
        pending = self.waiting.pop(request, None)
        if pending is not None:
            self._settle(pending, ok)

    def fail_all(self, why: str) -> None:
        if self.waiting:
            log.warning(
                "streams: %d captures not answered by worker 0 (%s)", len(self.waiting), why
            )
        waiting, self.waiting = self.waiting, {}
        for pending in waiting.values():
            self._settle(pending, False)

    def tick(self, now: float) -> None:
        """Captures worker 0 has not answered in CAPTURE_TIMEOUT fail."""
        waiting = self.waiting
        late = []
        for request, pending in waiting.items():
            if pending.deadline > now:
                break
            late.append(request)
        if late:
            log.warning("streams: %d captures not answered by worker 0 in time", len(late))
        for request in late:
            self._settle(waiting.pop(request), False)

    @staticmethod
    def _settle(pending: PendingCapture, ok: bool) -> None:
        pending.ok = ok
        pending.settled()


# -- worker 0 ---------------------------------------------------------------------------------


def streams_frames(streams: LocalStreams, tenants: list[str] | None = None) -> list[bytes]:
    """STREAMS frames: for each tenant (all of those with streams if None), its capturing
    streams and their filters (none: it captures nothing any more)."""
    engine = streams.engine
    by_tenant: dict[str, list[tuple[str, tuple[str, ...]]]] = {t: [] for t in tenants or ()}
    for (tenant, name), state in engine.streams.items():
        if state.spec.topic_filters and (tenants is None or tenant in by_tenant):
            by_tenant.setdefault(tenant, []).append((name, state.spec.topic_filters))
    frames = []
    for tenant, declared in by_tenant.items():
        w = Writer(Kind.STREAMS)
        w.text(tenant)
        w.u32(len(declared))
        for name, filters in declared:
            w.text(name)
            w.u32(len(filters))
            for topic_filter in filters:
                w.text(topic_filter)
        frames.append(w.frame())
    return frames


def captured(streams: LocalStreams, peer: Peer, r: Reader, now: float) -> None:
    """A CAPTURE frame from worker `peer`: appended; answered (if asked) once committed."""
    request = r.u32()
    packet_id = r.u16()
    dup = bool(r.u8())
    message = read_message(r)
    ok = True
    try:
        if streams.captures(message.tenant):
            streams.capture(message, packet_id or None, dup, now)
    except Exception:
        log.exception("streams: capture from worker %d failed", peer.index)
        ok = False
    if not request:
        return
    w = Writer(Kind.CAPTURED)
    w.u32(request)
    w.u8(ok)
    frame = w.frame()
    committer = streams.engine.committer
    if committer is None or not ok:
        peer.send(frame)
    else:
        committer.after_commit(committer.write_seq, lambda: peer.send(frame))
