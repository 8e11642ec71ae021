"""The stream engines (memory and SQLite) with a fake clock: append, consumer groups, acks,
visibility-timeout redelivery, nack, dead letters, seek, retention, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.core.message import Message
from roost.errors import InvalidStreamRequest, UnknownGroup, UnknownStream
from roost.mqtt.packets import Properties
from roost.store.sqlite import SqliteStore
from roost.streams.engine import StreamEngine
from roost.streams.memory import MemoryStreamEngine
from roost.streams.model import ROOST_MESSAGE_ID_BASE, Position, StreamSpec
from roost.streams.sqlite import SqliteStreamEngine

T = "acme"


class Harness:
    """An engine and the means to commit its changes and to restart it (SQLite)."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.store: SqliteStore | None = None
        self.engine: StreamEngine = self._open(0.0)

    def _open(self, now: float) -> StreamEngine:
        if self.kind == "memory":
            return MemoryStreamEngine()
        self.store = SqliteStore(self.data_dir)
        self.store.load()
        engine = SqliteStreamEngine(self.store)
        engine.load(now)
        return engine

    def commit(self) -> None:
        if isinstance(self.engine, SqliteStreamEngine):
            assert self.store is not None
            self.store.flush()
            self.engine._on_commit()

    def restart(self, now: float) -> StreamEngine:
        """kill -9 and start again: what was committed is all there is."""
        assert self.store is not None
        self.store._ops.clear()  # never committed
        self.store.close()
        self.engine = self._open(now)
        return self.engine

    def publish(self, topic: str, payload: bytes, now: float = 0.0, **kw: object) -> int:
        message = Message(
            tenant=kw.pop("tenant", T),  # type: ignore[arg-type]
            topic=topic,
            payload=payload,
            qos=kw.pop("qos", 1),  # type: ignore[arg-type]
            publisher=kw.pop("publisher", "dev-1"),  # type: ignore[arg-type]
            properties=kw.pop("properties", Properties()),  # type: ignore[arg-type]
            created_at=now,
        )
        packet_id = kw.pop("packet_id", 7)
        n = self.engine.capture(message, packet_id, bool(kw.pop("dup", False)), now)  # type: ignore[arg-type]
        self.commit()
        return n


@pytest.fixture(params=["memory", "sqlite"])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(request.param, tmp_path)
    yield harness
    if harness.store is not None:
        harness.store.close()


def declare(h: Harness, name: str = "telemetry", **kw: object) -> None:
    spec = StreamSpec(name=name, topic_filters=kw.pop("filters", ("dev/+/up",)), **kw)  # type: ignore[arg-type]
    h.engine.declare(T, spec, 0.0)
    h.commit()


def seqs(batch: list) -> list[int]:  # type: ignore[type-arg]
    return [d.envelope.seq for d in batch]


def test_capture_appends_the_envelope_field_by_field(h: Harness) -> None:
    declare(h)
    props = Properties(
        payload_format_indicator=1,
        content_type="application/json",
        response_topic="dev/1/down",
        correlation_data=b"\x00\x01",
        user_properties=(("a", "1"), ("a", "2"), ("b", "x")),
    )
    assert h.publish("dev/1/up", b"{}", 12.5, properties=props, packet_id=42, dup=True) == 1
    [d] = h.engine.fetch(T, "telemetry", "g", 10, 13.0)
    e = d.envelope
    assert (e.stream, e.seq, e.tenant, e.topic, e.payload) == ("telemetry", 1, T, "dev/1/up", b"{}")
    assert (e.qos, e.retain, e.client_id, e.message_id, e.dup) == (1, False, "dev-1", 42, True)
    assert e.user_properties == (("a", "1"), ("a", "2"), ("b", "x"))
    assert e.payload_format_indicator == 1 and e.content_type == "application/json"
    assert e.correlation_data == b"\x00\x01" and e.response_topic == "dev/1/down"
    assert e.received_at == 12.5 and d.deliveries == 1 and d.ack_deadline == 43.0


