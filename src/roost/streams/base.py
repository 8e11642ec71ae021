"""The `StreamStore` interface: what the server and the HTTP API ask of the messaging service.

Implemented here by `LocalStreams` over the memory or SQLite engine; a NATS JetStream backend
(cluster mode) implements the same Protocol. Capture is synchronous (it runs inside the MQTT
PUBLISH pipeline, and the acknowledgement to the device waits for the store's commit through
the `Committer`); everything a consumer asks is a coroutine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from roost.core.message import Message
from roost.streams.model import Delivered, Position, StreamSpec, StreamStats


def _unheard() -> None:
    pass


class PendingCapture:
    """A QoS 1/2 message's capture that another process answers (worker processes > 0:
    worker 0 runs the streams): `count` streams capture it; `ok` is None until the answer
    (False: not captured, the answer cannot come or did not in time), then `settled()`
    runs (whoever holds the device's acknowledgement sets it)."""

    __slots__ = ("count", "deadline", "ok", "settled")

    def __init__(self, count: int, deadline: float, ok: bool | None = None) -> None:
        self.count = count
        self.deadline = deadline
        self.ok = ok
        self.settled: Callable[[], None] = _unheard


class StreamCapture(Protocol):
    """What the PUBLISH pipeline asks: the streams themselves, or (worker processes > 0)
    the capture forwarded to the worker that runs them (roost/cluster/captures.py)."""

    def captures(self, tenant: str) -> bool:
        """Whether any stream of `tenant` captures topics (the hot path's one check)."""
        ...

    def capture(self, message: Message, packet_id: int | None, dup: bool, now: float) -> int:
        """Append `message` to every stream capturing its topic; returns how many."""
        ...

    def capture_later(self, message: Message, packet_id: int, dup: bool) -> PendingCapture | None:
        """A QoS 1/2 message captured by another process: sent there, and what its
        acknowledgement waits for (`count` 0: no stream captures it). None when `capture`
        captures it here, at once (the streams themselves)."""
        ...

    def tick(self, now: float) -> None:
        """Retention, and dead letters for leases that ran out for the last time."""
        ...


class StreamStore(StreamCapture, Protocol):
    """Streams of every tenant, their consumer groups and their envelopes."""

    def load(self, now: float) -> None: ...

    async def declare(self, tenant: str, spec: StreamSpec) -> StreamStats: ...

    async def delete(self, tenant: str, name: str) -> None: ...

    def list_streams(self, tenant: str) -> list[StreamStats]: ...

    def stats(self, tenant: str, name: str) -> StreamStats: ...

    async def fetch(
        self, tenant: str, stream: str, group: str, max_messages: int, wait: float
    ) -> list[Delivered]:
        """Up to `max_messages` for one member of `group`, waiting up to `wait` seconds for
        the first one."""
        ...

    async def ack(self, tenant: str, stream: str, group: str, seqs: list[int]) -> int:
        """Acknowledge; durable when it returns. Returns how many were pending."""
        ...

    async def nack(
        self, tenant: str, stream: str, group: str, seqs: list[int], delay: float
    ) -> int: ...

    async def seek(self, tenant: str, stream: str, group: str, position: Position) -> int: ...

    async def delete_group(self, tenant: str, stream: str, group: str) -> None: ...
