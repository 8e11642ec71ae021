"""Queues beyond the in-memory budget live in the store: a persistent session keeps at
most `max_queued_in_memory` deliveries in RAM, reads the rest back in order, and the part
on disk survives a crash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from roost.mqtt.packets import Properties, Puback, Publish
from tests.conftest import BrokerHandle
from tests.durability.crash import Broker
from tests.durability.test_restart import KEEP, connect, subscribe
from tests.rawclient import RawClient


def drain(c: RawClient, expected: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < expected:
        packet = c.recv(timeout=10)
        if isinstance(packet, Publish):
            got.append(packet.payload)
            if packet.qos == 1:
                c.send(Puback(packet_id=packet.packet_id or 0))
    return got


def test_offline_queue_spills_to_store_and_comes_back_in_order(
    broker_factory: Callable[..., BrokerHandle],
) -> None:
    broker = broker_factory(max_queued_in_memory=10, max_queued_messages=10_000)
    sub = RawClient(broker.host, broker.port)
    sub.connect("spiller", clean_start=True, properties=KEEP)
    subscribe(sub, "spill/#", 1)
    sub.close()
    pub = RawClient(broker.host, broker.port)
    pub.connect("pub", properties=Properties())
    for i in range(100):
        pub.publish("spill/t", b"%03d" % i, qos=1, packet_id=i + 1)
        assert isinstance(pub.recv(), Puback)
    session = broker.call(lambda: broker.server.broker.sessions[("default", "spiller")])
    assert broker.call(lambda: (len(session.queue), session.spilled)) == (10, 90)
    sub = RawClient(broker.host, broker.port)
    assert sub.connect("spiller", clean_start=False, properties=KEEP).session_present  # type: ignore[union-attr]
    assert drain(sub, 100) == [b"%03d" % i for i in range(100)]
    deadline = time.monotonic() + 5
    state = None
    while time.monotonic() < deadline:
        state = broker.call(lambda: (len(session.queue), session.spilled, len(session.inflight)))
        if state == (0, 0, 0):
            break
        time.sleep(0.05)
    assert state == (0, 0, 0)


def test_spilled_queue_survives_kill_9(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.config.write_text(
        broker.config.read_text().replace("[mqtt]", "[mqtt]\nmax_queued_in_memory = 5")
    )
    broker.start()
    try:
        sub, _ = connect(broker, "spiller", clean=True)
        subscribe(sub, "spill/#", 1)
        sub.close()
        pub, _ = connect(broker, "pub", clean=True, properties=Properties())
        for i in range(40):
            pub.publish("spill/t", b"%02d" % i, qos=1, packet_id=i + 1)
            assert isinstance(pub.recv(), Puback)
        broker.kill()
        broker.start()
        sub, connack = connect(broker, "spiller")
        assert connack.session_present
        assert drain(sub, 40) == [b"%02d" % i for i in range(40)]
    finally:
        broker.stop()
