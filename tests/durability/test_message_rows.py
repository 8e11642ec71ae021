"""A running `roost serve` deletes a stored message with its last reference: after the
subscriber's PUBACK, and (by the sweep) when a session holding queued messages is
discarded; after kill -9 what is still referenced comes back."""

from __future__ import annotations

import sqlite3

from roost.mqtt.packets import Puback, Publish
from tests.durability.conftest import connect, crash_and_restart, publish_acked, subscribe
from tests.durability.crash import Broker
from tests.integration.helpers import wait_until


def stored_messages(broker: Broker) -> int:
    with sqlite3.connect(broker.config.parent / "roost.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def wait_for_stored(broker: Broker, count: int) -> None:
    wait_until(lambda: stored_messages(broker) == count, 10, f"{count} stored messages")


def test_acknowledged_delivery_deletes_the_message_row(roost: Broker) -> None:
    sub, _ = connect(roost, "online")
    subscribe(sub, "rows/#", 1)
    pub, _ = connect(roost, "pub", clean=True)
    publish_acked(pub, "rows/a", b"one", 1, 1)
    got = sub.recv()
    assert isinstance(got, Publish) and got.payload == b"one"
    # A later message's commit (its PUBACK to the publisher) comes after anything the
    # first delivery's sending could have changed: the first row is still there.
    publish_acked(pub, "rows/a", b"two", 1, 2)
    second = sub.recv()
    assert isinstance(second, Publish) and second.payload == b"two"
    assert stored_messages(roost) == 2  # [MQTT-4.3.2-1] held until the PUBACK
    sub.send(Puback(packet_id=got.packet_id))
    sub.send(Puback(packet_id=second.packet_id))
    wait_for_stored(roost, 0)


def test_discarded_session_releases_its_queued_messages(roost: Broker) -> None:
    sub, _ = connect(roost, "offline")
    subscribe(sub, "rows/#", 1)
    sub.close()
    pub, _ = connect(roost, "pub", clean=True)
    for i in range(1, 4):
        publish_acked(pub, "rows/b", b"queued %d" % i, 1, i)
    wait_for_stored(roost, 3)
    crash_and_restart(roost)
    wait_for_stored(roost, 3)  # still referenced: nothing swept at start-up
    sub, connack = connect(roost, "offline", clean=True)  # [MQTT-3.1.2-4] discards it
    assert not connack.session_present
    wait_for_stored(roost, 0)
