"""The SQLite schema of the device registry (`<data_dir>/registry.db`), by version."""

from __future__ import annotations

import sqlite3

from roost.store.schema import apply_migrations

# Each entry upgrades the schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tenants (
        tenant TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE devices (
        tenant TEXT NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        type TEXT NOT NULL,
        parent TEXT,
        attributes TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (tenant, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE credentials (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('password', 'token', 'certificate')),
        name TEXT,
        scheme TEXT,
        salt BLOB,
        secret BLOB,
        created_at REAL NOT NULL,
        FOREIGN KEY (tenant, device_id) REFERENCES devices (tenant, device_id)
            ON DELETE CASCADE
    );
    CREATE UNIQUE INDEX credentials_password ON credentials (tenant, name)
        WHERE kind = 'password';
    CREATE UNIQUE INDEX credentials_certificate ON credentials (tenant, name)
        WHERE kind = 'certificate';
    CREATE TABLE applications (
        tenant TEXT NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
        application_id TEXT NOT NULL,
        name TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (tenant, application_id)
    ) WITHOUT ROWID;
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        application_id TEXT NOT NULL,
        salt BLOB NOT NULL,
        secret BLOB NOT NULL,
        created_at REAL NOT NULL,
        FOREIGN KEY (tenant, application_id) REFERENCES applications (tenant, application_id)
            ON DELETE CASCADE
    )
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the registry to SCHEMA_VERSION; refuse one written by a newer Roost.
    Returns the version found before migrating (0 for a new file)."""
    return apply_migrations(conn, MIGRATIONS, "registry")
