"""The device registry: KDF, persistence across restart, API keys, and revocation that
disconnects within a second."""

from __future__ import annotations

import sqlite3
import time

import pytest

from roost.errors import StoreError
from roost.registry import Registry
from roost.registry.kdf import hash_secret, verify_secret
from roost.registry.registry import REGISTRY_FILE
from roost.registry.schema import SCHEMA_VERSION
from tests.dialects.support import TEST_SCRYPT_N, at, dialect_listener, platform
from tests.dialects.support import registry_of as registry_of_handle
from tests.integration.helpers import V5, V311


def test_scrypt_salted_per_credential_and_verified():
    a = hash_secret(b"same password", TEST_SCRYPT_N)
    b = hash_secret(b"same password", TEST_SCRYPT_N)
    assert a.salt != b.salt and a.key != b.key
    assert a.scheme == f"scrypt${TEST_SCRYPT_N}$8$1"
    assert verify_secret(b"same password", a)
    assert not verify_secret(b"other password", a)
    with pytest.raises(ValueError):
        hash_secret(b"x", 1000)


def test_password_never_stored_in_clear(tmp_path):
    registry = Registry(tmp_path / REGISTRY_FILE, TEST_SCRYPT_N)
    registry.add_tenant("t")
    registry.add_device("t", "d")
    registry.add_password("t", "d", "user", "hunter2-secret")
    registry.close()
    assert b"hunter2-secret" not in (tmp_path / REGISTRY_FILE).read_bytes()


def test_persistence_across_restart(tmp_path):
    path = tmp_path / REGISTRY_FILE
    registry = Registry(path, TEST_SCRYPT_N)
    registry.add_tenant("t", "Tenant T")
    registry.add_device("t", "gw", type="gateway", attributes={"site": "north"})
    registry.add_device("t", "child", parent="gw")
    registry.add_password("t", "gw", "gw-user", "pw")
    _, token = registry.add_token("t", "gw")
    registry.add_certificate("t", "child", "CN=child")
    registry.add_application("t", "backend")
    _, key = registry.add_api_key("t", "backend")
    registry.close()

    again = Registry(path, TEST_SCRYPT_N)
    gw = again.device("t", "gw")
    assert gw is not None and gw.type == "gateway" and gw.attributes == {"site": "north"}
    child = again.device("t", "child")
    assert child is not None and child.parent == "gw"
    assert again.check_password("t", "gw-user", b"pw") is not None
    assert again.check_password("t", "gw-user", b"bad") is None
    assert again.check_token("t", "gw", token.encode()) is not None
    assert again.check_certificate("t", "CN=child") is not None
    principal = again.check_api_key("t", key.encode())
    assert principal is not None and principal.application_id == "backend"
    assert again.check_api_key("other", key.encode()) is None
    again.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


def test_newer_schema_refused(tmp_path):
    path = tmp_path / REGISTRY_FILE
    Registry(path, TEST_SCRYPT_N).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError):
        Registry(path, TEST_SCRYPT_N)


def test_revoked_and_disabled_credentials_fail_and_announce():
    registry = Registry(None, TEST_SCRYPT_N)
    revoked: list[tuple[str, str]] = []
    registry.on_revoke(lambda t, d: revoked.append((t, d)))
    registry.add_tenant("t")
    registry.add_device("t", "d")
    cred = registry.add_password("t", "d", "u", "pw")
    assert registry.check_password("t", "u", b"pw") is not None  # cached from now on
    registry.set_device_enabled("t", "d", False)
    assert registry.check_password("t", "u", b"pw") is None
    registry.set_device_enabled("t", "d", True)
    registry.revoke_credential(cred.id)
    assert registry.check_password("t", "u", b"pw") is None
    registry.set_tenant_enabled("t", False)
    assert revoked == [("t", "d"), ("t", "d"), ("t", "d")]


def test_api_key_revoked():
    registry = Registry(None, TEST_SCRYPT_N)
    registry.add_tenant("t")
    registry.add_application("t", "app")
    key_id, key = registry.add_api_key("t", "app")
    assert registry.check_api_key("t", key.encode()) is not None
    assert registry.check_api_key("t", key.encode()[:-1] + b"?") is None
    registry.revoke_api_key(key_id)
    assert registry.check_api_key("t", key.encode()) is None


@pytest.fixture
def device_broker():
    handle = platform(dialect_listener("dev", "generic", tenant="t"), refresh_interval=0.2)
    registry = registry_of_handle(handle)
    registry.add_tenant("t")
    registry.add_device("t", "d1")
    yield handle
    handle.stop()


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("how", ["disable", "revoke", "remove"])
def test_revocation_disconnects_within_a_second(device_broker, clients, version, how):
    registry = registry_of_handle(device_broker)
    cred = registry.add_password("t", "d1", "d1", "pw")
    handle = at(device_broker, "dev")
    c = clients(handle, "victim", username="d1", password="pw", version=version)
    c.connect()
    c.subscribe("x/#", 1)
    started = time.monotonic()
    if how == "disable":
        registry.set_device_enabled("t", "d1", False)
    elif how == "revoke":
        registry.revoke_credential(cred.id)
    else:
        registry.remove_device("t", "d1")
    gone = c.expect_disconnect(timeout=2)
    assert time.monotonic() - started < 1.0
    if version == V5:
        assert gone.reason_code == 0x98
    # Its subscriptions stop with it: the session is gone.
    assert device_broker.call(lambda: ("t", "victim") not in device_broker.server.broker.sessions)
    again = clients(handle, "victim", username="d1", password="pw", version=version)
    assert again.connect(expect_success=False).reason_code != 0


def test_change_by_another_process_disconnects_within_a_second_and_a_refresh(
    device_broker, clients
):
    """Another process (the CLI) disables the device in registry.db: the broker picks it up
    at its next refresh (every 0.2 s here) and disconnects the device."""
    registry = registry_of_handle(device_broker)
    registry.add_password("t", "d1", "d1", "pw")
    c = clients(at(device_broker, "dev"), "victim2", username="d1", password="pw", version=V5)
    c.connect()
    assert registry.path is not None
    other = Registry(registry.path, TEST_SCRYPT_N)
    started = time.monotonic()
    other.set_device_enabled("t", "d1", False)
    other.close()
    assert c.expect_disconnect(timeout=2).reason_code == 0x98
    assert time.monotonic() - started < 1.2
