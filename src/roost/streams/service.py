"""`LocalStreams`: the StreamStore of a single node, over the memory or SQLite engine. Adds
what needs the event loop: consumers waiting for messages, and answers that wait for the
commit of what they changed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from roost.core.message import Message
from roost.errors import InvalidStreamRequest
from roost.store.commit import committed
from roost.streams.base import PendingCapture
from roost.streams.engine import StreamEngine
from roost.streams.model import Delivered, Position, StreamSpec, StreamStats
from roost.streams.state import StreamState

log = logging.getLogger(__name__)

# The longest a fetch may wait for its first message.
MAX_WAIT = 60.0
# How often retention runs and leases that ran out for the last time are dead-lettered.
TICK_SECONDS = 1.0


class LocalStreams:
    """A StreamStore for one node."""

    def __init__(self, engine: StreamEngine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._waiters: dict[int, set[asyncio.Future[None]]] = {}
        self._next_tick = 0.0
        # Told the tenant whose streams were declared or deleted (the bus tells the other
        # worker processes which topics are captured, docs/workers.md).
        self.on_declared: Callable[[str], None] | None = None
        engine.on_available = self._wake
        # Whether a tenant has a stream capturing topics: asked for every PUBLISH, so the
        # engine's own dictionary answers it (it is never replaced), without a method of ours.
        self.captures: Callable[[str], bool] = engine.captures.__contains__

    # -- capture (synchronous, inside the PUBLISH pipeline) -------------------------------

    def capture(self, message: Message, packet_id: int | None, dup: bool, now: float) -> int:
        return self.engine.capture(message, packet_id, dup, now)

    def capture_later(self, message: Message, packet_id: int, dup: bool) -> PendingCapture | None:
        return None  # captured here: capture()

    def load(self, now: float) -> None:
        load = getattr(self.engine, "load", None)
        if load is not None:
            load(now)

    def start(self, now: float, specs: list[StreamSpec], tenants: list[str]) -> None:
        """Load what is stored, then declare the configured streams (`[[streams]]`)."""
        self.load(now)
        for spec, tenant in zip(specs, tenants, strict=True):
            self.engine.declare(tenant, spec, now)
        log.info("streams: %d declared", len(self.engine.streams))

    def tick(self, now: float) -> None:
        """Retention and dead letters, at most once per TICK_SECONDS."""
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_SECONDS
        self.engine.tick(now)

    # -- administration ---------------------------------------------------------------------

    async def declare(self, tenant: str, spec: StreamSpec) -> StreamStats:
        state = self.engine.declare(tenant, spec, self.clock())
        if self.on_declared is not None:
            self.on_declared(tenant)
        await self._durable()
        return self.engine.stats(tenant, state.name)

    async def delete(self, tenant: str, name: str) -> None:
        self.engine.delete(tenant, name)
        if self.on_declared is not None:
            self.on_declared(tenant)
        await self._durable()

    def list_streams(self, tenant: str) -> list[StreamStats]:
        return [self.engine.stats(tenant, s.name) for s in self.engine.list_streams(tenant)]

    def stats(self, tenant: str, name: str) -> StreamStats:
        return self.engine.stats(tenant, name)

    # -- consuming ----------------------------------------------------------------------------

    async def fetch(
        self, tenant: str, stream: str, group: str, max_messages: int, wait: float
    ) -> list[Delivered]:
        if not 0 <= wait <= MAX_WAIT:
            raise InvalidStreamRequest(f"wait must be 0..{MAX_WAIT:g} seconds")
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        while True:
            got = self.engine.fetch(tenant, stream, group, max_messages, self.clock())
            if got:
                # Recorded as delivered before the consumer sees it: an ack that comes after
                # a restart still finds it pending.
                await self._durable()
                return got
            left = until - loop.time()
            if left <= 0:
                return got
            deadline = self.engine.next_deadline(tenant, stream, group)
            if deadline is not None:
                left = min(left, max(0.0, deadline - self.clock()) + 0.001)
            await self._wait(self.engine.get(tenant, stream), left)

    async def ack(self, tenant: str, stream: str, group: str, seqs: list[int]) -> int:
        count = self.engine.ack(tenant, stream, group, seqs)
        await self._durable()
        return count

    async def nack(
        self, tenant: str, stream: str, group: str, seqs: list[int], delay: float
    ) -> int:
        count = self.engine.nack(tenant, stream, group, seqs, delay, self.clock())
        await self._durable()
        return count

    async def seek(self, tenant: str, stream: str, group: str, position: Position) -> int:
        cursor = self.engine.seek(tenant, stream, group, position)
        await self._durable()
        return cursor

    async def delete_group(self, tenant: str, stream: str, group: str) -> None:
        self.engine.delete_group(tenant, stream, group)
        await self._durable()

    # -- waiting -------------------------------------------------------------------------------

    def _wake(self, state: StreamState) -> None:
        for future in self._waiters.pop(state.id, ()):
            if not future.done():
                future.set_result(None)

    async def _wait(self, state: StreamState, timeout: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(state.id, set())
        waiters.add(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            waiters.discard(future)

    async def _durable(self) -> None:
        """Return once every change recorded so far is committed."""
        await committed(self.engine.committer)
