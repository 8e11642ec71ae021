"""Revoking a device ends its sessions, offline ones too: subscriptions and queued messages
are discarded (also from the SQLite store, so a restart does not bring them back), pending
wills are dropped, and a reconnect with the revoked credential is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.registry import Registry
from tests.conftest import BrokerHandle
from tests.dialects.support import TEST_SCRYPT_N, at, dialect_listener, platform, registry_of
from tests.integration.helpers import V5, V311, Client, connect_props, props, wait_until

TENANT = "t"
VICTIM = ("t", "victim")
Factory = Callable[..., BrokerHandle]


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[Factory]:
    """Start (and restart) a broker on one data directory with the devices d1 and pub."""
    started: list[BrokerHandle] = []

    def start() -> BrokerHandle:
        handle = platform(
            dialect_listener("dev", "generic", tenant=TENANT),
            refresh_interval=0.2,
            data_dir=str(tmp_path),
        )
        started.append(handle)
        registry = registry_of(handle)
        if registry.tenant(TENANT) is None:
            registry.add_tenant(TENANT)
            for device in ("d1", "pub"):
                registry.add_device(TENANT, device)
                registry.add_password(TENANT, device, device, "pw")
        return handle

    yield start
    for handle in started:
        handle.stop()


def store_rows(handle: BrokerHandle, table: str) -> int:
    """Rows of the session "victim" in a table of the SQLite store, as committed."""
    path = Path(handle.server.config.store.data_dir) / "roost.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        query = f"SELECT COUNT(*) FROM {table} WHERE tenant = ? AND client_id = ?"
        return int(db.execute(query, VICTIM).fetchone()[0])


def victim(clients: Callable[..., Client], handle: BrokerHandle, version: int) -> Client:
    """The device d1 as client "victim" with a persistent session."""
    if version == V5:
        c = clients(handle, "victim", username="d1", password="pw", version=V5)
    else:
        c = clients(
            handle, "victim", username="d1", password="pw", version=V311, clean_session=False
        )
    return c


def connect_victim(c: Client) -> bool:
    """Connect with clean start 0; returns Session Present."""
    if c.version == V5:
        expiry = connect_props(SessionExpiryInterval=3600)
        return c.connect(clean_start=False, properties=expiry).session_present
    return c.connect().session_present


def offline_with_queue(clients: Callable[..., Client], handle: BrokerHandle, version: int) -> None:
    """d1 subscribes, goes offline; three QoS 1 messages are queued for it and stored."""
    dev = at(handle, "dev")
    c = victim(clients, dev, version)
    connect_victim(c)
    c.subscribe("x/#", 1)
    c.disconnect()
    publisher = clients(dev, "publisher", username="pub", password="pw", version=V5)
    publisher.connect()
    for i in range(3):
        assert publisher.publish(f"x/{i}", b"queued", 1) == 0
    wait_until(lambda: store_rows(handle, "deliveries") == 3, what="3 deliveries stored")
    publisher.disconnect()


def revoke(registry: Registry, how: str) -> None:
    if how == "disable":
        registry.set_device_enabled(TENANT, "d1", False)
    elif how == "revoke":
        for cred in registry.credentials(TENANT, "d1"):
            registry.revoke_credential(cred.id)
    else:
        registry.remove_device(TENANT, "d1")


def restore_access(registry: Registry, how: str) -> None:
    if how == "disable":
        registry.set_device_enabled(TENANT, "d1", True)
        return
    if how == "remove":
        registry.add_device(TENANT, "d1")
    registry.add_password(TENANT, "d1", "d1", "pw2")


def session_gone(handle: BrokerHandle) -> bool:
    return bool(handle.call(lambda: VICTIM not in handle.server.broker.sessions))


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
@pytest.mark.parametrize("how", ["disable", "revoke", "remove"])
def test_revocation_ends_offline_session_and_discards_its_queue(devices, clients, version, how):
    handle = devices()
    offline_with_queue(clients, handle, version)
    assert not session_gone(handle)
    revoke(registry_of(handle), how)
    wait_until(lambda: session_gone(handle), what="offline session ended")
    for table in ("sessions", "subscriptions", "deliveries"):
        wait_until(lambda t=table: store_rows(handle, t) == 0, what=f"{table} rows deleted")
    # Nothing matches any more: a v5 publisher hears 0x10 No matching subscribers.
    dev = at(handle, "dev")
    publisher = clients(dev, "publisher2", username="pub", password="pw", version=V5)
    publisher.connect()
    assert publisher.publish("x/late", b"after", 1) == 0x10
    # The revoked credential is refused: 3.1.1 0x04 / 5.0 0x86 Bad User Name or Password.
    again = victim(clients, dev, version)
    refused = again.connect(clean_start=False, expect_success=False) if version == V5 else None
    code = (refused or again.connect(expect_success=False)).reason_code
    assert code in (0x04, 0x86) if how == "revoke" else code != 0
    # Access restored (re-enabled, new credential): a fresh session, nothing delivered.
    restore_access(registry_of(handle), how)
    fresh = victim(clients, dev, version)
    if how != "disable":
        fresh.paho.username_pw_set("d1", "pw2")
    assert connect_victim(fresh) is False
    fresh.expect_no_message()


def test_discarded_session_stays_gone_across_restart(devices, clients):
    handle = devices()
    offline_with_queue(clients, handle, V311)
    registry_of(handle).set_device_enabled(TENANT, "d1", False)
    wait_until(lambda: session_gone(handle), what="offline session ended")
    wait_until(lambda: store_rows(handle, "deliveries") == 0, what="deliveries deleted")
    handle.stop()
    again = devices()
    assert session_gone(again)
    registry_of(again).set_device_enabled(TENANT, "d1", True)
    c = victim(clients, at(again, "dev"), V311)
    assert connect_victim(c) is False
    c.expect_no_message()


def test_device_disabled_while_stopped_loses_its_sessions_on_start(devices, clients, tmp_path):
    """The CLI may disable a device while Roost is down: its stored session is ended at
    start, before any listener accepts a connection."""
    handle = devices()
    offline_with_queue(clients, handle, V5)
    handle.stop()
    other = Registry.in_data_dir(tmp_path, TEST_SCRYPT_N)
    other.set_device_enabled(TENANT, "d1", False)
    other.close()
    again = devices()
    assert session_gone(again)
    wait_until(lambda: store_rows(again, "deliveries") == 0, what="deliveries deleted")
    assert store_rows(again, "sessions") == 0


def test_pending_will_of_revoked_device_is_not_published(devices, clients):
    """A delayed will of an offline session is dropped with it, not published early
    (ending a session otherwise publishes it at once [MQTT-3.1.2-8])."""
    handle = devices()
    dev = at(handle, "dev")
    watcher = clients(dev, "watcher", username="pub", password="pw", version=V5)
    watcher.connect()
    watcher.subscribe("will/#", 1)
    c = victim(clients, dev, V5)
    c.will_set(
        "will/d1", b"gone", 1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    )
    connect_victim(c)
    c.drop()
    wait_until(
        lambda: handle.call(lambda: not handle.server.broker.sessions[VICTIM].connected),
        what="victim offline",
    )
    revoke(registry_of(handle), "disable")
    wait_until(lambda: session_gone(handle), what="offline session ended")
    watcher.expect_no_message(timeout=1.5)
