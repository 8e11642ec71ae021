"""When the store cannot write (disk full), Roost stops acknowledging durable messages,
says why, keeps serving QoS 0 and non-persistent traffic, and catches up when space is back.

The full disk is SQLite's own SQLITE_FULL, produced by capping the database's page count."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from roost.mqtt.packets import Properties, Puback, Publish
from roost.store.sqlite import SqliteStore
from tests.conftest import BrokerHandle
from tests.durability.test_restart import KEEP, subscribe
from tests.rawclient import RawClient


def connect(broker: BrokerHandle, client_id: str, props: Properties) -> RawClient:
    c = RawClient(broker.host, broker.port)
    assert c.connect(client_id, clean_start=True, properties=props).reason_code == 0  # type: ignore[union-attr]
    return c


def test_disk_full_holds_acks_keeps_qos0_and_recovers(
    broker_factory: Callable[..., BrokerHandle], caplog: pytest.LogCaptureFixture
) -> None:
    broker = broker_factory()
    store = broker.server.store
    assert isinstance(store, SqliteStore)
    persistent = connect(broker, "persistent", KEEP)
    subscribe(persistent, "durable/#", 1)
    live = connect(broker, "live", Properties())
    subscribe(live, "live/#", 0)
    pub = connect(broker, "pub", Properties())

    pages = broker.call(lambda: store.conn.execute("PRAGMA page_count").fetchone()[0])
    broker.call(lambda: store.conn.execute(f"PRAGMA max_page_count = {pages}"))
    with caplog.at_level(logging.ERROR, logger="roost.store.sqlite"):
        pub.publish("durable/big", b"x" * 200_000, qos=1, packet_id=1)
        with pytest.raises(TimeoutError):
            pub.recv(timeout=1.5)  # no PUBACK: the message is not stored
        # QoS 0 between non-persistent sessions flows on.
        pub.publish("live/t", b"still here", qos=0)
        got = live.recv(timeout=3)
        assert isinstance(got, Publish) and got.payload == b"still here"
    assert any("store commit failed" in r.getMessage() for r in caplog.records)
    assert store.failure is not None and "full" in store.failure

    broker.call(lambda: store.conn.execute("PRAGMA max_page_count = 1073741823"))
    ack = pub.recv(timeout=5)
    assert isinstance(ack, Puback) and ack.packet_id == 1
    delivered = persistent.recv(timeout=5)
    assert isinstance(delivered, Publish) and len(delivered.payload) == 200_000
    assert broker.call(lambda: store.failure) is None
