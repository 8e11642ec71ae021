"""Streams in the embedded SQLite store: appended in the same batches, by the same writer
thread, as the session store's changes, so the commit that an MQTT acknowledgement waits
for also covers the stream append."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from roost.mqtt.constants import PacketType
from roost.mqtt.packets import Properties
from roost.mqtt.properties import encode_properties
from roost.store.rows import decode_props
from roost.store.sqlite import SqliteStore
from roost.streams.engine import StreamEngine
from roost.streams.groups import Group, Lease
from roost.streams.model import DeadLetter, Envelope, StreamSpec
from roost.streams.state import StreamState

log = logging.getLogger(__name__)

_COLUMNS = (
    "seq, topic, payload, qos, retain, client_id, message_id, dup, properties, received_at,"
    " dead_letter"
)
_INSERT = (
    "INSERT INTO stream_messages (stream_id, seq, topic, payload, qos, retain, client_id,"
    " message_id, dup, properties, received_at, size, dead_letter)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SAVE_GROUP = (
    "INSERT INTO stream_groups (stream_id, name, floor, cursor) VALUES (?,?,?,?)"
    " ON CONFLICT (stream_id, name) DO UPDATE SET floor = excluded.floor,"
    " cursor = excluded.cursor"
)
_SAVE_GROUP_SEQ = (
    "INSERT INTO stream_group_seqs (stream_id, name, seq, acked, deliveries) VALUES (?,?,?,?,?)"
    " ON CONFLICT (stream_id, name, seq) DO UPDATE SET acked = excluded.acked,"
    " deliveries = MAX(deliveries, excluded.deliveries)"
)


def _encode_props(e: Envelope) -> bytes | None:
    if not (
        e.user_properties
        or e.payload_format_indicator is not None
        or e.content_type is not None
        or e.correlation_data is not None
        or e.response_topic is not None
    ):
        return None
    props = Properties(
        payload_format_indicator=e.payload_format_indicator,
        content_type=e.content_type,
        response_topic=e.response_topic,
        correlation_data=e.correlation_data,
        user_properties=e.user_properties,
    )
    return encode_properties(props, PacketType.PUBLISH)


class SqliteStreamEngine(StreamEngine):
    """Envelopes in `stream_messages`; streams and group positions beside them."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(committer=store)
        self.store = store
        # Appends not yet committed: (change seq, stream, stream seq), in order.
        self._uncommitted: deque[tuple[int, StreamState, int]] = deque()
        self._waiting = False

    # -- loading ------------------------------------------------------------------------------

    def load(self, now: float) -> None:
        """Streams and consumer groups from the database. Messages delivered and not
        acknowledged before the restart are due for redelivery at once."""
        conn = self.store.reader()
        for sid, tenant, spec_json, created_at, first_seq, dropped in conn.execute(
            "SELECT id, tenant, spec, created_at, first_seq, dropped FROM streams ORDER BY id"
        ):
            raw = json.loads(spec_json)
            raw["topic_filters"] = tuple(raw.get("topic_filters", ()))
            state = StreamState(
                id=sid, tenant=tenant, spec=StreamSpec(**raw), created_at=created_at
            )
            count, size, last = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MAX(seq) FROM stream_messages"
                " WHERE stream_id = ?",
                (sid,),
            ).fetchone()
            state.first_seq = first_seq
            state.dropped = dropped
            state.last_seq = state.committed_seq = max(last or 0, first_seq - 1)
            state.messages, state.bytes = count, size
            self._load_groups(conn, state, now)
            self.add_restored(state)

    def _load_groups(self, conn: Any, state: StreamState, now: float) -> None:
        rows: dict[str, dict[int, tuple[bool, int]]] = {}
        for name, seq, acked, deliveries in conn.execute(
            "SELECT name, seq, acked, deliveries FROM stream_group_seqs WHERE stream_id = ?",
            (state.id,),
        ):
            rows.setdefault(name, {})[seq] = (bool(acked), deliveries)
        for name, floor, cursor in conn.execute(
            "SELECT name, floor, cursor FROM stream_groups WHERE stream_id = ?", (state.id,)
        ):
            group = Group(name, cursor)
            seqs = rows.get(name, {})
            for seq in range(floor + 1, cursor):
                acked, deliveries = seqs.get(seq, (False, 1))
                if not acked:
                    group.lease(seq, now, max(deliveries, 1))
            group.persisted = {s for s in seqs if s > floor}
            state.groups[name] = group

    # -- the log ------------------------------------------------------------------------------

    def _log_append(self, state: StreamState, envelope: Envelope) -> None:
        dead = envelope.dead_letter
        change = self.store.record(
            _INSERT,
            (
                state.id,
                envelope.seq,
                envelope.topic,
                envelope.payload,
                envelope.qos,
                int(envelope.retain),
                envelope.client_id,
                envelope.message_id,
                int(envelope.dup),
                _encode_props(envelope),
                envelope.received_at,
                envelope.size,
                None if dead is None else json.dumps(asdict(dead)),
            ),
            # What a QoS 1/2 acknowledgement reveals; QoS 0 holds up no output.
            envelope.qos > 0 or dead is not None,
        )
        self._uncommitted.append((change, state, envelope.seq))
        if not self._waiting:
            self._waiting = True
            self.store.after_commit(change, self._on_commit)

    def _on_commit(self) -> None:
        """A commit finished: the appends it covered become visible to consumers."""
        self._waiting = False
        done = self.store.committed_seq
        pending = self._uncommitted
        newest: dict[int, tuple[StreamState, int]] = {}
        while pending and pending[0][0] <= done:
            _, state, seq = pending.popleft()
            newest[state.id] = (state, seq)
        for state, seq in newest.values():
            self.committed(state, seq)
        if pending:
            self._waiting = True
            self.store.after_commit(pending[-1][0], self._on_commit)

    def _envelope(self, state: StreamState, row: Sequence[Any]) -> Envelope:
        props = decode_props(row[8])
        dead = None if row[10] is None else DeadLetter(**json.loads(row[10]))
        return Envelope(
            stream=state.name,
            seq=row[0],
            tenant=state.tenant,
            topic=row[1],
            payload=bytes(row[2]),
            qos=row[3],
            retain=bool(row[4]),
            client_id=row[5],
            message_id=row[6],
            dup=bool(row[7]),
            user_properties=props.user_properties,
            payload_format_indicator=props.payload_format_indicator,
            content_type=props.content_type,
            correlation_data=props.correlation_data,
            response_topic=props.response_topic,
            received_at=row[9],
            dead_letter=dead,
        )

    def _log_read(self, state: StreamState, first: int, last: int, limit: int) -> list[Envelope]:
        rows = self.store.reader().execute(
            f"SELECT {_COLUMNS} FROM stream_messages WHERE stream_id = ? AND seq >= ?"
            " AND seq <= ? ORDER BY seq LIMIT ?",
            (state.id, first, last, limit),
        )
        return [self._envelope(state, row) for row in rows]

    def _log_get(self, state: StreamState, seqs: list[int]) -> dict[int, Envelope]:
        out: dict[int, Envelope] = {}
        reader = self.store.reader()
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in reader.execute(
                f"SELECT {_COLUMNS} FROM stream_messages WHERE stream_id = ? AND seq IN ({marks})",
                (state.id, *chunk),
            ):
                out[row[0]] = self._envelope(state, row)
        return out

    def _log_oldest(self, state: StreamState, limit: int) -> list[tuple[int, int, float]]:
        return list(
            self.store.reader().execute(
                "SELECT seq, size, received_at FROM stream_messages WHERE stream_id = ?"
                " ORDER BY seq LIMIT ?",
                (state.id, limit),
            )
        )

    def _log_drop_through(self, state: StreamState, seq: int) -> None:
        self.store.record(
            "DELETE FROM stream_messages WHERE stream_id = ? AND seq <= ?", (state.id, seq), False
        )

    def _log_seq_at(self, state: StreamState, time: float) -> int | None:
        row = (
            self.store.reader()
            .execute(
                "SELECT MIN(seq) FROM stream_messages WHERE stream_id = ? AND received_at >= ?",
                (state.id, time),
            )
            .fetchone()
        )
        return None if row is None or row[0] is None else max(int(row[0]), state.first_seq)

    # -- streams and groups -------------------------------------------------------------------

    def _save_stream(self, state: StreamState) -> None:
        spec = asdict(state.spec)
        spec["topic_filters"] = list(state.spec.topic_filters)
        self.store.record(
            "INSERT INTO streams (id, tenant, name, spec, created_at, first_seq, dropped)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET spec = excluded.spec,"
            " first_seq = excluded.first_seq, dropped = excluded.dropped",
            (
                state.id,
                state.tenant,
                state.name,
                json.dumps(spec),
                state.created_at,
                state.first_seq,
                state.dropped,
            ),
            False,
        )

    def _delete_stream(self, state: StreamState) -> None:
        for table, column in (
            ("streams", "id"),
            ("stream_messages", "stream_id"),
            ("stream_groups", "stream_id"),
            ("stream_group_seqs", "stream_id"),
        ):
            self.store.record(f"DELETE FROM {table} WHERE {column} = ?", (state.id,), False)

    def _save_group(self, state: StreamState, group: Group, prune: bool) -> None:
        floor = group.committed
        self.store.record(_SAVE_GROUP, (state.id, group.name, floor, group.cursor), False)
        if prune:
            self.store.record(
                "DELETE FROM stream_group_seqs WHERE stream_id = ? AND name = ? AND seq <= ?",
                (state.id, group.name, floor),
                False,
            )

    def _save_group_seq(
        self, state: StreamState, group: Group, seq: int, acked: bool, deliveries: int
    ) -> None:
        self.store.record(
            _SAVE_GROUP_SEQ, (state.id, group.name, seq, int(acked), deliveries), False
        )

    def _delete_group(self, state: StreamState, group: Group) -> None:
        for table in ("stream_groups", "stream_group_seqs"):
            self.store.record(
                f"DELETE FROM {table} WHERE stream_id = ? AND name = ?",
                (state.id, group.name),
                False,
            )


__all__ = ["Lease", "SqliteStreamEngine"]
