"""The registry's device-secret credentials (signed logins such as Alibaba's HMAC): kept
retrievable for the HMAC, never handed out, one per device, persisted in a 0600 file,
revocable; and the schema migration that brought them to an existing registry."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import stat

import pytest

from roost.registry import Registry
from roost.registry.registry import REGISTRY_FILE
from roost.registry.schema import MIGRATIONS, SCHEMA_VERSION
from roost.store.schema import apply_migrations
from tests.dialects.support import TEST_SCRYPT_N


def mac(secret: str, content: bytes, digest: str = "sha1") -> bytes:
    return hmac.new(secret.encode(), content, getattr(hashlib, digest)).digest()


@pytest.fixture
def registry(tmp_path):
    r = Registry(tmp_path / REGISTRY_FILE, TEST_SCRYPT_N)
    r.add_tenant("pk")
    r.add_device("pk", "dev")
    yield r
    r.close()


@pytest.mark.parametrize("digest", ["md5", "sha1", "sha256"])
def test_hmac_checked_with_the_device_secret(registry, digest):
    _, secret = registry.add_device_secret("pk", "dev")
    assert len(secret) == 32
    content = b"clientIdSN1deviceNamedevproductKeypk"
    principal = registry.check_hmac("pk", "dev", content, digest, mac(secret, content, digest))
    assert principal is not None and principal.device_id == "dev" and principal.tenant == "pk"
    assert registry.check_hmac("pk", "dev", content + b"x", digest, mac(secret, content)) is None
    assert registry.check_hmac("pk", "dev", content, digest, mac("other", content, digest)) is None
    assert registry.check_hmac("pk", "ghost", content, digest, mac(secret, content)) is None
    assert registry.check_hmac("other", "dev", content, digest, mac(secret, content)) is None


def test_secret_never_in_a_credential_and_one_per_device(registry):
    id_, secret = registry.add_device_secret("pk", "dev", "given-secret")
    assert secret == "given-secret"
    (cred,) = registry.credentials("pk", "dev")
    assert cred.id == id_ and cred.kind == "secret" and cred.secret is None
    assert "given-secret" not in repr(cred)
    with pytest.raises(ValueError):
        registry.add_device_secret("pk", "dev", "second")
    with pytest.raises(KeyError):
        registry.add_device_secret("pk", "ghost")


def test_persisted_in_a_file_only_its_owner_reads(tmp_path, registry):
    _, secret = registry.add_device_secret("pk", "dev")
    files = [p for p in tmp_path.iterdir() if p.name.startswith(REGISTRY_FILE)]
    # The database and, while it is open, its write-ahead log (where the secret lands first).
    assert {p.name for p in files} >= {REGISTRY_FILE, REGISTRY_FILE + "-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    registry.close()
    again = Registry(tmp_path / REGISTRY_FILE, TEST_SCRYPT_N)
    assert again.has_device_secret("pk", "dev")
    assert again.check_hmac("pk", "dev", b"c", "sha1", mac(secret, b"c")) is not None
    again.close()


def test_revoked_disabled_or_removed_device_secret_fails_and_announces(registry):
    revoked: list[tuple[str, str]] = []
    registry.on_revoke(lambda t, d: revoked.append((t, d)))
    id_, secret = registry.add_device_secret("pk", "dev")
    good = mac(secret, b"c")
    registry.set_device_enabled("pk", "dev", False)
    assert not registry.has_device_secret("pk", "dev")
    assert registry.check_hmac("pk", "dev", b"c", "sha1", good) is None
    registry.set_device_enabled("pk", "dev", True)
    assert registry.has_device_secret("pk", "dev")
    registry.revoke_credential(id_)
    assert not registry.has_device_secret("pk", "dev")
    assert registry.check_hmac("pk", "dev", b"c", "sha1", good) is None
    registry.add_device("pk", "dev2")
    registry.add_device_secret("pk", "dev2")
    registry.remove_device("pk", "dev2")
    assert not registry.has_device_secret("pk", "dev2")
    assert revoked == [("pk", "dev"), ("pk", "dev"), ("pk", "dev2")]


def test_change_by_another_process_picked_up_on_refresh(tmp_path, registry):
    other = Registry(tmp_path / REGISTRY_FILE, TEST_SCRYPT_N)
    _, secret = other.add_device_secret("pk", "dev")
    other.close()
    assert not registry.has_device_secret("pk", "dev")
    assert registry.refresh()
    assert registry.check_hmac("pk", "dev", b"c", "sha1", mac(secret, b"c")) is not None


def test_version_1_registry_migrated_keeps_its_credentials(tmp_path):
    """A registry written before device secrets (schema 1) opens at the current version with
    its credentials intact; a device secret can then be added."""
    path = tmp_path / REGISTRY_FILE
    db = sqlite3.connect(path, isolation_level=None)
    apply_migrations(db, MIGRATIONS[:1], "registry")
    db.execute("INSERT INTO tenants VALUES ('t', '', 1, 0)")
    db.execute("INSERT INTO devices VALUES ('t', 'd', '', NULL, '{}', 1, 0)")
    db.execute(
        "INSERT INTO credentials (tenant, device_id, kind, name, created_at) "
        "VALUES ('t', 'd', 'certificate', 'CN=d', 0)"
    )
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO credentials (tenant, device_id, kind, created_at) "
            "VALUES ('t', 'd', 'secret', 0)"
        )
    db.close()
    migrated = Registry(path, TEST_SCRYPT_N)
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 2
    assert migrated.check_certificate("t", "CN=d") is not None
    _, secret = migrated.add_device_secret("t", "d")
    assert migrated.check_hmac("t", "d", b"c", "sha1", mac(secret, b"c")) is not None
    migrated.close()
