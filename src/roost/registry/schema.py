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
    # 2: device secrets (kind 'secret', at most one per device), kept retrievable because a
    # signed login (Alibaba's HMAC over the client id, device name and product key) can only
    # be verified with the secret itself: `scheme` 'plain', the secret in `secret`. The
    # file is 0600 (docs/dialects.md). SQLite cannot alter a CHECK: the table is rebuilt.
    """
    CREATE TABLE credentials_v2 (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('password', 'token', 'certificate', 'secret')),
        name TEXT,
        scheme TEXT,
        salt BLOB,
        secret BLOB,
        created_at REAL NOT NULL,
        FOREIGN KEY (tenant, device_id) REFERENCES devices (tenant, device_id)
            ON DELETE CASCADE
    );
    INSERT INTO credentials_v2 (id, tenant, device_id, kind, name, scheme, salt, secret,
        created_at)
        SELECT id, tenant, device_id, kind, name, scheme, salt, secret, created_at
        FROM credentials;
    DROP TABLE credentials;
    ALTER TABLE credentials_v2 RENAME TO credentials;
    CREATE UNIQUE INDEX credentials_password ON credentials (tenant, name)
        WHERE kind = 'password';
    CREATE UNIQUE INDEX credentials_certificate ON credentials (tenant, name)
        WHERE kind = 'certificate';
    CREATE UNIQUE INDEX credentials_secret ON credentials (tenant, device_id)
        WHERE kind = 'secret'
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the registry to SCHEMA_VERSION; refuse one written by a newer Roost.
    Returns the version found before migrating (0 for a new file)."""
    return apply_migrations(conn, MIGRATIONS, "registry")
