"""A declared stream as the engine keeps it, and its statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.streams.groups import Group
from roost.streams.model import GroupStats, StreamSpec, StreamStats


@dataclass(slots=True, kw_only=True)
class StreamState:
    """A declared stream as the engine keeps it."""

    id: int
    tenant: str
    spec: StreamSpec
    created_at: float
    first_seq: int = 1
    last_seq: int = 0
    # The last sequence number that is durable (consumers see messages up to it).
    committed_seq: int = 0
    messages: int = 0
    bytes: int = 0
    dropped: int = 0
    groups: dict[str, Group] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


def stream_stats(state: StreamState) -> StreamStats:
    """A stream's settings, counters and groups, as the API shows them."""
    return StreamStats(
        spec=state.spec,
        first_seq=state.first_seq,
        last_seq=state.committed_seq,
        messages=state.messages,
        bytes=state.bytes,
        dropped=state.dropped,
        created_at=state.created_at,
        groups=[
            GroupStats(
                name=g.name,
                committed=g.committed,
                next_seq=g.cursor,
                pending=len(g.pending),
                delivered=g.delivered,
                redelivered=g.redelivered,
                acked=g.acked,
                nacked=g.nacked,
                dead_lettered=g.dead_lettered,
            )
            for g in state.groups.values()
        ],
    )