def test_qos0_gets_a_roost_message_id_and_topics_not_captured_are_not(h: Harness) -> None:
    declare(h, filters=("dev/+/up", "dev/#"))
    assert h.publish("dev/1/up", b"a", qos=0, packet_id=None) == 1  # two filters, one append
    assert h.publish("other/1", b"b") == 0
    assert h.publish("dev/1/up", b"c", tenant="someone-else") == 0
    assert h.engine.captures.keys() == {T}
    batch = h.engine.fetch(T, "telemetry", "g", 10, 0.0)
    assert seqs(batch) == [1]
    assert batch[0].envelope.message_id >= ROOST_MESSAGE_ID_BASE


def test_uncommitted_appends_are_not_given_to_consumers(h: Harness) -> None:
    if h.kind == "memory":
        pytest.skip("memory appends are visible at once")
    declare(h)
    h.engine.capture(Message(tenant=T, topic="dev/1/up", payload=b"x"), 1, False, 0.0)
    assert h.engine.fetch(T, "telemetry", "g", 10, 0.0) == []
    h.commit()
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 0.0)) == [1]


def test_members_of_a_group_share_the_work_and_groups_are_independent(h: Harness) -> None:
    declare(h)
    for i in range(5):
        h.publish("dev/1/up", b"%d" % i)
    first = h.engine.fetch(T, "telemetry", "workers", 2, 0.0)
    second = h.engine.fetch(T, "telemetry", "workers", 10, 0.0)
    assert seqs(first) == [1, 2] and seqs(second) == [3, 4, 5]
    assert h.engine.fetch(T, "telemetry", "workers", 10, 1.0) == []
    assert seqs(h.engine.fetch(T, "telemetry", "audit", 10, 1.0)) == [1, 2, 3, 4, 5]


def test_unacknowledged_messages_come_back_after_the_visibility_timeout(h: Harness) -> None:
    declare(h, ack_wait=10.0)
    for i in range(3):
        h.publish("dev/1/up", b"%d" % i)
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 0.0)) == [1, 2, 3]
    assert h.engine.ack(T, "telemetry", "g", [2]) == 1
    assert h.engine.fetch(T, "telemetry", "g", 10, 9.99) == []
    again = h.engine.fetch(T, "telemetry", "g", 10, 10.0)
    assert seqs(again) == [1, 3] and [d.deliveries for d in again] == [2, 2]
    assert h.engine.ack(T, "telemetry", "g", [1, 3, 3]) == 2
    assert h.engine.fetch(T, "telemetry", "g", 10, 100.0) == []
    g = h.engine.stats(T, "telemetry").groups[0]
    assert (g.committed, g.pending, g.acked, g.redelivered) == (3, 0, 3, 2)


def test_committed_position_waits_for_the_oldest_unacknowledged(h: Harness) -> None:
    declare(h)
    for i in range(4):
        h.publish("dev/1/up", b"%d" % i)
    h.engine.fetch(T, "telemetry", "g", 10, 0.0)
    h.engine.ack(T, "telemetry", "g", [2, 3])
    assert h.engine.stats(T, "telemetry").groups[0].committed == 0
    h.engine.ack(T, "telemetry", "g", [1])
    assert h.engine.stats(T, "telemetry").groups[0].committed == 3


def test_nack_with_delay(h: Harness) -> None:
    declare(h, ack_wait=30.0)
    h.publish("dev/1/up", b"x")
    h.engine.fetch(T, "telemetry", "g", 1, 0.0)
    assert h.engine.nack(T, "telemetry", "g", [1], 5.0, 1.0) == 1
    assert h.engine.fetch(T, "telemetry", "g", 1, 5.9) == []
    [d] = h.engine.fetch(T, "telemetry", "g", 1, 6.0)
    assert d.deliveries == 2


def test_dead_letter_after_max_deliver_failed_attempts(h: Harness) -> None:
    declare(h, ack_wait=10.0, max_deliver=2)
    h.publish("dev/1/up", b"poison")
    h.publish("dev/1/up", b"fine")
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 0.0)) == [1, 2]
    h.engine.ack(T, "telemetry", "g", [2])
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 10.0)) == [1]  # attempt 2
    assert h.engine.fetch(T, "telemetry", "g", 10, 20.0) == []  # exhausted: dead-lettered
    h.commit()
    stats = h.engine.stats(T, "telemetry")
    assert stats.groups[0].dead_lettered == 1 and stats.groups[0].committed == 2
    [d] = h.engine.fetch(T, "telemetry.dlq", "ops", 10, 21.0)
    assert d.envelope.payload == b"poison" and d.envelope.stream == "telemetry.dlq"
    dead = d.envelope.dead_letter
    assert dead is not None
    assert (dead.stream, dead.group, dead.seq, dead.deliveries) == ("telemetry", "g", 1, 2)


