"""A connection's input paused for several reasons at once (server/flow.py INPUT_*): the
end of one reason does not resume a publisher another one still holds. Here the link to
a stopped worker is over its high-water mark while the publisher's large reads are taken
over several loop turns (handler.PACKETS_PER_TURN packets per turn)."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

from roost.cluster.link import HIGH_WATER
from roost.mqtt.codec import encode
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Pingreq, Pingresp, Publish
from roost.server.handler import PACKETS_PER_TURN
from tests.rawclient import RawClient
from tests.workers.conftest import Workers, raw_worker_of

V311 = ProtocolVersion.V311
# Small messages: a 256 KiB read holds several loop turns' worth of them.
PAYLOAD = 400
FLOOD_BYTES = 12 * 1024 * 1024
CHUNK = 64 * 1024


class Flood(threading.Thread):
    """Writes many small QoS 0 PUBLISH packets as fast as the broker reads them."""

    def __init__(self, client: RawClient, topic: str) -> None:
        super().__init__(daemon=True)
        self.client = client
        one = encode(Publish(topic=topic, payload=b"x" * PAYLOAD, qos=0), V311)
        per_chunk = CHUNK // len(one)
        self.chunk = one * per_chunk
        self.chunks = FLOOD_BYTES // len(self.chunk)
        self.sent = 0  # chunks written
        self.error: BaseException | None = None
        assert per_chunk * 4 > PACKETS_PER_TURN  # a full read takes several turns

    def run(self) -> None:
        sock = self.client.sock
        sock.settimeout(60)
        try:
            for _ in range(self.chunks):
                sock.sendall(self.chunk)
                self.sent += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


def wait_held_or_done(flood: Flood, quiet: float = 1.0, timeout: float = 60) -> None:
    """Return once the flood is all written, or once the broker has stopped reading it
    (nothing written for `quiet` seconds)."""
    deadline = time.monotonic() + timeout
    last, since = flood.sent, time.monotonic()
    while flood.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        if flood.sent != last:
            last, since = flood.sent, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    assert not flood.is_alive(), "the flood neither ended nor stopped"


def test_a_large_read_ending_does_not_resume_a_publisher_the_link_holds(tmp_path: Path) -> None:
    """The subscriber's worker stops reading the bus (SIGSTOP). The publisher's reads are
    large (more packets than one loop turn takes), so its input is also paused between
    turns; when such a read is done, the publisher stays paused as long as the link is
    over its high-water mark: the link's buffer stays bounded (at most the read in
    progress beyond the mark). Once the worker reads again, the publisher is read again
    (its PINGREQ is answered [MQTT-3.12.4-1])."""
    broker = Workers(tmp_path)
    broker.start()
    try:
        pub = RawClient(broker.host, broker.port, V311, timeout=10)
        pub.connect("flood-pub")
        pub_worker, _, _ = raw_worker_of(pub)
        other = 1 - pub_worker
        sub, pid = broker.raw_on(other, "flood-sub", V311)
        sub.subscribe("flood/t", 0, packet_id=3)
        # The subscription known to the publisher's worker: a probe gets through.
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "subscription never reached the other worker"
            pub.publish("flood/t", b"probe")
            try:
                packet = sub.recv(0.2)
            except TimeoutError:
                continue
            if isinstance(packet, Publish) and packet.topic == "flood/t":
                break
        os.kill(pid, signal.SIGSTOP)
        flood = Flood(pub, "flood/t")
        try:
            flood.start()
            broker.wait_log(rf"worker {pub_worker}: link to worker {other} paused", 1)
            wait_held_or_done(flood)
        finally:
            os.kill(pid, signal.SIGCONT)
        flood.join(timeout=60)
        assert not flood.is_alive() and flood.error is None, flood.error
        pub.send_raw(encode(Pingreq(), V311))
        packet = pub.recv(10)
        while not isinstance(packet, Pingresp):
            packet = pub.recv(10)
        pattern = rf"worker {pub_worker}: link to worker {other} resumed \(at most (\d+) bytes"
        broker.wait_log(pattern, 1)
        found = re.search(pattern, broker.text())
        assert found is not None
        # Beyond the mark: at most what the publisher's read in progress still held.
        assert int(found.group(1)) <= HIGH_WATER + 1024 * 1024
        assert FLOOD_BYTES > 4 * HIGH_WATER  # unbounded, much more would wait
        pub.close()
        sub.close()
    finally:
        assert broker.stop() == 0, broker.text()
