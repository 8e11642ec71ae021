"""One consumer group's position in a stream: what it was given, what it still owes an
acknowledgement for, and when each lease runs out. Synchronous; time comes in as `now`."""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class Lease:
    """A message delivered to a member of the group and not yet acknowledged."""

    deadline: float
    deliveries: int


class Group:
    """A named consumer group: the next sequence number never delivered (`cursor`) and the
    leases of messages delivered and not acknowledged (`pending`).

    Every sequence number below `cursor` that is not pending is settled (acknowledged, dead-
    lettered or dropped), so the committed position is the lowest pending one minus one.
    `pending` is kept in ascending order of sequence numbers (they are added in that order),
    so that lowest one is its first key."""

    __slots__ = (
        "_timeouts",
        "acked",
        "cursor",
        "dead_lettered",
        "delivered",
        "nacked",
        "name",
        "pending",
        "persisted",
        "redelivered",
    )

    def __init__(self, name: str, cursor: int) -> None:
        self.name = name
        self.cursor = cursor
        self.pending: dict[int, Lease] = {}
        self._timeouts: list[tuple[float, int]] = []
        # Sequence numbers above the committed position that have a row in a durable store.
        self.persisted: set[int] = set()
        self.delivered = 0
        self.redelivered = 0
        self.acked = 0
        self.nacked = 0
        self.dead_lettered = 0

    @property
    def committed(self) -> int:
        for seq in self.pending:
            return seq - 1
        return self.cursor - 1

    def lease(self, seq: int, deadline: float, deliveries: int = 1) -> Lease:
        """Record a delivery of `seq` (new ones must come in ascending order)."""
        lease = self.pending.get(seq)
        if lease is None:
            lease = self.pending[seq] = Lease(deadline, deliveries)
        else:
            lease.deadline = deadline
            lease.deliveries = deliveries
        heapq.heappush(self._timeouts, (deadline, seq))
        return lease

    def postpone(self, seq: int, deadline: float) -> None:
        """A nack: `seq` may be given out again from `deadline` on."""
        lease = self.pending[seq]
        lease.deadline = deadline
        heapq.heappush(self._timeouts, (deadline, seq))

    def settle(self, seq: int) -> bool:
        """Acknowledged, dead-lettered or gone: no longer owed. False if it was not pending."""
        return self.pending.pop(seq, None) is not None

    def due(self, now: float, limit: int) -> list[int]:
        """Up to `limit` pending sequence numbers whose lease ran out, earliest deadline first."""
        out: list[int] = []
        timeouts = self._timeouts
        pending = self.pending
        while timeouts and len(out) < limit:
            deadline, seq = timeouts[0]
            lease = pending.get(seq)
            if lease is None or lease.deadline != deadline:
                heapq.heappop(timeouts)  # stale: settled or given a new deadline since
                continue
            if deadline > now:
                break
            heapq.heappop(timeouts)
            out.append(seq)
        return out

    def next_deadline(self) -> float | None:
        """When the earliest lease runs out (None: nothing pending)."""
        timeouts = self._timeouts
        pending = self.pending
        while timeouts:
            deadline, seq = timeouts[0]
            lease = pending.get(seq)
            if lease is not None and lease.deadline == deadline:
                return deadline
            heapq.heappop(timeouts)
        return None

    def reset(self, cursor: int) -> None:
        """A seek: forget every lease; deliver from `cursor` on."""
        self.cursor = cursor
        self.pending.clear()
        self._timeouts.clear()

    def drop_below(self, first_seq: int) -> None:
        """Retention removed every message below `first_seq`: leases on them end."""
        for seq in [s for s in self.pending if s < first_seq]:
            del self.pending[seq]
        if self.cursor < first_seq:
            self.cursor = first_seq
