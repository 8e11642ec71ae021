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
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; refuse one written by a newer Roost.
    Returns the version found before migrating (0 for a new file)."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {found}, newer than this Roost understands "
            f"({SCHEMA_VERSION}); refusing to start rather than lose data. Run a newer Roost."
        )
    if found == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise StoreError("the database holds tables but no Roost schema version; refusing it")
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN")
        try:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return int(found)
