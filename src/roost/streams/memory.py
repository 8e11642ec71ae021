"""Streams kept in this process (`durability = "memory"`): nothing survives a restart."""

from __future__ import annotations

import bisect
from collections import deque

from roost.streams.engine import StreamEngine
from roost.streams.groups import Group
from roost.streams.model import Envelope
from roost.streams.state import StreamState


class MemoryStreamEngine(StreamEngine):
    """Each stream's envelopes in a deque, in sequence order."""

    def __init__(self) -> None:
        super().__init__(committer=None)
        self._logs: dict[int, deque[Envelope]] = {}

    def _log(self, state: StreamState) -> deque[Envelope]:
        log = self._logs.get(state.id)
        if log is None:
            log = self._logs[state.id] = deque()
        return log

    def _index(self, log: deque[Envelope], seq: int) -> int:
        """Position of `seq` in `log` (sequence numbers are consecutive from the first)."""
        return seq - log[0].seq if log else 0

    def _log_append(self, state: StreamState, envelope: Envelope) -> None:
        self._log(state).append(envelope)

    def _log_read(self, state: StreamState, first: int, last: int, limit: int) -> list[Envelope]:
        log = self._log(state)
        if not log:
            return []
        start = max(0, self._index(log, first))
        stop = min(len(log), self._index(log, last) + 1, start + limit)
        return [log[i] for i in range(start, stop)]

    def _log_get(self, state: StreamState, seqs: list[int]) -> dict[int, Envelope]:
        log = self._log(state)
        out: dict[int, Envelope] = {}
        for seq in seqs:
            i = self._index(log, seq)
            if 0 <= i < len(log):
                out[seq] = log[i]
        return out

    def _log_oldest(self, state: StreamState, limit: int) -> list[tuple[int, int, float]]:
        log = self._log(state)
        return [
            (e.seq, e.size, e.received_at) for e in (log[i] for i in range(min(limit, len(log))))
        ]

    def _log_drop_through(self, state: StreamState, seq: int) -> None:
        log = self._log(state)
        while log and log[0].seq <= seq:
            log.popleft()

    def _log_seq_at(self, state: StreamState, time: float) -> int | None:
        log = self._log(state)
        i = bisect.bisect_left(log, time, key=lambda e: e.received_at)
        return log[i].seq if i < len(log) else None

    def _delete_stream(self, state: StreamState) -> None:
        self._logs.pop(state.id, None)

    # Positions and specs live only in the engine's own objects.

    def _save_stream(self, state: StreamState) -> None:
        return None

    def _save_group(self, state: StreamState, group: Group, prune: bool) -> None:
        return None

    def _save_group_seq(
        self, state: StreamState, group: Group, seq: int, acked: bool, deliveries: int
    ) -> None:
        return None

    def _delete_group(self, state: StreamState, group: Group) -> None:
        return None
