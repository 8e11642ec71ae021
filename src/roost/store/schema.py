"""The SQLite schema of the embedded store and its migrations, by version."""

from __future__ import annotations

import sqlite3

from roost.errors import StoreError

# Each entry upgrades the schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        tenant TEXT NOT NULL,
        client_id TEXT NOT NULL,
        expiry_interval INTEGER NOT NULL,
        disconnected_at REAL,
        PRIMARY KEY (tenant, client_id)
    ) WITHOUT ROWID;
    CREATE TABLE subscriptions (
        tenant TEXT NOT NULL,
        client_id TEXT NOT NULL,
        topic_filter TEXT NOT NULL,
        qos INTEGER NOT NULL,
        no_local INTEGER NOT NULL,
        retain_as_published INTEGER NOT NULL,
        retain_handling INTEGER NOT NULL,
        subscription_identifier INTEGER,
        PRIMARY KEY (tenant, client_id, topic_filter)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        properties BLOB,
        expires_at REAL,
        publisher TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        client_id TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        subscription_identifiers TEXT NOT NULL,
        packet_id INTEGER NOT NULL,
        released INTEGER NOT NULL
    );
    CREATE INDEX deliveries_by_session ON deliveries (tenant, client_id);
    CREATE INDEX deliveries_by_message ON deliveries (message_id);
    CREATE TABLE awaiting_rel (
        tenant TEXT NOT NULL,
        client_id TEXT NOT NULL,
        packet_id INTEGER NOT NULL,
        PRIMARY KEY (tenant, client_id, packet_id)
    ) WITHOUT ROWID;
    CREATE TABLE retained (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (tenant, topic)
    ) WITHOUT ROWID;
    CREATE TABLE wills (
        tenant TEXT NOT NULL,
        client_id TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        due REAL NOT NULL,
        PRIMARY KEY (tenant, client_id)
    ) WITHOUT ROWID;
    CREATE INDEX retained_by_message ON retained (message_id);
    CREATE INDEX wills_by_message ON wills (message_id);
    CREATE TRIGGER deliveries_release AFTER DELETE ON deliveries BEGIN
        DELETE FROM messages WHERE id = OLD.message_id
        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM wills WHERE message_id = OLD.message_id);
    END;
    CREATE TRIGGER retained_release AFTER DELETE ON retained BEGIN
        DELETE FROM messages WHERE id = OLD.message_id
        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM wills WHERE message_id = OLD.message_id);
    END;
    CREATE TRIGGER wills_release AFTER DELETE ON wills BEGIN
        DELETE FROM messages WHERE id = OLD.message_id
        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = OLD.message_id)
        AND NOT EXISTS (SELECT 1 FROM wills WHERE message_id = OLD.message_id);
    END
    """,
    # 2: the messaging service (src/roost/streams): streams, their envelopes, consumer groups.
    """
    CREATE TABLE streams (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        first_seq INTEGER NOT NULL,
        dropped INTEGER NOT NULL,
        UNIQUE (tenant, name)
    );
    CREATE TABLE stream_messages (
        stream_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL,
        retain INTEGER NOT NULL,
        client_id TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        dup INTEGER NOT NULL,
        properties BLOB,
        received_at REAL NOT NULL,
        size INTEGER NOT NULL,
        dead_letter TEXT,
        PRIMARY KEY (stream_id, seq)
    );
    CREATE INDEX stream_messages_by_time ON stream_messages (stream_id, received_at);
    CREATE TABLE stream_groups (
        stream_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        floor INTEGER NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (stream_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE stream_group_seqs (
        stream_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        acked INTEGER NOT NULL,
        deliveries INTEGER NOT NULL,
        PRIMARY KEY (stream_id, name, seq)
    ) WITHOUT ROWID
    """,
    # 3: the registry device that owns a session, so that revoking the device ends its
    # sessions, offline ones included (NULL: not a registry device); whether its messages
    # are delivered at the subscription's QoS (a dialect's rule, e.g. SmartREST).
    """
    ALTER TABLE sessions ADD COLUMN device_id TEXT;
    ALTER TABLE sessions ADD COLUMN subscription_qos INTEGER NOT NULL DEFAULT 0
    """,
    # 4: the store deletes a message row itself when its last reference goes (it counts
    # them), and sweeps orphans at start-up: no release triggers, no index by message on
    # deliveries (two b-tree writes and three lookups fewer per delivered message).
    """
    DROP TRIGGER deliveries_release;
    DROP TRIGGER retained_release;
    DROP TRIGGER wills_release;
    DROP INDEX deliveries_by_message
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (a trigger body keeps its inner semicolons)."""
    out: list[str] = []
    current = ""
    for part in script.split(";"):
        current = f"{current};{part}" if current else part
        if sqlite3.complete_statement(current + ";"):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def apply_migrations(
    conn: sqlite3.Connection, migrations: tuple[str, ...], what: str = "database"
) -> int:
    """Bring a database to version len(migrations), one transaction per step; refuse one
    written by a newer Roost, or a SQLite file of another program. Returns the version
    found before migrating (0 for a new file)."""
    latest = len(migrations)
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > latest:
        raise StoreError(
            f"the {what} has schema version {found}, newer than this Roost understands "
            f"({latest}); refusing to start rather than lose data. Run a newer Roost."
        )
    if found == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise StoreError(f"the {what} holds tables but no Roost schema version; refusing it")
    for version in range(found, latest):
        conn.execute("BEGIN")
        try:
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the store's database to SCHEMA_VERSION (see `apply_migrations`)."""
    return apply_migrations(conn, MIGRATIONS, "database")
