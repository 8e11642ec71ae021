"""The SQLite store deletes a message row with its last reference (delivery, retained
message, will), sweeps rows left without one at start-up, and migrates a v3 database.

A session's deliveries deleted at once (by its key) release the rows they referenced once
that deletion is committed: a row shared with other sessions counts one reference fewer, a
row left without any is deleted, and nothing stays counted in memory. Deliveries on disk
only (spilled), sessions expired at start-up and sessions handed over (their in-memory
deliveries never deleted one by one) are all released this way."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from roost.core.message import Delivery, Message
from roost.store.schema import MIGRATIONS, SCHEMA_VERSION, apply_migrations
from roost.store.sqlite import SqliteStore

A = ("t", "a")
B = ("t", "b")
C = ("t", "c")


def message(topic: str = "x", retain: bool = False) -> Message:
    return Message(
        tenant="t",
        topic=topic,
        payload=b"p",
        qos=1,
        retain=retain,
        created_at=time.time(),
    )


def opened(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    store.open()
    store.load()
    return store


def message_ids(path: Path) -> list[int]:
    with sqlite3.connect(path / "roost.db") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM messages ORDER BY id")]


def queue(store: SqliteStore, key: tuple[str, str], m: Message) -> Delivery:
    delivery = Delivery(message=m, qos=1, retain=False)
    store.delivery_queued(key, delivery)
    return delivery


def test_row_shared_by_two_deliveries_goes_with_the_last(tmp_path: Path) -> None:
    store = opened(tmp_path)
    m = message()
    first, second = queue(store, A, m), queue(store, B, m)
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    store.delivery_deleted(first)
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    store.delivery_deleted(second)
    store.flush()
    assert message_ids(tmp_path) == []
    store.close()


def test_retained_message_keeps_its_row_after_its_delivery(tmp_path: Path) -> None:
    store = opened(tmp_path)
    m = message(retain=True)
    store.retained_set(m)
    delivery = queue(store, A, m)
    store.delivery_deleted(delivery)
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    store.close()
    store = opened(tmp_path)  # the count of references comes back from the file
    assert [r.payload for r in store.load().retained] == [b"p"]
    before = message_ids(tmp_path)
    replacement = message(retain=True)
    store.retained_set(replacement)
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    assert message_ids(tmp_path) != before  # the replaced message's row went
    store.retained_deleted("t", "x")
    store.flush()
    assert message_ids(tmp_path) == []
    store.close()


def test_replaced_and_deleted_wills_release_their_rows(tmp_path: Path) -> None:
    store = opened(tmp_path)
    store.will_saved(A, message("will/1"), due=time.time() + 60)
    store.will_saved(A, message("will/2"), due=time.time() + 60)
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    store.will_deleted(A)
    store.flush()
    assert message_ids(tmp_path) == []
    store.close()


def test_shared_rows_are_counted_again_after_restart(tmp_path: Path) -> None:
    store = opened(tmp_path)
    m = message()
    queue(store, A, m)
    queue(store, B, m)
    store.close()
    store = opened(tmp_path)
    sessions = {(s.tenant, s.client_id): s for s in store.load().sessions}
    assert not sessions  # deliveries without a session row are not loaded as sessions
    page_a = store.load_spilled(A, 0, 10)
    page_b = store.load_spilled(B, 0, 10)
    store.delivery_deleted(page_a[0])
    store.flush()
    assert len(message_ids(tmp_path)) == 1
    store.delivery_deleted(page_b[0])
    store.flush()
    assert message_ids(tmp_path) == []
    store.close()


def test_deleted_session_rows_are_swept_at_start_up(tmp_path: Path) -> None:
    store = opened(tmp_path)
    store.session_saved(A, 3600, None, ())
    queue(store, A, message("one"))
    queue(store, A, message("two"))
    kept = queue(store, B, message("three"))
    store.flush()
    store.session_deleted(A)
    store.close()
    assert len(message_ids(tmp_path)) == 3  # no sweep outside the event loop
    store = opened(tmp_path)
    assert message_ids(tmp_path) == [kept.store_message]
    store.close()


def test_v3_database_migrates_and_loses_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "roost.db", isolation_level=None)
    apply_migrations(conn, MIGRATIONS[:3])
    conn.executescript(
        """
        INSERT INTO sessions (tenant, client_id, expiry_interval, disconnected_at)
            VALUES ('t', 'a', 3600, NULL);
        INSERT INTO messages (id, tenant, topic, payload, qos, retain, created_at)
            VALUES (1, 't', 'q', X'01', 1, 0, 0), (2, 't', 'r', X'02', 1, 1, 0),
                   (3, 't', 'orphan', X'03', 1, 0, 0);
        INSERT INTO deliveries (id, tenant, client_id, message_id, qos, retain,
            subscription_identifiers, packet_id, released) VALUES
            (1, 't', 'a', 1, 1, 0, '', 0, 0), (2, 't', 'a', 2, 1, 0, '', 7, 0);
        INSERT INTO retained (tenant, topic, message_id) VALUES ('t', 'r', 2);
        """
    )
    conn.close()
    store = opened(tmp_path)
    snapshot = store.load()
    version = store.conn.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 4
    names = {row[0] for row in store.conn.execute("SELECT name FROM sqlite_master")}
    assert "deliveries_release" not in names and "deliveries_by_message" not in names
    assert message_ids(tmp_path) == [1, 2]  # the orphan is swept
    [session] = snapshot.sessions
    assert session.spilled == 1
    assert [d.packet_id for d in session.deliveries] == [7]
    assert [m.topic for m in snapshot.retained] == ["r"]
    inflight = session.deliveries[0]
    store.delivery_deleted(inflight)  # the retained message still holds row 2
    [queued] = store.load_spilled(A, 0, 10)
    store.delivery_deleted(queued)
    store.flush()
    assert message_ids(tmp_path) == [2]
    store.close()


def test_deleting_a_session_keeps_deliveries_queued_after_it_in_the_same_batch(
    tmp_path: Path,
) -> None:
    store = opened(tmp_path)
    store.session_saved(A, 3600, None, ())
    queue(store, A, message("before"))
    store.session_deleted(A)
    store.session_saved(A, 3600, None, ())
    after = queue(store, A, message("after"))
    store.close()  # one batch, committed at close
    store = opened(tmp_path)
    [session] = store.load().sessions
    assert session.spilled == 1
    assert [d.message.topic for d in store.load_spilled(A, 0, 10)] == ["after"]
    assert after.store_message in message_ids(tmp_path)
    store.close()


def test_packet_id_written_with_the_insert_or_after_it(tmp_path: Path) -> None:
    store = opened(tmp_path)
    store.session_saved(A, 3600, None, ())
    early = queue(store, A, message("early"))
    early.packet_id = 5
    store.delivery_sent(early)  # still in the open batch: rewritten into the INSERT
    store.flush()
    late = queue(store, A, message("late"))
    store.flush()
    late.packet_id = 6
    store.delivery_sent(late)  # committed already: an UPDATE
    store.close()
    store = opened(tmp_path)
    [session] = store.load().sessions
    assert [(d.message.topic, d.packet_id) for d in session.deliveries] == [
        ("early", 5),
        ("late", 6),
    ]
    store.close()


def test_session_deleted_by_key_releases_its_share_of_a_row(tmp_path: Path) -> None:
    store = opened(tmp_path)
    m = message()
    store.session_saved(A, 3600, None, ())
    queue(store, A, m)  # never deleted by id: it goes with its session
    kept = queue(store, B, m)
    store.flush()
    row = kept.store_message
    assert store._shared == {row: 2}
    store.session_deleted(A)
    store.flush()
    assert row not in store._shared  # one reference left: not counted in memory
    assert message_ids(tmp_path) == [row]
    store.delivery_deleted(kept)
    store.flush()
    assert message_ids(tmp_path) == [] and store._shared == {}
    store.close()


def test_a_delivery_deleted_by_id_and_with_its_session_is_released_once(
    tmp_path: Path,
) -> None:
    """The broker deletes a session's in-memory deliveries one by one, then the session:
    both deletions take the same row in one batch; its reference goes once."""
    store = opened(tmp_path)
    m = message()
    a, b, c = queue(store, A, m), queue(store, B, m), queue(store, C, m)
    store.flush()
    row = a.store_message
    store.delivery_deleted(a)
    store.session_deleted(A)
    store.flush()
    assert store._shared == {row: 2}
    store.delivery_deleted(b)
    store.flush()
    assert message_ids(tmp_path) == [row]  # c still holds it
    store.delivery_deleted(c)
    store.flush()
    assert message_ids(tmp_path) == [] and store._shared == {}
    store.close()


def test_spilled_and_expired_sessions_release_rows_read_back_at_start_up(
    tmp_path: Path,
) -> None:
    """After a restart the counts come from the file; deliveries that are on disk only
    (never loaded as objects) go with their session and release their rows."""
    store = opened(tmp_path)
    shared, own = message("shared"), message("own")
    for key in (A, B):
        store.session_saved(key, 3600, None, ())
        queue(store, key, shared)
    queue(store, A, own)
    store.close()
    store = opened(tmp_path)
    assert len(store._shared) == 1
    store.session_deleted(A)  # as the broker does for a session expired at start-up
    store.flush()
    assert store._shared == {}
    [page] = store.load_spilled(B, 0, 10)
    assert message_ids(tmp_path) == [page.store_message]
    store.delivery_deleted(page)
    store.flush()
    assert message_ids(tmp_path) == []
    store.close()


def test_session_deletion_on_the_event_loop_releases_after_the_commit(
    tmp_path: Path,
) -> None:
    """Serving: the deletion of a session whose deliveries were never deleted one by one
    (handed over to another worker) releases their rows when it is committed; a row that
    a crash left without references is not looked for then, only at start-up."""
    store = opened(tmp_path)
    with sqlite3.connect(tmp_path / "roost.db") as conn:
        conn.execute(
            "INSERT INTO messages (id, tenant, topic, payload, qos, retain, created_at)"
            " VALUES (1000, 't', 'orphan', X'00', 1, 0, 0)"
        )
    store._next_message_id = 1001

    async def serve() -> None:
        m = message()
        queue(store, A, m)
        kept = queue(store, B, m)
        queue(store, A, message("only a"))
        await store.drain()
        assert store._shared == {kept.store_message: 2}
        store.session_deleted(A)
        await store.drain()  # the deletion; the rows it left unreferenced go next
        await store.drain()
        assert store._shared == {}
        assert message_ids(tmp_path) == [1000, kept.store_message]

    asyncio.run(serve())
    store.close()
    store = opened(tmp_path)
    assert len(message_ids(tmp_path)) == 1  # the orphan is swept at start-up
    store.close()
