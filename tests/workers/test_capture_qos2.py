"""A QoS 2 PUBLISH captured by a stream on worker 0 from another worker (docs/workers.md,
"Streams"): when worker 0 never confirms the capture, the packet id does not stay in the
session as received, so the PUBLISH the device sends again is captured."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Packet,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Unsuback,
    Unsubscribe,
)
from tests.rawclient import RawClient
from tests.workers.conftest import Workers
from tests.workers.test_streams import payloads, start, wait_declared_on

V311 = ProtocolVersion.V311
PACKET_ID = 7


def expect(raw: RawClient, kind: type[Packet]) -> Packet:
    """The next packet of type `kind`, skipping `$SYS` messages."""
    while True:
        packet = raw.recv(10)
        if isinstance(packet, kind):
            return packet
        skipped = isinstance(packet, Unsuback) or (
            isinstance(packet, Publish) and packet.topic.startswith("$SYS")
        )
        assert skipped, packet


def device(broker: Workers, client_id: str, worker: int | None = None) -> tuple[RawClient, str]:
    """A 3.1.1 device with a persistent session (clean session 0) as `client_id`, on
    `worker` (connecting with new ids `client_id-n` until the kernel picks it) or anywhere."""
    for attempt in range(60):
        raw = RawClient(broker.host, broker.port, V311, timeout=10)
        name = client_id if worker is None else f"{client_id}-{attempt}"
        connack = raw.connect(name, clean_start=False)
        assert isinstance(connack, Connack) and connack.reason_code == 0
        if worker is None:
            return raw, name
        assert isinstance(raw.subscribe("$SYS/broker/worker"), Suback)
        report = expect(raw, Publish)
        raw.send(Unsubscribe(packet_id=2, topic_filters=("$SYS/broker/worker",)))
        assert isinstance(report, Publish)
        if int(report.payload.split()[0]) == worker:
            return raw, name
        raw.close()
    raise AssertionError(f"could not reach worker {worker}")


def resend_is_captured(broker: Workers, client_id: str) -> None:
    """The device reconnects and sends its PUBLISH again, DUP=1 [MQTT-4.3.3-10]; PUBREC,
    PUBREL, PUBCOMP."""
    raw, _ = device(broker, client_id)
    raw.send(Publish(topic=f"q2/{client_id}", payload=b"m", qos=2, dup=True, packet_id=PACKET_ID))
    pubrec = expect(raw, Pubrec)
    assert pubrec.packet_id == PACKET_ID  # type: ignore[attr-defined]
    raw.send(Pubrel(packet_id=PACKET_ID))
    assert expect(raw, Pubcomp).packet_id == PACKET_ID  # type: ignore[attr-defined]
    raw.close()


def test_qos2_publish_sent_again_after_an_unconfirmed_capture_is_captured(
    tmp_path: Path,
) -> None:
    """Worker 0 stops, then dies, while two 3.1.1 devices on worker 1 wait for the PUBREC
    of a QoS 2 message a stream captures: one is still connected (worker 1 closes its
    connection unacknowledged [MQTT-4.4.0-1]), the other has gone already. Worker 0 comes
    back with its streams (durable); each device reconnects to its persistent session and
    sends the PUBLISH again with DUP=1: it is captured (not answered as a message already
    received, which it never was)."""
    broker, api = start(tmp_path, durability="sync")
    try:
        api.declare("q2", ["q2/#"])
        probe = broker.connect_on(1)
        wait_declared_on(probe, "q2/probe")
        holder = broker.connect_on(0)
        _, pid = broker.worker_of(holder)
        (stays, stays_id), (leaves, leaves_id) = (
            device(broker, "stays", 1),
            device(broker, "leaves", 1),
        )
        ids = [stays_id, leaves_id]
        watcher = broker.connect_on(1)
        watcher.subscribe("q2/#", 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            for raw, client_id in zip((stays, leaves), ids, strict=True):
                raw.publish(f"q2/{client_id}", b"m", 2, packet_id=PACKET_ID)
            # Routed on worker 1 in the same step as the capture sent to worker 0.
            got = sorted(m.topic for m in watcher.expect_messages(2))
            assert got == sorted(f"q2/{client_id}" for client_id in ids)
            leaves.close()
        finally:
            os.kill(pid, signal.SIGKILL)
        assert not any(isinstance(p, Pubrec) for p in stays.expect_closed(10))
        broker.wait_log(rf"worker 0 \(pid {pid}\) exited", 1)
        broker.wait_log(r"worker 1: linked to worker 0", 2)
        wait_declared_on(probe, "q2/probe")
        for client_id in ids:
            resend_is_captured(broker, client_id)
        got_messages = api.fetch_all("q2")
        captured = {client_id: payloads(got_messages, f"q2/{client_id}") for client_id in ids}
        assert captured == {client_id: [b"m"] for client_id in ids}
        for client in (probe, holder, watcher):
            client.close()
    finally:
        broker.stop()
