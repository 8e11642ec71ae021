"""The messaging service's core, synchronous and deterministic (time is an input): streams per
tenant, capture through a topic trie, consumer groups (leases, acknowledgements, redelivery,
dead letters, seeks) and retention. Where messages are kept is left to a subclass (memory or
SQLite), which also records what must outlive the process."""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import replace

from roost.core.message import Message
from roost.core.store import Committer
from roost.core.trie import SubscriptionTrie
from roost.errors import InvalidStreamRequest, UnknownGroup, UnknownStream
from roost.streams.groups import Group
from roost.streams.model import (
    MAX_BATCH,
    ROOST_MESSAGE_ID_BASE,
    DeadLetter,
    Delivered,
    Envelope,
    Position,
    StreamSpec,
    StreamStats,
    check_name,
    dlq_name,
)
from roost.streams.state import StreamState, stream_stats

log = logging.getLogger(__name__)

# Consumer groups per stream, streams per tenant.
MAX_GROUPS = 64
MAX_STREAMS = 1000
# Rows looked at per stream and tick by retention.
RETENTION_BATCH = 10_000


class StreamEngine(ABC):
    """Streams, capture and consumer groups; storage through the `_log_*` / `_save_*` hooks."""

    def __init__(self, committer: Committer | None = None) -> None:
        self.committer = committer
        self.streams: dict[tuple[str, str], StreamState] = {}
        # Per tenant: topic filter -> stream name -> stream; absent when nothing is captured.
        self.captures: dict[str, SubscriptionTrie[str, StreamState]] = {}
        # Told when a stream has new messages or a group has room again (wakes consumers).
        self.on_available: Callable[[StreamState], None] | None = None
        self._next_id = 1
        self._roost_ids = itertools.count(ROOST_MESSAGE_ID_BASE)

    # -- storage hooks ------------------------------------------------------------------------

    @abstractmethod
    def _log_append(self, state: StreamState, envelope: Envelope) -> None: ...

    @abstractmethod
    def _log_read(self, state: StreamState, first: int, last: int, limit: int) -> list[Envelope]:
        """Stored envelopes with first <= seq <= last, ascending, at most `limit`."""

    @abstractmethod
    def _log_get(self, state: StreamState, seqs: list[int]) -> dict[int, Envelope]: ...

    @abstractmethod
    def _log_oldest(self, state: StreamState, limit: int) -> list[tuple[int, int, float]]:
        """(seq, size, received_at) of the oldest stored envelopes."""

    @abstractmethod
    def _log_drop_through(self, state: StreamState, seq: int) -> None: ...

    @abstractmethod
    def _log_seq_at(self, state: StreamState, time: float) -> int | None:
        """The first stored seq received at or after `time`."""

    @abstractmethod
    def _save_stream(self, state: StreamState) -> None:
        """The spec and counters of a stream changed."""

    @abstractmethod
    def _delete_stream(self, state: StreamState) -> None: ...

    @abstractmethod
    def _save_group(self, state: StreamState, group: Group, prune: bool) -> None:
        """The group's position changed; `prune`: its rows at or below the committed
        position are no longer needed."""

    @abstractmethod
    def _save_group_seq(
        self, state: StreamState, group: Group, seq: int, acked: bool, deliveries: int
    ) -> None: ...

    @abstractmethod
    def _delete_group(self, state: StreamState, group: Group) -> None: ...

    # -- declaring ------------------------------------------------------------------------------

    def get(self, tenant: str, name: str) -> StreamState:
        state = self.streams.get((tenant, name))
        if state is None:
            raise UnknownStream(f"no stream {name!r}")
        return state

    def list_streams(self, tenant: str) -> list[StreamState]:
        return sorted(
            (s for (t, _), s in self.streams.items() if t == tenant), key=lambda s: s.name
        )

    def declare(self, tenant: str, spec: StreamSpec, now: float) -> StreamState:
        """Create the stream (and its dead-letter stream), or change its spec."""
        spec.validated()
        if spec.is_dlq:
            raise InvalidStreamRequest("names ending in .dlq belong to dead-letter streams")
        state = self.streams.get((tenant, spec.name))
        if state is None:
            if sum(1 for t, _ in self.streams if t == tenant) >= MAX_STREAMS:
                raise InvalidStreamRequest(f"at most {MAX_STREAMS} streams per tenant")
            state = self._create(tenant, spec, now)
        else:
            self._uncapture(state)
            state.spec = spec
            self._save_stream(state)
        self._capture(state)
        dlq = dlq_name(spec.name)
        dlq_spec = replace(spec, name=dlq, topic_filters=())
        dlq_state = self.streams.get((tenant, dlq))
        if dlq_state is None:
            self._create(tenant, dlq_spec, now)
        elif dlq_state.spec != dlq_spec:
            dlq_state.spec = dlq_spec
            self._save_stream(dlq_state)
        return state

    def _create(self, tenant: str, spec: StreamSpec, now: float) -> StreamState:
        state = StreamState(id=self._next_id, tenant=tenant, spec=spec, created_at=now)
        self._next_id += 1
        self.streams[(tenant, spec.name)] = state
        self._save_stream(state)
        return state

    def delete(self, tenant: str, name: str) -> None:
        """Delete a stream, its consumer groups, its messages and its dead-letter stream."""
        state = self.get(tenant, name)
        if state.spec.is_dlq:
            raise InvalidStreamRequest("a dead-letter stream goes with its stream")
        for victim in (state, self.streams.get((tenant, dlq_name(name)))):
            if victim is None:
                continue
            self._uncapture(victim)
            del self.streams[(tenant, victim.name)]
            self._delete_stream(victim)
            if self.on_available is not None:
                self.on_available(victim)

    def add_restored(self, state: StreamState) -> None:
        """A stream loaded from storage."""
        self.streams[(state.tenant, state.name)] = state
        self._next_id = max(self._next_id, state.id + 1)
        self._capture(state)

    def _capture(self, state: StreamState) -> None:
        if not state.spec.topic_filters:
            return
        trie = self.captures.get(state.tenant)
        if trie is None:
            trie = self.captures[state.tenant] = SubscriptionTrie()
        for topic_filter in state.spec.topic_filters:
            trie.add(topic_filter, state.name, state)

    def _uncapture(self, state: StreamState) -> None:
        trie = self.captures.get(state.tenant)
        if trie is None:
            return
        for topic_filter in state.spec.topic_filters:
            trie.remove(topic_filter, state.name)
        if not len(trie):
            del self.captures[state.tenant]

    # -- capture --------------------------------------------------------------------------------

    def capture(self, message: Message, packet_id: int | None, dup: bool, now: float) -> int:
        """Append `message` to every stream of its tenant capturing its topic; returns how many.
        Without a stream in the tenant this is one dictionary look-up."""
        trie = self.captures.get(message.tenant)
        if trie is None:
            return 0
        matches = trie.match(message.topic)
        if not matches:
            return 0
        props = message.properties
        seen: set[str] = set()
        message_id = packet_id if packet_id else next(self._roost_ids)
        for name, state in matches:
            if name in seen:
                continue
            seen.add(name)
            self._append(
                state,
                Envelope(
                    stream=name,
                    seq=0,
                    tenant=message.tenant,
                    topic=message.topic,
                    payload=message.payload,
                    qos=message.qos,
                    retain=message.retain,
                    client_id=message.publisher or "",
                    message_id=message_id,
                    dup=dup,
                    user_properties=props.user_properties,
                    payload_format_indicator=props.payload_format_indicator,
                    content_type=props.content_type,
                    correlation_data=props.correlation_data,
                    response_topic=props.response_topic,
                    received_at=now,
                ),
            )
        return len(seen)

    def _append(self, state: StreamState, envelope: Envelope) -> int:
        state.last_seq += 1
        envelope = replace(envelope, stream=state.name, seq=state.last_seq)
        state.messages += 1
        state.bytes += envelope.size
        self._log_append(state, envelope)
        if self.committer is None:
            self.committed(state, state.last_seq)
        return state.last_seq

    def committed(self, state: StreamState, seq: int) -> None:
        """Messages up to `seq` are durable: consumers may have them."""
        if seq > state.committed_seq:
            state.committed_seq = seq
            if self.on_available is not None:
                self.on_available(state)

    # -- consumer groups ------------------------------------------------------------------------

    def group(self, state: StreamState, name: str, create: bool = True) -> Group:
        group = state.groups.get(name)
        if group is None:
            check_name("group", name)
            if not create:
                raise UnknownGroup(f"no consumer group {name!r} on stream {state.name!r}")
            if len(state.groups) >= MAX_GROUPS:
                raise InvalidStreamRequest(f"at most {MAX_GROUPS} consumer groups per stream")
            group = state.groups[name] = Group(name, state.first_seq)
            self._save_group(state, group, False)
        return group

    def fetch(
        self, tenant: str, stream: str, group_name: str, max_messages: int, now: float
    ) -> list[Delivered]:
        """Up to `max_messages` for one member of the group: leases that ran out first (or to
        the dead-letter stream when they have been delivered max_deliver times), then new ones."""
        if not 1 <= max_messages <= MAX_BATCH:
            raise InvalidStreamRequest(f"max_messages must be 1..{MAX_BATCH}")
        state = self.get(tenant, stream)
        group = self.group(state, group_name)
        spec = state.spec
        out: list[Delivered] = []
        due = self._take_due(state, group, now)
        if due:
            # Redeliveries hold a lease already: only the batch size limits them.
            envelopes = self._log_get(state, due[:max_messages])
            for seq in due[:max_messages]:
                envelope = envelopes.get(seq)
                if envelope is None:  # dropped by retention meanwhile
                    group.settle(seq)
                    continue
                lease = group.lease(seq, now + spec.ack_wait, group.pending[seq].deliveries + 1)
                group.redelivered += 1
                group.persisted.add(seq)
                self._save_group_seq(state, group, seq, False, lease.deliveries)
                out.append(self._delivered(envelope, group, lease.deliveries, lease.deadline))
            for seq in due[max_messages:]:  # beyond this batch: due again at once
                group.postpone(seq, now)
        room = min(max_messages - len(out), spec.max_ack_pending - len(group.pending))
        if group.cursor < state.first_seq:
            group.cursor = state.first_seq
        if room > 0 and group.cursor <= state.committed_seq:
            fresh = self._log_read(state, group.cursor, state.committed_seq, room)
            for envelope in fresh:
                lease = group.lease(envelope.seq, now + spec.ack_wait)
                out.append(self._delivered(envelope, group, 1, lease.deadline))
            if fresh:
                group.cursor = fresh[-1].seq + 1
        group.delivered += len(out)
        if out:
            self._save_group(state, group, False)
        return out

    @staticmethod
    def _delivered(envelope: Envelope, group: Group, deliveries: int, deadline: float) -> Delivered:
        return Delivered(
            envelope=envelope, group=group.name, deliveries=deliveries, ack_deadline=deadline
        )

    def _take_due(self, state: StreamState, group: Group, now: float) -> list[int]:
        """Leases that ran out, less those delivered max_deliver times (dead-lettered now)."""
        due = group.due(now, MAX_BATCH)
        if not due:
            return due
        exhausted = [s for s in due if group.pending[s].deliveries >= state.spec.max_deliver]
        if exhausted:
            self._dead_letter(state, group, exhausted)
            gone = set(exhausted)
            due = [s for s in due if s not in gone]
        return due

    def _dead_letter(self, state: StreamState, group: Group, seqs: list[int]) -> None:
        envelopes = self._log_get(state, seqs)
        dlq = None if state.spec.is_dlq else self.streams.get((state.tenant, dlq_name(state.name)))
        floor = group.committed
        for seq in seqs:
            deliveries = group.pending[seq].deliveries
            group.settle(seq)
            group.dead_lettered += 1
            envelope = envelopes.get(seq)
            if envelope is None:
                continue
            if dlq is None:
                log.warning(
                    "stream %s/%s group %s: message %d dropped after %d deliveries",
                    state.tenant, state.name, group.name, seq, deliveries,
                )  # fmt: skip
                continue
            info = DeadLetter(stream=state.name, group=group.name, seq=seq, deliveries=deliveries)
            self._append(dlq, replace(envelope, dead_letter=info))
        self._settled(state, group, seqs, floor)

    def _settled(self, state: StreamState, group: Group, seqs: Iterable[int], floor: int) -> None:
        """Record settled sequence numbers: the committed position moved, or rows for the
        ones above it."""
        new_floor = group.committed
        for seq in seqs:
            if seq > new_floor:
                group.persisted.add(seq)
                self._save_group_seq(state, group, seq, True, 0)
        if new_floor != floor:
            self._save_group(state, group, self._prune(group))
        if self.on_available is not None:
            self.on_available(state)

    @staticmethod
    def _prune(group: Group) -> bool:
        """Forget rows at or below the committed position; True if there were any."""
        floor = group.committed
        if not any(s <= floor for s in group.persisted):
            return False
        group.persisted = {s for s in group.persisted if s > floor}
        return True

    def ack(self, tenant: str, stream: str, group_name: str, seqs: list[int]) -> int:
        """Acknowledge delivered messages; returns how many were still pending. Acking one
        that is not (settled already, or moved by a seek) is not an error: at-least-once
        consumers may ack twice."""
        state = self.get(tenant, stream)
        group = self.group(state, group_name, create=False)
        self._check_seqs(group, seqs)
        floor = group.committed
        settled = [s for s in dict.fromkeys(seqs) if group.settle(s)]
        group.acked += len(settled)
        if settled:
            self._settled(state, group, settled, floor)
        return len(settled)

    def nack(
        self, tenant: str, stream: str, group_name: str, seqs: list[int], delay: float, now: float
    ) -> int:
        """Give messages back for redelivery after `delay` seconds (a failed attempt: one that
        reached max_deliver goes to the dead-letter stream now)."""
        if not 0 <= delay <= 86400:
            raise InvalidStreamRequest("delay must be 0..86400 seconds")
        state = self.get(tenant, stream)
        group = self.group(state, group_name, create=False)
        self._check_seqs(group, seqs)
        pending = [s for s in dict.fromkeys(seqs) if s in group.pending]
        exhausted = [s for s in pending if group.pending[s].deliveries >= state.spec.max_deliver]
        for seq in pending:
            if seq not in exhausted:
                group.postpone(seq, now + delay)
        group.nacked += len(pending)
        if exhausted:
            self._dead_letter(state, group, exhausted)
        elif pending and self.on_available is not None:
            self.on_available(state)
        return len(pending)

    @staticmethod
    def _check_seqs(group: Group, seqs: list[int]) -> None:
        if not seqs or len(seqs) > MAX_BATCH:
            raise InvalidStreamRequest(f"give 1..{MAX_BATCH} sequence numbers")
        for seq in seqs:
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
                raise InvalidStreamRequest(f"invalid sequence number {seq!r}")

    def seek(self, tenant: str, stream: str, group_name: str, position: Position) -> int:
        """Move a group: deliver from the position on (earlier messages count as settled,
        later ones as never delivered). Returns the next sequence number it will get."""
        state = self.get(tenant, stream)
        check_name("group", group_name)
        if position.seq is not None:
            if position.seq > state.last_seq + 1:
                raise InvalidStreamRequest(
                    f"seq {position.seq} is beyond the end of the stream ({state.last_seq})"
                )
            cursor = max(position.seq, state.first_seq)
        else:
            assert position.time is not None
            found = self._log_seq_at(state, position.time)
            cursor = found if found is not None else state.committed_seq + 1
        group = self.group(state, group_name)
        group.reset(cursor)
        group.persisted.clear()
        self._delete_group(state, group)
        self._save_group(state, group, False)
        if self.on_available is not None:
            self.on_available(state)
        return cursor

    def delete_group(self, tenant: str, stream: str, group_name: str) -> None:
        state = self.get(tenant, stream)
        group = self.group(state, group_name, create=False)
        del state.groups[group_name]
        self._delete_group(state, group)

    def next_deadline(self, tenant: str, stream: str, group_name: str) -> float | None:
        state = self.streams.get((tenant, stream))
        group = None if state is None else state.groups.get(group_name)
        return None if group is None else group.next_deadline()

    # -- retention and time -----------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Retention by age, bytes and count; leases of exhausted messages to the dead letters."""
        for state in list(self.streams.values()):
            for group in state.groups.values():
                self._take_due_exhausted(state, group, now)
            self._retain(state, now)

    def _take_due_exhausted(self, state: StreamState, group: Group, now: float) -> None:
        deadline = group.next_deadline()
        if deadline is None or deadline > now:
            return
        due = group.due(now, MAX_BATCH)
        exhausted = [s for s in due if group.pending[s].deliveries >= state.spec.max_deliver]
        for seq in due:
            if seq not in exhausted:
                group.postpone(seq, group.pending[seq].deadline)  # still due for a fetch
        if exhausted:
            self._dead_letter(state, group, exhausted)

    def _retain(self, state: StreamState, now: float) -> None:
        spec = state.spec
        if not (spec.max_age or spec.max_bytes or spec.max_messages) or not state.messages:
            return
        count, size = state.messages, state.bytes
        upto = 0
        for seq, row_size, received_at in self._log_oldest(state, RETENTION_BATCH):
            if seq < state.first_seq:
                continue  # dropped, the deletion not yet committed
            if seq > state.committed_seq:
                break
            over = (
                (spec.max_messages and count > spec.max_messages)
                or (spec.max_bytes and size > spec.max_bytes)
                or (spec.max_age and received_at < now - spec.max_age)
            )
            if not over:
                break
            upto, count, size = seq, count - 1, size - row_size
        if not upto:
            return
        state.dropped += state.messages - count
        state.messages, state.bytes = count, size
        state.first_seq = upto + 1
        self._log_drop_through(state, upto)
        for group in state.groups.values():
            floor = group.committed
            group.drop_below(state.first_seq)
            if group.committed != floor:
                self._save_group(state, group, self._prune(group))
        self._save_stream(state)

    def stats(self, tenant: str, name: str) -> StreamStats:
        return stream_stats(self.get(tenant, name))
