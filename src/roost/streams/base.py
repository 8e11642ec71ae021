"""The `StreamStore` interface: what the server and the HTTP API ask of the messaging service.

Implemented here by `LocalStreams` over the memory or SQLite engine; a NATS JetStream backend
(cluster mode) implements the same Protocol. Capture is synchronous (it runs inside the MQTT
PUBLISH pipeline, and the acknowledgement to the device waits for the store's commit through
the `Committer`); everything a consumer asks is a coroutine."""

from __future__ import annotations

from typing import Protocol

from roost.core.message import Message
from roost.streams.model import Delivered, Position, StreamSpec, StreamStats


class StreamCapture(Protocol):
    """What the PUBLISH pipeline asks: the streams themselves, or (worker processes > 0)
    the capture forwarded to the worker that runs them (roost/cluster/captures.py)."""

    def captures(self, tenant: str) -> bool:
        """Whether any stream of `tenant` captures topics (the hot path's one check)."""
        ...

    def capture(self, message: Message, packet_id: int | None, dup: bool, now: float) -> int:
        """Append `message` to every stream capturing its topic; returns how many."""
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