def test_nack_of_the_last_attempt_dead_letters_at_once(h: Harness) -> None:
    declare(h, max_deliver=1)
    h.publish("dev/1/up", b"x")
    h.engine.fetch(T, "telemetry", "g", 1, 0.0)
    h.engine.nack(T, "telemetry", "g", [1], 0.0, 0.0)
    h.commit()
    assert h.engine.stats(T, "telemetry.dlq").last_seq == 1
    assert h.engine.fetch(T, "telemetry", "g", 1, 100.0) == []


def test_tick_dead_letters_expired_leases_without_a_fetch(h: Harness) -> None:
    declare(h, ack_wait=5.0, max_deliver=1)
    h.publish("dev/1/up", b"x")
    h.engine.fetch(T, "telemetry", "g", 1, 0.0)
    h.engine.tick(4.0)
    assert h.engine.stats(T, "telemetry").groups[0].dead_lettered == 0
    h.engine.tick(5.0)
    assert h.engine.stats(T, "telemetry").groups[0].dead_lettered == 1


def test_max_ack_pending_bounds_what_a_group_holds(h: Harness) -> None:
    declare(h, max_ack_pending=2)
    for i in range(4):
        h.publish("dev/1/up", b"%d" % i)
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 0.0)) == [1, 2]
    assert h.engine.fetch(T, "telemetry", "g", 10, 0.0) == []
    h.engine.ack(T, "telemetry", "g", [1])
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 0.0)) == [3]


def test_seek_to_a_sequence_number_and_to_a_time(h: Harness) -> None:
    declare(h)
    for i in range(5):
        h.publish("dev/1/up", b"%d" % i, now=100.0 + i)
    h.engine.fetch(T, "telemetry", "g", 10, 200.0)
    h.engine.ack(T, "telemetry", "g", [1, 2, 3, 4, 5])
    assert h.engine.seek(T, "telemetry", "g", Position(seq=2)) == 2
    h.commit()
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 200.0)) == [2, 3, 4, 5]
    assert h.engine.seek(T, "telemetry", "g", Position(time=103.0)) == 4
    assert seqs(h.engine.fetch(T, "telemetry", "g", 10, 200.0)) == [4, 5]
    assert h.engine.seek(T, "telemetry", "g", Position(time=999.0)) == 6
    assert h.engine.seek(T, "telemetry", "g", Position(seq=6)) == 6


def test_bad_requests_are_refused_and_change_nothing(h: Harness) -> None:
    declare(h)
    h.publish("dev/1/up", b"x")
    with pytest.raises(InvalidStreamRequest):
        h.engine.seek(T, "telemetry", "g", Position(seq=3))
    with pytest.raises(InvalidStreamRequest):
        Position(seq=0)
    with pytest.raises(InvalidStreamRequest):
        Position(seq=1, time=1.0)
    with pytest.raises(UnknownStream):
        h.engine.fetch(T, "nope", "g", 1, 0.0)
    with pytest.raises(InvalidStreamRequest):
        h.engine.fetch(T, "telemetry", "g", 1001, 0.0)
    with pytest.raises(InvalidStreamRequest):
        h.engine.fetch(T, "telemetry", "bad name", 1, 0.0)
    with pytest.raises(UnknownGroup):
        h.engine.ack(T, "telemetry", "never", [1])
    for bad in (
        StreamSpec(name="x.y"),
        StreamSpec(name="x", topic_filters=("a/#/b",)),
        StreamSpec(name="x", topic_filters=("$share/g/a",)),
        StreamSpec(name="x", max_deliver=0),
        StreamSpec(name="x", ack_wait=0),
        StreamSpec(name="x.dlq"),
    ):
        with pytest.raises(InvalidStreamRequest):
            h.engine.declare(T, bad, 0.0)
    assert [s.name for s in h.engine.list_streams(T)] == ["telemetry", "telemetry.dlq"]
    assert h.engine.stats(T, "telemetry").groups == []
    assert seqs(h.engine.fetch(T, "telemetry", "g", 1, 0.0)) == [1]


