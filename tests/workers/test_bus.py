"""The local bus under stress: a link whose reader stops (flow control), messages
published while a worker is not linked (held until it is), and subscribers whose queues
grow deep (one or several taking nothing, or fed by local publishers); docs/workers.md."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

from roost.cluster.link import DEEP_PATIENCE, HIGH_WATER
from tests.integration.helpers import V5, Client, props, wait_until
from tests.workers.conftest import Workers

CONNECT = 1  # paho PacketTypes.CONNECT
FLOOD = 400
PAYLOAD = 16 * 1024


def test_flooded_link_holds_the_publisher_and_loses_no_qos1_message(tmp_path: Path) -> None:
    """The subscriber's worker stops reading the bus (SIGSTOP): the publishing worker's
    buffer for it stays bounded (the publisher's input is paused above the high-water
    mark) and, once it reads again, every QoS 1 message arrives in order [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path)
    broker.start()
    try:
        sub, pub = broker.across("flood/t")
        _, pid = broker.worker_of(sub)
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(FLOOD):
                payload = i.to_bytes(4, "big") * (PAYLOAD // 4)
                assert pub.paho.publish("flood/t", payload, 1).rc == 0
            broker.wait_log(r"worker 0: link to worker 1 paused", 1)
        finally:
            os.kill(pid, signal.SIGCONT)
        got = sub.expect_messages(FLOOD)
        assert [int.from_bytes(m.payload[:4], "big") for m in got] == list(range(FLOOD))
        broker.wait_log(r"worker 0: link to worker 1 resumed", 1)
        found = re.search(r"link to worker 1 resumed \(at most (\d+) bytes", broker.text())
        assert found is not None
        # Beyond the mark: at most what the paused publisher's last read still held.
        assert int(found.group(1)) <= HIGH_WATER + 1024 * 1024
        assert FLOOD * PAYLOAD > 4 * HIGH_WATER  # unbounded, the whole flood would wait
        pub.disconnect()
        sub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_messages_published_while_a_worker_is_down_reach_it_when_it_is_back(
    tmp_path: Path,
) -> None:
    """Durable mode: a persistent session on worker 1; worker 1 dies and stays down (the
    supervisor is stopped) while worker 0's client publishes; once worker 1 is back and
    linked, the held messages reach the session [MQTT-3.1.2-5], in order [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, durability="sync")
    broker.start()
    assert broker.proc is not None
    try:
        expiry = props(CONNECT, SessionExpiryInterval=300)
        holder = broker.connect_on(1, "absent", clean_start=False, properties=expiry)
        pub = broker.connect_on(0)
        holder.subscribe("held/t", 1)
        broker.synced(holder, pub)
        _, pid = broker.worker_of(holder)
        holder.disconnect()
        os.kill(broker.proc.pid, signal.SIGSTOP)  # no restart until SIGCONT
        try:
            os.kill(pid, signal.SIGKILL)
            broker.wait_log(r"worker 0: link to worker 1 lost", 1)
            for i in range(3):
                pub.publish("held/t", f"h{i}".encode(), 1)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        broker.wait_log(rf"worker 1 \(pid {pid}\) exited", 1)
        broker.wait_log(r"worker 0: \d+ messages held for worker 1 sent", 1)
        back = Client(broker, "absent", V5)  # type: ignore[arg-type]
        back.connect(clean_start=False, properties=expiry)
        got = back.expect_messages(3)
        assert [m.payload for m in got] == [b"h0", b"h1", b"h2"]
        back.disconnect()
        pub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_messages_larger_than_a_read_cross_whole_and_in_order(workers: Workers) -> None:
    """Frames split over many reads of the link (payloads near `max_packet_size`, mixed
    with small ones) arrive whole and in order [MQTT-4.6.0-6]."""
    sub, pub = workers.across("big/t")
    sent = [bytes([i]) * (1_000_000 if i % 2 else 10) for i in range(6)]
    for payload in sent:
        pub.publish("big/t", payload, 1)
    assert [m.payload for m in sub.expect_messages(len(sent))] == sent
    pub.disconnect()
    sub.disconnect()


def test_workers_open_their_listeners_once_linked(workers: Workers) -> None:
    """A worker waits for its links before it accepts clients, so that a client of the
    first moments is claimed box-wide (docs/workers.md): both workers log their links
    before either listener opens."""
    text = workers.text()
    linked = [
        text.index("worker 0: linked to worker 1"),
        text.index("worker 1: linked to worker 0"),
    ]
    listening = [m.start() for m in re.finditer(r"listener default: mqtt over tcp", text)]
    assert len(listening) == 2
    assert max(linked) < min(listening)


def test_a_deep_subscriber_queue_holds_the_link_and_loses_no_qos1_message(
    tmp_path: Path,
) -> None:
    """A subscriber on worker 1 stops acknowledging: its queue may hold 300 messages (and
    20 in flight), and 1,000 QoS 1 messages come from worker 0 (all acknowledged to the
    publisher); it acknowledges again once 321 of them are acknowledged to the publisher,
    more than it can hold. Worker 1 stops taking forwarded messages while the queue is
    deep instead of overflowing it (within the link's patience, which the log shows it
    never lost), so once the subscriber acknowledges again every message arrives, in
    order [MQTT-4.6.0-6]; the overflow policy drops none (docs/workers.md). The publisher's
    PUBACKs say 0x00: a subscriber on another worker is a matching one, not 0x10."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        sub, pub = broker.across("deep/t")
        sub.paho.manual_ack_set(True)
        codes: list[int] = []

        def publish_all() -> None:
            for i in range(1_000):
                codes.append(pub.publish("deep/t", i.to_bytes(4, "big"), 1))

        publisher = threading.Thread(target=publish_all)
        publisher.start()
        # Acknowledged to the publisher: more than the subscriber's queue and inflight
        # window hold together (it takes nothing meanwhile, for less than the link's
        # patience, DEEP_PATIENCE, which the log shows was not exhausted).
        held = 300 + 20
        wait_until(lambda: len(codes) > held, 30, f"{held + 1} PUBACKs")
        got = []
        while len(got) < 1_000:
            message = sub.expect_message()
            got.append(int.from_bytes(message.payload, "big"))
            sub.paho.ack(message.mid, 1)
        publisher.join()
        assert codes == [0] * 1_000
        assert got == list(range(1_000))
        # The link held for the subscriber all along (link.py DEEP_PATIENCE, bus.py).
        assert "does not take its messages" not in broker.text()
        pub.disconnect()
        sub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_a_subscriber_that_takes_nothing_does_not_hold_the_others_back(tmp_path: Path) -> None:
    """A subscriber on worker 1 never acknowledges: after DEEP_PATIENCE without progress
    worker 1 stops waiting for it (its own queue limit applies) and another session on
    worker 1 still receives what worker 0 forwards [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        stuck = broker.connect_on(1)
        other = broker.connect_on(1)
        pub = broker.connect_on(0)
        stuck.paho.manual_ack_set(True)
        stuck.subscribe("stuck/t", 1)
        other.subscribe("other/t", 1)
        broker.synced(stuck, pub)
        broker.synced(other, pub)
        for i in range(400):
            pub.publish("stuck/t", i.to_bytes(4, "big"), 1)
        pub.publish("other/t", b"still flowing", 1)
        assert other.expect_message(timeout=3 * DEEP_PATIENCE).payload == b"still flowing"
        broker.wait_log(r"worker 1: \S+ does not take its messages", 1)
        for client in (stuck, other, pub):
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_two_subscribers_that_take_nothing_do_not_hold_the_others_back(tmp_path: Path) -> None:
    """Two subscribers on worker 1 never acknowledge, on topics published in turn: each is
    given up on after DEEP_PATIENCE without progress, and both stay given up on, so the
    link does not stop for one, then the other, message after message; a third session on
    worker 1 still receives what worker 0 forwards [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        first = broker.connect_on(1)
        second = broker.connect_on(1)
        other = broker.connect_on(1)
        pub = broker.connect_on(0)
        for client, topic in ((first, "stuck/a"), (second, "stuck/b")):
            client.paho.manual_ack_set(True)
            client.subscribe(topic, 1)
            broker.synced(client, pub)
        other.subscribe("other/t", 1)
        broker.synced(other, pub)
        for i in range(400):
            pub.publish("stuck/a", i.to_bytes(4, "big"), 1)
            pub.publish("stuck/b", i.to_bytes(4, "big"), 1)
        pub.publish("other/t", b"still flowing", 1)
        # Once per subscriber, not once per message (each hold lasts DEEP_PATIENCE).
        assert other.expect_message(timeout=5 * DEEP_PATIENCE).payload == b"still flowing"
        broker.wait_log(r"worker 1: \S+ does not take its messages", 2)
        for client in (first, second, other, pub):
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_a_deep_queue_fed_by_local_publishers_does_not_hold_the_link(tmp_path: Path) -> None:
    """A subscriber on worker 1 takes nothing of what a publisher on worker 1 sends it (its
    queue grows deep): the link from worker 0 is not held for it, since the link adds
    nothing to that queue. A message from worker 0 reaches another session on worker 1
    without worker 1 first waiting DEEP_PATIENCE and giving up on the subscriber (which it
    would log before going on) [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, mqtt="max_inflight = 20\nmax_queued_messages = 300")
    broker.start()
    try:
        other, pub = broker.across("other/t")
        stuck = broker.connect_on(1)
        local = broker.connect_on(1)
        stuck.paho.manual_ack_set(True)
        stuck.subscribe("local/t", 1)
        for i in range(400):  # past half its queue limit: deep
            local.publish("local/t", i.to_bytes(4, "big"), 1)
        pub.publish("other/t", b"not held", 1)
        assert other.expect_message().payload == b"not held"
        assert "does not take its messages" not in broker.text()
        for client in (stuck, local, other, pub):
            client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()
