"""Each kind of state survives `kill -9` of a real `roost serve` process; a corrupt or
newer database is refused at start with a clear message."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roost.mqtt.packets import (
    Properties,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Will,
)
from tests.durability.conftest import (
    KEEP,
    client,
    connect,
    crash_and_restart,
    publish_acked,
    subscribe,
)
from tests.durability.crash import ROOT, Broker
from tests.rawclient import Closed


def test_subscriptions_and_session_survive(roost: Broker) -> None:
    sub, connack = connect(roost, "keeper", clean=True)
    assert not connack.session_present
    subscribe(sub, "state/+", 1, sub_id=7)
    sub.close()
    crash_and_restart(roost)
    sub, connack = connect(roost, "keeper")
    assert connack.session_present  # [MQTT-3.2.2-3]
    pub, _ = connect(roost, "pub", clean=True, properties=Properties())
    publish_acked(pub, "state/x", b"after", 1, 1)
    got = sub.recv()
    assert isinstance(got, Publish) and got.payload == b"after"
    assert got.properties.subscription_identifiers == (7,)


def test_queued_messages_of_offline_session_survive(roost: Broker) -> None:
    sub, _ = connect(roost, "away", clean=True)
    subscribe(sub, "q/#", 2)
    sub.close()
    pub, _ = connect(roost, "pub", clean=True, properties=Properties())
    publish_acked(pub, "q/1", b"one", 1, 1)
    publish_acked(pub, "q/2", b"two", 2, 2)
    crash_and_restart(roost)
    sub, connack = connect(roost, "away")
    assert connack.session_present
    first, second = sub.recv(), sub.recv()
    assert isinstance(first, Publish) and isinstance(second, Publish)
    assert [
        (first.topic, first.payload, first.qos),
        (second.topic, second.payload, second.qos),
    ] == [
        ("q/1", b"one", 1),
        ("q/2", b"two", 2),
    ]


def test_unacknowledged_outbound_qos1_redelivered_with_dup(roost: Broker) -> None:
    """[MQTT-4.4.0-1] unacknowledged PUBLISH resent on resume, DUP=1 [MQTT-3.3.1-1]."""
    sub, _ = connect(roost, "slow", clean=True)
    subscribe(sub, "r/t", 1)
    pub, _ = connect(roost, "pub", clean=True, properties=Properties())
    publish_acked(pub, "r/t", b"m", 1, 1)
    first = sub.recv()
    assert isinstance(first, Publish) and not first.dup
    sub.close()  # never acknowledged
    crash_and_restart(roost)
    sub, _ = connect(roost, "slow")
    again = sub.recv()
    assert isinstance(again, Publish)
    assert (again.payload, again.dup, again.packet_id) == (b"m", True, first.packet_id)


def test_outbound_pubrel_state_survives(roost: Broker) -> None:
    """After PUBREC the broker owes PUBREL, not the PUBLISH: no second delivery."""
    sub, _ = connect(roost, "q2sub", clean=True)
    subscribe(sub, "r2/t", 2)
    pub, _ = connect(roost, "pub", clean=True, properties=Properties())
    publish_acked(pub, "r2/t", b"once", 2, 1)
    got = sub.recv()
    assert isinstance(got, Publish) and got.qos == 2 and got.packet_id is not None
    sub.send(Pubrec(packet_id=got.packet_id))
    rel = sub.recv()
    assert isinstance(rel, Pubrel)
    sub.close()  # PUBCOMP never sent
    crash_and_restart(roost)
    sub, _ = connect(roost, "q2sub")
    again = sub.recv()
    assert isinstance(again, Pubrel) and again.packet_id == got.packet_id
    sub.send(Pubcomp(packet_id=got.packet_id))
    with pytest.raises(TimeoutError):
        sub.recv(timeout=0.5)


def test_inbound_qos2_awaiting_pubrel_survives(roost: Broker) -> None:
    """A QoS 2 PUBLISH resent after the crash is not delivered twice [MQTT-4.3.3-10]."""
    sub, _ = connect(roost, "watch", clean=True)
    subscribe(sub, "in2/t", 2)
    pub, _ = connect(roost, "q2pub", clean=True)
    pub.publish("in2/t", b"exactly-once", qos=2, packet_id=42)
    assert isinstance(pub.recv(), Pubrec)
    pub.close()
    crash_and_restart(roost)
    pub, connack = connect(roost, "q2pub")
    assert connack.session_present
    pub.send(Publish(topic="in2/t", payload=b"exactly-once", qos=2, packet_id=42, dup=True))
    assert isinstance(pub.recv(), Pubrec)
    pub.send(Pubrel(packet_id=42))
    comp = pub.recv()
    assert isinstance(comp, Pubcomp) and comp.reason_code == 0
    sub, _ = connect(roost, "watch")
    deliveries = []
    while True:
        try:
            packet = sub.recv(timeout=1.0)
        except TimeoutError:
            break
        if isinstance(packet, Publish):
            deliveries.append(packet.payload)
            sub.send(Pubrec(packet_id=packet.packet_id or 0))
        elif isinstance(packet, Pubrel):
            sub.send(Pubcomp(packet_id=packet.packet_id))
    assert deliveries == [b"exactly-once"]


def test_retained_set_and_delete_survive(roost: Broker) -> None:
    pub, _ = connect(roost, "pub", clean=True, properties=Properties())
    publish_acked(pub, "ret/a", b"kept", 1, 1, retain=True)
    publish_acked(pub, "ret/b", b"gone", 1, 2, retain=True)
    publish_acked(pub, "ret/b", b"", 1, 3, retain=True)
    crash_and_restart(roost)
    c, _ = connect(roost, "reader", clean=True, properties=Properties())
    subscribe(c, "ret/#", 1)
    got = c.recv()
    assert isinstance(got, Publish) and (got.topic, got.payload, got.retain) == (
        "ret/a",
        b"kept",
        True,
    )
    with pytest.raises(TimeoutError):
        c.recv(timeout=0.5)


def test_session_expiry_counts_time_while_down(roost: Broker) -> None:
    short, _ = connect(roost, "short", clean=True, properties=Properties(session_expiry_interval=1))
    subscribe(short, "x", 1)
    short.close()
    long, _ = connect(roost, "long", clean=True)
    long.close()
    roost.kill()
    time.sleep(1.5)
    roost.start()
    _, connack = connect(roost, "short", properties=Properties(session_expiry_interval=1))
    assert not connack.session_present
    _, connack = connect(roost, "long")
    assert connack.session_present


def test_pending_delayed_will_survives(roost: Broker) -> None:
    """A will waiting for its Will Delay Interval is published after a crash."""
    watcher, _ = connect(roost, "watcher", clean=True)
    subscribe(watcher, "wills/#", 1)
    dying = client(roost)
    dying.connect(
        "dying",
        properties=KEEP,
        will=Will(
            topic="wills/dying", payload=b"bye", qos=1, properties=Properties(will_delay_interval=2)
        ),
    )
    dying.close()  # no DISCONNECT: the will is pending
    time.sleep(0.3)
    crash_and_restart(roost)
    watcher, _ = connect(roost, "watcher")
    got = watcher.recv(timeout=6)
    assert isinstance(got, Publish) and (got.topic, got.payload) == ("wills/dying", b"bye")


def _serve(data_dir: Path) -> subprocess.CompletedProcess[str]:
    config = data_dir / "roost.toml"
    config.write_text(f'[store]\ndata_dir = "{data_dir}"\n')
    return subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def test_corrupt_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "roost.db").write_bytes(b"this is not an SQLite file at all" * 100)
    result = _serve(tmp_path)
    assert result.returncode != 0
    assert "not a usable Roost database" in result.stderr
    assert (tmp_path / "roost.db").read_bytes().startswith(b"this is not")  # untouched


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "roost.db")
    conn.execute("PRAGMA user_version = 999")
    conn.execute("CREATE TABLE future (x)")
    conn.commit()
    conn.close()
    result = _serve(tmp_path)
    assert result.returncode != 0
    assert "newer than this Roost understands" in result.stderr


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "roost.db")
    conn.execute("CREATE TABLE other_app (x)")
    conn.commit()
    conn.close()
    result = _serve(tmp_path)
    assert result.returncode != 0
    assert "no Roost schema version" in result.stderr


def test_client_sees_closed_connection_on_kill(roost: Broker) -> None:
    c, _ = connect(roost, "victim", clean=True)
    roost.kill()
    with pytest.raises(Closed):
        c.recv(timeout=5)
