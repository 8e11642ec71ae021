"""A session's deliveries deleted at once (by its key) release the message rows they
referenced once that deletion is committed: a row shared with other sessions counts one
reference fewer, a row left without any is deleted, and nothing stays counted in memory.
Deliveries on disk only (spilled), sessions expired at start-up and sessions handed over
(their in-memory deliveries never deleted one by one) are all released this way."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from roost.core.message import Delivery, Message
from roost.store.sqlite import SqliteStore

A = ("t", "a")
B = ("t", "b")
C = ("t", "c")


def message(topic: str = "x") -> Message:
    return Message(tenant="t", topic=topic, payload=b"p", qos=1, created_at=time.time())


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
