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
from roost.core.store import StoredSession, StoredWill, StoreSnapshot
from roost.errors import StoreError
from roost.mqtt.constants import PacketType
from roost.mqtt.packets import NO_PROPERTIES, Properties, Subscription
from roost.mqtt.properties import encode_properties, read_properties
from roost.store.schema import SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)

Op = tuple[str, tuple[object, ...]]

# How long to wait before trying a failed commit again (e.g. the disk was full).
RETRY_SECONDS = 1.0

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, tenant, topic, payload, qos, retain, properties, expires_at,"
    " publisher, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, tenant, client_id, message_id, qos, retain,"
    " subscription_identifiers, packet_id, released) VALUES (?,?,?,?,?,?,?,0,0)"
)


def _encode_props(props: Properties) -> bytes | None:
    return None if props is NO_PROPERTIES else encode_properties(props, PacketType.PUBLISH)


def _decode_props(blob: bytes | None) -> Properties:
    if not blob:
        return NO_PROPERTIES
    props, _ = read_properties(memoryview(blob), 0, len(blob), PacketType.PUBLISH)
    return props


class SqliteStore:
    """Sessions, subscriptions, queued and inflight messages, inbound QoS 2 state, retained
    messages and delayed wills in `<data_dir>/roost.db`."""

    durable = True

    def __init__(self, data_dir: str | Path, filename: str = "roost.db") -> None:
        self.path = Path(data_dir) / filename
        self._conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roost-store")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ops: list[Op] = []
        self.write_seq = 0
        self.committed_seq = 0
        self.barrier_seq = 0
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._committing = False
        self._commit_scheduled = False
        self.failure: str | None = None
        self.commits = 0
        self.committed_ops = 0
        # Message rows: id(Message) -> (row id, the message, deliveries + retained + wills).
        self._messages: dict[int, tuple[int, Message, int]] = {}
        self._next_message_id = 1
        self._next_delivery_id = 1
        # Which message each retained row and each delayed will holds (for reference counts).
        self._retained_rows: dict[tuple[str, str], Message] = {}
        self._wills: dict[SessionKey, Message] = {}

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
        """Everything stored, as the broker rebuilds it. Orphan message rows are removed."""
        if self._conn is None:
            self.open()
        conn = self.conn
        conn.execute(
            "DELETE FROM deliveries WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE"
            " s.tenant = deliveries.tenant AND s.client_id = deliveries.client_id)"
        )
        conn.execute(
            "DELETE FROM messages WHERE id NOT IN (SELECT message_id FROM deliveries)"
            " AND id NOT IN (SELECT message_id FROM retained)"
            " AND id NOT IN (SELECT message_id FROM wills)"
        )
        messages: dict[int, Message] = {}
        for row in conn.execute(
            "SELECT id, tenant, topic, payload, qos, retain, properties, expires_at, publisher,"
            " created_at FROM messages"
        ):
            messages[row[0]] = Message(
                tenant=row[1],
                topic=row[2],
                payload=bytes(row[3]),
                qos=row[4],
                retain=bool(row[5]),
                properties=_decode_props(row[6]),
                expires_at=row[7],
                publisher=row[8],
                created_at=row[9],
            )
        refs: dict[int, int] = {}
        sessions = self._load_sessions(conn, messages, refs)
        retained = []
        for tenant, topic, message_id in conn.execute(
            "SELECT tenant, topic, message_id FROM retained"
        ):
            message = messages.get(message_id)
            if message is not None and message.tenant == tenant and message.topic == topic:
                retained.append(message)
                self._retained_rows[(tenant, topic)] = message
                refs[message_id] = refs.get(message_id, 0) + 1
        wills = []
        for tenant, client_id, message_id, due in conn.execute(
            "SELECT tenant, client_id, message_id, due FROM wills"
        ):
            message = messages.get(message_id)
            if message is not None:
                wills.append(
                    StoredWill(tenant=tenant, client_id=client_id, message=message, due=due)
                )
                self._wills[(tenant, client_id)] = message
                refs[message_id] = refs.get(message_id, 0) + 1
        for message_id, count in refs.items():
            message = messages[message_id]
            self._messages[id(message)] = (message_id, message, count)
        self._next_message_id = 1 + (
            conn.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
        )
        self._next_delivery_id = 1 + (
            conn.execute("SELECT MAX(id) FROM deliveries").fetchone()[0] or 0
        )
        return StoreSnapshot(sessions=sessions, retained=retained, wills=wills)

    def _load_sessions(
        self, conn: sqlite3.Connection, messages: dict[int, Message], refs: dict[int, int]
    ) -> list[StoredSession]:
        subscriptions: dict[SessionKey, list[SessionSubscription]] = {}
        for row in conn.execute(
            "SELECT tenant, client_id, topic_filter, qos, no_local, retain_as_published,"
            " retain_handling, subscription_identifier FROM subscriptions"
        ):
            options = Subscription(
                topic_filter=row[2],
                qos=row[3],
                no_local=bool(row[4]),
                retain_as_published=bool(row[5]),
                retain_handling=row[6],
            )
            subscriptions.setdefault((row[0], row[1]), []).append(
                SessionSubscription(
                    topic_filter=row[2], options=options, subscription_identifier=row[7]
                )
            )
        deliveries: dict[SessionKey, list[Delivery]] = {}
        for row in conn.execute(
            "SELECT id, tenant, client_id, message_id, qos, retain, subscription_identifiers,"
            " packet_id, released FROM deliveries ORDER BY id"
        ):
            message = messages.get(row[3])
            if message is None:
                continue
            ids = tuple(int(i) for i in row[6].split(",")) if row[6] else ()
            deliveries.setdefault((row[1], row[2]), []).append(
                Delivery(
                    message=message,
                    qos=row[4],
                    retain=bool(row[5]),
                    subscription_identifiers=ids,
                    packet_id=row[7],
                    dup=bool(row[7]),
                    released=bool(row[8]),
                    store_id=row[0],
                )
            )
            refs[row[3]] = refs.get(row[3], 0) + 1
        awaiting: dict[SessionKey, list[int]] = {}
        for tenant, client_id, packet_id in conn.execute(
            "SELECT tenant, client_id, packet_id FROM awaiting_rel"
        ):
            awaiting.setdefault((tenant, client_id), []).append(packet_id)
        sessions = []
        for tenant, client_id, expiry, disconnected_at in conn.execute(
            "SELECT tenant, client_id, expiry_interval, disconnected_at FROM sessions"
        ):
            key = (tenant, client_id)
            sessions.append(
                StoredSession(
                    tenant=tenant,
                    client_id=client_id,
                    expiry_interval=expiry,
                    disconnected_at=disconnected_at,
                    subscriptions=tuple(subscriptions.get(key, ())),
                    deliveries=tuple(deliveries.get(key, ())),
                    awaiting_rel=tuple(awaiting.get(key, ())),
                )
            )
        return sessions

    def close(self) -> None:
        """Commit what is pending and close the database."""
        if self._conn is None:
            return
        if self._ops:
            try:
                self._commit(self._take_batch()[0])
            except sqlite3.Error:
                log.exception("final commit failed")
        self._executor.shutdown(wait=True)
        self._conn.close()
        self._conn = None

    # -- group commit ----------------------------------------------------------------------

    def _add(self, sql: str, params: tuple[object, ...], barrier: bool = True) -> None:
        self._ops.append((sql, params))
        self.write_seq += 1
        if barrier:
            self.barrier_seq = self.write_seq
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
        if not self._committing and not self._commit_scheduled and self._ops:
            loop = self._running_loop()
            if loop is not None:
                self._commit_scheduled = True
                loop.call_soon(self._start_commit)

    def _take_batch(self) -> tuple[list[Op], int]:
        batch, self._ops = self._ops, []
        return batch, self.write_seq

    def _start_commit(self) -> None:
        self._commit_scheduled = False
        if self._committing or not self._ops:
            return
        batch, upto = self._take_batch()
        self._committing = True
        loop = self._running_loop()
        assert loop is not None
        future = self._executor.submit(self._commit, batch)

        def done(f: Future[None]) -> None:
            loop.call_soon_threadsafe(self._committed, f, batch, upto)

        future.add_done_callback(done)

    def _commit(self, batch: list[Op]) -> None:
        """In the writer thread: one transaction, one fsync."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            i = 0
            n = len(batch)
            while i < n:
                sql = batch[i][0]
                j = i + 1
                while j < n and batch[j][0] is sql:
                    j += 1
                if j - i == 1:
                    conn.execute(sql, batch[i][1])
                else:
                    conn.executemany(sql, [params for _, params in batch[i:j]])
                i = j
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                conn.execute("ROLLBACK")
            raise

    def _committed(self, future: Future[None], batch: list[Op], upto: int) -> None:
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
            self._ops[:0] = batch
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
        waiters = self._waiters
        while waiters and waiters[0][0] <= upto:
            _, callback = waiters.popleft()
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")
        if self._ops and not self._commit_scheduled:
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
        """Commit everything pending, synchronously (start-up, shutdown, tests)."""
        deadline = time.monotonic() + timeout
        while self._committing and time.monotonic() < deadline:
            time.sleep(0.001)
        if self._ops:
            batch, upto = self._take_batch()
            self._commit(batch)
            self.committed_seq = upto

    # -- messages (shared by deliveries, retained and wills) -----------------------------------

    def _ref_message(self, message: Message) -> int:
        entry = self._messages.get(id(message))
        if entry is not None:
            row, msg, count = entry
            self._messages[id(message)] = (row, msg, count + 1)
            return row
        row = self._next_message_id
        self._next_message_id += 1
        self._messages[id(message)] = (row, message, 1)
        self._add(
            _INSERT_MESSAGE,
            (
                row,
                message.tenant,
                message.topic,
                message.payload,
                message.qos,
                int(message.retain),
                _encode_props(message.properties),
                message.expires_at,
                message.publisher,
                message.created_at,
            ),
        )
        return row

    def _unref_message(self, message: Message) -> None:
        entry = self._messages.get(id(message))
        if entry is None:
            return
        row, msg, count = entry
        if count > 1:
            self._messages[id(message)] = (row, msg, count - 1)
            return
        del self._messages[id(message)]
        self._add("DELETE FROM messages WHERE id = ?", (row,), barrier=False)

    # -- Store ---------------------------------------------------------------------------------

    def session_saved(
        self,
        key: SessionKey,
        expiry_interval: int,
        disconnected_at: float | None,
        subscriptions: tuple[SessionSubscription, ...],
    ) -> None:
        tenant, client_id = key
        self._add(
            "INSERT INTO sessions (tenant, client_id, expiry_interval, disconnected_at)"
            " VALUES (?,?,?,?) ON CONFLICT (tenant, client_id) DO UPDATE SET"
            " expiry_interval = excluded.expiry_interval,"
            " disconnected_at = excluded.disconnected_at",
            (tenant, client_id, expiry_interval, disconnected_at),
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
        for table in ("sessions", "subscriptions", "deliveries", "awaiting_rel", "wills"):
            self._add(f"DELETE FROM {table} WHERE tenant = ? AND client_id = ?", key)

    def retained_set(self, message: Message) -> None:
        row = self._ref_message(message)
        old = self._retained_rows.get((message.tenant, message.topic))
        self._retained_rows[(message.tenant, message.topic)] = message
        self._add(
            "INSERT INTO retained (tenant, topic, message_id) VALUES (?,?,?)"
            " ON CONFLICT (tenant, topic) DO UPDATE SET message_id = excluded.message_id",
            (message.tenant, message.topic, row),
        )
        if old is not None:
            self._unref_message(old)

    def retained_deleted(self, tenant: str, topic: str) -> None:
        self._add("DELETE FROM retained WHERE tenant = ? AND topic = ?", (tenant, topic))
        old = self._retained_rows.pop((tenant, topic), None)
        if old is not None:
            self._unref_message(old)

    # -- Journal -------------------------------------------------------------------------------

    def delivery_queued(self, key: SessionKey, delivery: Delivery) -> None:
        row = self._ref_message(delivery.message)
        delivery.store_id = self._next_delivery_id
        self._next_delivery_id += 1
        ids = ",".join(str(i) for i in delivery.subscription_identifiers)
        self._add(
            _INSERT_DELIVERY,
            (delivery.store_id, key[0], key[1], row, delivery.qos, int(delivery.retain), ids),
        )

    def delivery_sent(self, delivery: Delivery) -> None:
        self._add(
            "UPDATE deliveries SET packet_id = ? WHERE id = ?",
            (delivery.packet_id, delivery.store_id),
        )

    def delivery_released(self, delivery: Delivery) -> None:
        self._add("UPDATE deliveries SET released = 1 WHERE id = ?", (delivery.store_id,))

    def delivery_deleted(self, delivery: Delivery) -> None:
        self._add("DELETE FROM deliveries WHERE id = ?", (delivery.store_id,), barrier=False)
        delivery.store_id = 0
        self._unref_message(delivery.message)

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
        row = self._ref_message(message)
        self._add(
            "INSERT OR REPLACE INTO wills (tenant, client_id, message_id, due) VALUES (?,?,?,?)",
            (key[0], key[1], row, due),
        )
        self._wills[key] = message

    def will_deleted(self, key: SessionKey) -> None:
        self._add("DELETE FROM wills WHERE tenant = ? AND client_id = ?", key)
        message = self._wills.pop(key, None)
        if message is not None:
            self._unref_message(message)


__all__ = ["SCHEMA_VERSION", "SqliteStore"]
