"""The embedded default store: one SQLite database (WAL) with group commit.

Changes are recorded synchronously as SQL operations in an open batch; one writer thread
commits batches one after the other (each commit is one fsync). While a commit is under
way the next batch fills, so under load many acknowledgements share one fsync. The server
asks `after_commit` to send packets only once what they reveal is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from roost.core.message import Delivery, Message
from roost.core.session import SessionKey, SessionSubscription
from roost.core.store import StoredWill, StoreSnapshot
from roost.errors import StoreError
from roost.store import rows
from roost.store.schema import SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)

Op = tuple[str, tuple[object, ...]]

# How long to wait before trying a failed commit again (e.g. the disk was full).
RETRY_SECONDS = 1.0

# Message rows that nothing references any more: a crash came between the DELETE of the
# last reference and that of the row (the second goes in the next batch). At start-up only.
_SWEEP = (
    "DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries)"
    " AND id NOT IN (SELECT message_id FROM retained)"
    " AND id NOT IN (SELECT message_id FROM wills)"
)
_DELETE_MESSAGE = "DELETE FROM messages WHERE id = ?"
_DELETE_DELIVERY = "DELETE FROM deliveries WHERE id = ?"
# A deleted session's deliveries, at once; the references they held are released once the
# batch is committed (`_release_returned`).
_DELETE_SESSION_DELIVERIES = (
    "DELETE FROM deliveries WHERE tenant = ? AND client_id = ? RETURNING id, message_id"
)

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, tenant, topic, payload, qos, retain, properties, expires_at,"
    " publisher, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, tenant, client_id, message_id, qos, retain,"
    " subscription_identifiers, packet_id, released) VALUES (?,?,?,?,?,?,?,?,0)"
)


class SqliteStore:
    """Sessions, subscriptions, queued and inflight messages, inbound QoS 2 state, retained
    messages and delayed wills in `<data_dir>/roost.db`."""

    durable = True

    def __init__(self, data_dir: str | Path, filename: str = "roost.db") -> None:
        self.path = Path(data_dir) / filename
        self._conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-store")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ops: list[Op] = []
        # Deletions by id, put at the end of the batch (one executemany each): nothing
        # recorded after one can depend on the row, so its place in the batch is free.
        self._dead_deliveries: list[tuple[object, ...]] = []
        self._dead_messages: list[tuple[object, ...]] = []
        # INSERTs of message and delivery rows, put at the start of their segment of the
        # batch (one executemany each). Nothing in a segment can depend on their absence;
        # what could (a session's deliveries deleted at once) ends the segment.
        self._new_messages: list[tuple[object, ...]] = []
        self._new_deliveries: list[tuple[object, ...]] = []
        self._sealed = 0
        self.write_seq = 0
        self.committed_seq = 0
        self.barrier_seq = 0
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._committing = False
        self._commit_scheduled = False
        self.failure: str | None = None
        self.commits = 0
        self.committed_ops = 0
        # Message rows written during this loop turn, by object (kept, so that its id is
        # not reused), so that one message queued for many sessions is stored once; and
        # the other way round, to forget a row whose last reference went meanwhile.
        self._recent: dict[int, tuple[int, Message]] = {}
        self._recent_rows: dict[int, int] = {}
        # References to message rows (deliveries, retained messages, wills): a row absent
        # here has one; the store deletes a row when its last reference goes. A session's
        # deliveries deleted at once release theirs when that deletion is committed.
        self._shared: dict[int, int] = {}
        self._retained_rows: dict[tuple[str, str], int] = {}
        self._will_rows: dict[SessionKey, int] = {}
        # Delivery INSERTs of the open segment: store id -> index in `_new_deliveries`.
        self._pending_inserts: dict[int, int] = {}
        self._next_message_id = 1
        self._next_delivery_id = 1

    # -- opening and loading ---------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the database; refuse a corrupt file or a newer schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=OFF")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable Roost database ({exc}); refusing to start. "
                "Move the file away to start empty, or restore it from a backup."
            ) from exc
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is not open")
        return self._conn

    def load(self) -> StoreSnapshot:
        """Everything stored, as the broker rebuilds it. Queued deliveries are only counted:
        they stay on disk until their session reads them back (a session that never comes
        back costs no memory); deliveries in flight come as objects, to be resent."""
        if self._conn is None:
            self.open()
        conn = self.conn
        # Message rows a crash left without references go first; then the references of
        # the rows that have more than one are counted.
        conn.execute(_SWEEP)
        self._shared = {
            row: count
            for row, count in conn.execute(
                "SELECT message_id, COUNT(*) FROM (SELECT message_id FROM deliveries"
                " UNION ALL SELECT message_id FROM retained UNION ALL SELECT message_id"
                " FROM wills) GROUP BY message_id HAVING COUNT(*) > 1"
            )
        }
        cache: dict[int, Message] = {}
        retained = []
        for row in conn.execute(
            f"SELECT {rows.MESSAGE_COLUMNS} FROM retained r JOIN messages m ON m.id = r.message_id"
        ):
            message = rows.message(cache, row)
            self._retained_rows[(message.tenant, message.topic)] = row[0]
            retained.append(message)
        wills = []
        for row in conn.execute(
            f"SELECT w.tenant, w.client_id, w.due, {rows.MESSAGE_COLUMNS} FROM wills w"
            " JOIN messages m ON m.id = w.message_id"
        ):
            message = rows.message(cache, row[3:])
            self._will_rows[(row[0], row[1])] = row[3]
            wills.append(StoredWill(tenant=row[0], client_id=row[1], due=row[2], message=message))
        sessions = rows.load_sessions(conn, cache)
        self._next_message_id = 1 + (
            conn.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
        )
        self._next_delivery_id = 1 + (
            conn.execute("SELECT MAX(id) FROM deliveries").fetchone()[0] or 0
        )
        return StoreSnapshot(sessions=sessions, retained=retained, wills=wills)

    def load_spilled(self, key: SessionKey, after_id: int, limit: int) -> list[Delivery]:
        """The next queued deliveries of a session that are on disk only (committed ones)."""
        cache: dict[int, Message] = {}
        found = self._reader().execute(
            f"SELECT {rows.DELIVERY_COLUMNS} FROM deliveries d JOIN messages m"
            " ON m.id = d.message_id WHERE d.tenant = ? AND d.client_id = ? AND d.id > ?"
            " AND d.packet_id = 0 ORDER BY d.id LIMIT ?",
            (key[0], key[1], after_id, limit),
        )
        return [rows.delivery(cache, row) for row in found]

    def record(self, sql: str, params: tuple[object, ...], barrier: bool = True) -> int:
        """Record one change of another part's tables (the messaging service) in the open
        batch; returns its seq for `after_commit`."""
        self._add(sql, params, barrier)
        return self.write_seq

    def reader(self) -> sqlite3.Connection:
        """The connection for reads on the event loop: it sees committed changes only."""
        return self._reader()

    def _reader(self) -> sqlite3.Connection:
        """A second connection for reads on the event loop while the writer commits."""
        if self._read_conn is None:
            self._read_conn = sqlite3.connect(self.path, check_same_thread=False)
            self._read_conn.execute("PRAGMA query_only = ON")
        return self._read_conn

    def close(self) -> None:
        """Commit what is pending and close the database."""
        if self._conn is None:
            return
        if self._pending():
            try:
                self._commit(self._take_batch()[0])
            except sqlite3.Error:
                log.exception("final commit failed")
        self._executor.shutdown(wait=True)
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None
        self._conn.close()
        self._conn = None

    # -- group commit ----------------------------------------------------------------------

    def _add(self, sql: str, params: tuple[object, ...], barrier: bool = True) -> None:
        self._ops.append((sql, params))
        self.write_seq += 1
        if barrier:
            self.barrier_seq = self.write_seq
        self._schedule()

    def _defer(self, dead: list[tuple[object, ...]], row: int) -> None:
        """Record the deletion of a row by id (not a barrier), for the end of the batch."""
        dead.append((row,))
        self.write_seq += 1
        self._schedule()

    def _insert(self, new: list[tuple[object, ...]], params: tuple[object, ...]) -> None:
        """Record an INSERT of a message or delivery row (a barrier)."""
        new.append(params)
        self.write_seq += 1
        self.barrier_seq = self.write_seq
        self._schedule()

    def _seal(self) -> None:
        """Put the open segment's INSERTs at its start; begin a new segment."""
        if self._new_messages or self._new_deliveries:
            self._ops[self._sealed : self._sealed] = [
                *((_INSERT_MESSAGE, params) for params in self._new_messages),
                *((_INSERT_DELIVERY, params) for params in self._new_deliveries),
            ]
            self._new_messages = []
            self._new_deliveries = []
            self._pending_inserts.clear()
        self._sealed = len(self._ops)

    def _pending(self) -> bool:
        return bool(
            self._ops
            or self._new_messages
            or self._new_deliveries
            or self._dead_deliveries
            or self._dead_messages
        )

    def _schedule(self) -> None:
        if not self._committing and not self._commit_scheduled:
            loop = self._running_loop()
            if loop is None:
                return  # not serving yet (start-up): committed by the next flush or close
            self._commit_scheduled = True
            loop.call_soon(self._start_commit)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._loop

    def after_commit(self, seq: int, callback: Callable[[], None]) -> None:
        """Run `callback` once every change up to `seq` is committed."""
        if seq <= self.committed_seq:
            callback()
            return
        self._waiters.append((seq, callback))
        if not self._committing and not self._commit_scheduled and self._pending():
            loop = self._running_loop()
            if loop is not None:
                self._commit_scheduled = True
                loop.call_soon(self._start_commit)

    def _take_batch(self) -> tuple[list[Op], int]:
        self._seal()
        batch, self._ops = self._ops, []
        self._sealed = 0
        if self._dead_deliveries:
            batch.extend((_DELETE_DELIVERY, params) for params in self._dead_deliveries)
            self._dead_deliveries = []
        if self._dead_messages:
            batch.extend((_DELETE_MESSAGE, params) for params in self._dead_messages)
            self._dead_messages = []
        self._pending_inserts.clear()
        return batch, self.write_seq

    def _start_commit(self) -> None:
        self._commit_scheduled = False
        if self._committing or not self._pending():
            return
        batch, upto = self._take_batch()
        self._committing = True
        loop = self._running_loop()
        assert loop is not None
        future = self._executor.submit(self._commit, batch)

        def done(f: Future[list[tuple[int, int]]]) -> None:
            loop.call_soon_threadsafe(self._committed, f, batch, upto)

        future.add_done_callback(done)

    def _commit(self, batch: list[Op]) -> list[tuple[int, int]]:
        """In the writer thread: one transaction, one fsync. Returns the (delivery id,
        message row) of the deliveries that deletions of whole sessions took."""
        conn = self.conn
        returned: list[tuple[int, int]] = []
        conn.execute("BEGIN")
        try:
            i = 0
            n = len(batch)
            while i < n:
                sql = batch[i][0]
                j = i + 1
                while j < n and batch[j][0] is sql:
                    j += 1
                if sql is _DELETE_SESSION_DELIVERIES:
                    for _, params in batch[i:j]:
                        returned.extend(conn.execute(sql, params).fetchall())
                elif j - i == 1:
                    conn.execute(sql, batch[i][1])
                else:
                    conn.executemany(sql, [params for _, params in batch[i:j]])
                i = j
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                conn.execute("ROLLBACK")
            raise
        return returned

    def _release_returned(self, batch: list[Op], returned: list[tuple[int, int]]) -> None:
        """Release the references of the deliveries a committed batch deleted with their
        session, but for those it also deleted by id: released when that was recorded."""
        if not returned:
            return
        by_id = {params[0] for sql, params in batch if sql is _DELETE_DELIVERY}
        for delivery_id, row in returned:
            if delivery_id not in by_id:
                self._release(row)

    def _committed(self, future: Future[list[tuple[int, int]]], batch: list[Op], upto: int) -> None:
        self._committing = False
        exc = future.exception()
        if exc is not None:
            # Nothing of the batch is stored: keep it and try again; what waits for it
            # (acknowledgements) keeps waiting. QoS 0 and non-persistent traffic goes on.
            reason = f"store commit failed: {exc}"
            if self.failure != reason:
                log.error(
                    "%s; acknowledgements of durable messages are held until it succeeds", reason
                )
            self.failure = reason
            self._seal()  # later packet ids become UPDATEs
            self._ops[:0] = batch
            self._sealed = len(self._ops)
            loop = self._running_loop()
            if loop is not None:
                self._commit_scheduled = True
                loop.call_later(RETRY_SECONDS, self._start_commit)
            return
        if self.failure is not None:
            log.warning("store commits succeed again")
            self.failure = None
        self.commits += 1
        self.committed_ops += len(batch)
        self.committed_seq = upto
        self._release_returned(batch, future.result())
        waiters = self._waiters
        while waiters and waiters[0][0] <= upto:
            _, callback = waiters.popleft()
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        if self._pending() and not self._commit_scheduled:
            self._start_commit()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything recorded so far is committed (and its waiters ran)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.after_commit(self.write_seq, wake)
        await asyncio.wait_for(done, timeout)

    def flush(self, timeout: float = 30.0) -> None:
        """Commit everything pending, synchronously (start-up, shutdown, tests), and the
        deletions of message rows that this releases."""
        deadline = time.monotonic() + timeout
        while self._committing and time.monotonic() < deadline:
            time.sleep(0.001)
        while self._pending():
            batch, upto = self._take_batch()
            returned = self._commit(batch)
            self.committed_seq = upto
            self._release_returned(batch, returned)

    # -- messages (shared by deliveries, retained and wills) -----------------------------------

    def _message_row(self, message: Message) -> int:
        """The row of `message`, with one more reference (written if it is not yet)."""
        recent = self._recent.get(id(message))
        if recent is not None:
            row = recent[0]
            self._shared[row] = self._shared.get(row, 1) + 1
            return row
        row = self._next_message_id
        self._next_message_id += 1
        if not self._recent:
            loop = self._running_loop()
            if loop is not None:
                loop.call_soon(self._forget_recent)
        self._recent[id(message)] = (row, message)
        self._recent_rows[row] = id(message)
        self._insert(
            self._new_messages,
            (
                row,
                message.tenant,
                message.topic,
                message.payload,
                message.qos,
                int(message.retain),
                rows.encode_props(message.properties),
                message.expires_at,
                message.publisher,
                message.created_at,
            ),
        )
        return row

    def _forget_recent(self) -> None:
        self._recent.clear()
        self._recent_rows.clear()

    def _release(self, row: int) -> None:
        """One reference to a message row is gone: delete the row with its last one."""
        count = self._shared.get(row)
        if count is None:
            self._defer(self._dead_messages, row)
            recent = self._recent_rows.pop(row, None)
            if recent is not None:
                del self._recent[recent]  # no later reference may use the row
        elif count == 2:
            del self._shared[row]
        else:
            self._shared[row] = count - 1

    # -- Store ---------------------------------------------------------------------------------

    def session_saved(
        self,
        key: SessionKey,
        expiry_interval: int,
        disconnected_at: float | None,
        subscriptions: tuple[SessionSubscription, ...],
        device_id: str | None = None,
        subscription_qos: bool = False,
    ) -> None:
        tenant, client_id = key
        self._add(
            "INSERT INTO sessions (tenant, client_id, expiry_interval, disconnected_at,"
            " device_id, subscription_qos) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (tenant, client_id) DO UPDATE SET"
            " expiry_interval = excluded.expiry_interval,"
            " disconnected_at = excluded.disconnected_at, device_id = excluded.device_id,"
            " subscription_qos = excluded.subscription_qos",
            (tenant, client_id, expiry_interval, disconnected_at, device_id, subscription_qos),
        )
        self._add(
            "DELETE FROM subscriptions WHERE tenant = ? AND client_id = ?", (tenant, client_id)
        )
        for sub in subscriptions:
            o = sub.options
            self._add(
                "INSERT INTO subscriptions (tenant, client_id, topic_filter, qos, no_local,"
                " retain_as_published, retain_handling, subscription_identifier)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    tenant,
                    client_id,
                    sub.topic_filter,
                    o.qos,
                    int(o.no_local),
                    int(o.retain_as_published),
                    o.retain_handling,
                    sub.subscription_identifier,
                ),
            )

    def session_deleted(self, key: SessionKey) -> None:
        self._seal()  # deliveries queued before go first, those queued after stay
        for table in ("sessions", "subscriptions", "awaiting_rel"):
            self._add(f"DELETE FROM {table} WHERE tenant = ? AND client_id = ?", key)
        self._add(_DELETE_SESSION_DELIVERIES, key)
        self._seal()
        self.will_deleted(key)

    def retained_set(self, message: Message) -> None:
        row = self._message_row(message)
        self.retained_deleted(message.tenant, message.topic)
        self._add(
            "INSERT INTO retained (tenant, topic, message_id) VALUES (?,?,?)",
            (message.tenant, message.topic, row),
        )
        self._retained_rows[(message.tenant, message.topic)] = row

    def retained_deleted(self, tenant: str, topic: str) -> None:
        self._add("DELETE FROM retained WHERE tenant = ? AND topic = ?", (tenant, topic))
        old = self._retained_rows.pop((tenant, topic), None)
        if old is not None:
            self._release(old)

    # -- Journal -------------------------------------------------------------------------------

    def delivery_queued(self, key: SessionKey, delivery: Delivery) -> int:
        row = self._message_row(delivery.message)
        delivery.store_message = row
        delivery.store_id = self._next_delivery_id
        self._next_delivery_id += 1
        ids = ",".join(str(i) for i in delivery.subscription_identifiers)
        self._pending_inserts[delivery.store_id] = len(self._new_deliveries)
        self._insert(
            self._new_deliveries,
            (delivery.store_id, key[0], key[1], row, delivery.qos, int(delivery.retain), ids, 0),
        )
        return self.write_seq

    def delivery_sent(self, delivery: Delivery) -> None:
        index = self._pending_inserts.get(delivery.store_id)
        if index is not None:
            # Still in the open batch (the usual case for an online subscriber): write the
            # packet id with the INSERT rather than an UPDATE after it.
            params = self._new_deliveries[index]
            self._new_deliveries[index] = (*params[:7], delivery.packet_id)
            self.write_seq += 1
            self.barrier_seq = self.write_seq
            return
        self._add(
            "UPDATE deliveries SET packet_id = ? WHERE id = ?",
            (delivery.packet_id, delivery.store_id),
        )

    def delivery_released(self, delivery: Delivery) -> None:
        self._add("UPDATE deliveries SET released = 1 WHERE id = ?", (delivery.store_id,))

    def delivery_deleted(self, delivery: Delivery) -> None:
        if not delivery.store_id:
            return  # not stored, or an object whose row is on disk only (spilled)
        self._defer(self._dead_deliveries, delivery.store_id)
        delivery.store_id = 0
        if delivery.store_message:
            self._release(delivery.store_message)
            delivery.store_message = 0

    def awaiting_rel_added(self, key: SessionKey, packet_id: int) -> None:
        self._add(
            "INSERT OR REPLACE INTO awaiting_rel (tenant, client_id, packet_id) VALUES (?,?,?)",
            (key[0], key[1], packet_id),
        )

    def awaiting_rel_removed(self, key: SessionKey, packet_id: int) -> None:
        self._add(
            "DELETE FROM awaiting_rel WHERE tenant = ? AND client_id = ? AND packet_id = ?",
            (key[0], key[1], packet_id),
        )

    def will_saved(self, key: SessionKey, message: Message, due: float) -> None:
        row = self._message_row(message)
        self.will_deleted(key)
        self._add(
            "INSERT INTO wills (tenant, client_id, message_id, due) VALUES (?,?,?,?)",
            (key[0], key[1], row, due),
        )
        self._will_rows[key] = row

    def will_deleted(self, key: SessionKey) -> None:
        self._add("DELETE FROM wills WHERE tenant = ? AND client_id = ?", key)
        old = self._will_rows.pop(key, None)
        if old is not None:
            self._release(old)


__all__ = ["SCHEMA_VERSION", "SqliteStore"]