def test_retention_by_count_bytes_and_age_counts_what_it_drops(h: Harness) -> None:
    declare(h, max_messages=3)
    for i in range(5):
        h.publish("dev/1/up", b"x" * 36, now=float(i))  # size 36 + 8 + 64 = 108
    h.engine.fetch(T, "telemetry", "slow", 1, 0.0)  # holds seq 1
    h.engine.tick(10.0)
    h.commit()
    s = h.engine.stats(T, "telemetry")
    assert (s.first_seq, s.last_seq, s.messages, s.dropped) == (3, 5, 3, 2)
    assert s.groups[0].committed == 2 and s.groups[0].pending == 0
    assert seqs(h.engine.fetch(T, "telemetry", "slow", 10, 10.0)) == [3, 4, 5]
    h.engine.declare(
        T, StreamSpec(name="telemetry", topic_filters=("dev/+/up",), max_bytes=220), 0.0
    )
    h.engine.tick(10.0)
    h.commit()
    assert h.engine.stats(T, "telemetry").messages == 2
    h.engine.declare(T, StreamSpec(name="telemetry", topic_filters=("dev/+/up",), max_age=7.5), 0.0)
    h.engine.tick(11.0)
    h.commit()
    s = h.engine.stats(T, "telemetry")
    assert (s.first_seq, s.messages, s.dropped) == (5, 1, 4)
    assert seqs(h.engine.fetch(T, "telemetry", "new", 10, 11.0)) == [5]


def test_delete_takes_the_dead_letter_stream_and_stops_capture(h: Harness) -> None:
    declare(h)
    h.engine.delete(T, "telemetry")
    assert h.engine.list_streams(T) == [] and h.engine.captures == {}
    assert h.publish("dev/1/up", b"x") == 0
    with pytest.raises(UnknownStream):
        h.engine.delete(T, "telemetry")


def test_sqlite_restart_keeps_streams_positions_and_delivery_counts(tmp_path: Path) -> None:
    h = Harness("sqlite", tmp_path)
    declare(h, ack_wait=10.0)
    for i in range(6):
        h.publish("dev/1/up", b"%d" % i)
    h.engine.fetch(T, "telemetry", "g", 3, 0.0)
    h.engine.fetch(T, "telemetry", "g", 6, 10.0)  # 1..3 again (2nd delivery), 4..6 first
    h.engine.ack(T, "telemetry", "g", [2, 5])
    h.commit()
    h.engine.ack(T, "telemetry", "g", [1])  # not committed: lost with the crash
    engine = h.restart(20.0)
    batch = engine.fetch(T, "telemetry", "g", 10, 20.0)
    assert seqs(batch) == [1, 3, 4, 6]
    assert [d.deliveries for d in batch] == [3, 3, 2, 2]
    engine.ack(T, "telemetry", "g", seqs(batch))
    h.commit()
    engine = h.restart(30.0)
    assert engine.fetch(T, "telemetry", "g", 10, 100.0) == []
    assert engine.stats(T, "telemetry").groups[0].committed == 6
    assert h.publish("dev/1/up", b"new") == 1
    assert seqs(engine.fetch(T, "telemetry", "g", 10, 100.0)) == [7]
    assert h.store is not None
    h.store.close()


def test_sqlite_sequence_numbers_continue_after_retention_emptied_the_stream(
    tmp_path: Path,
) -> None:
    h = Harness("sqlite", tmp_path)
    declare(h, max_age=1.0)
    h.publish("dev/1/up", b"a", now=0.0)
    h.publish("dev/1/up", b"b", now=0.0)
    h.engine.tick(5.0)
    h.commit()
    engine = h.restart(6.0)
    s = engine.stats(T, "telemetry")
    assert (s.first_seq, s.messages, s.dropped) == (3, 0, 2)
    h.publish("dev/1/up", b"c", now=6.0)
    assert seqs(engine.fetch(T, "telemetry", "g", 10, 6.0)) == [3]
    assert h.store is not None
    h.store.close()
