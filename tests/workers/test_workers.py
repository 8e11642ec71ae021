"""`roost serve --workers 2`: messages, retained messages, `$share` groups, takeover and
persistent sessions across the two worker processes (docs/workers.md)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.helpers import V5, Client, props
from tests.workers.conftest import Workers, stored_sessions

CONNECT = 1  # paho PacketTypes.CONNECT


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_message_reaches_a_subscriber_on_the_other_worker(workers: Workers, qos: int) -> None:
    """[MQTT-3.3.4-1] a matching subscriber gets the message, whichever worker it is on;
    at the QoS of the publication (equal to the subscription's)."""
    sub, pub = workers.across(f"cross/{qos}", qos)
    for i in range(5):
        pub.publish(f"cross/{qos}", f"m{i}".encode(), qos)
    got = sub.expect_messages(5)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(5)]
    assert {m.qos for m in got} == {qos}
    sub.expect_no_message()
    pub.disconnect()
    sub.disconnect()


def test_wildcards_across_workers_one_copy_per_session(workers: Workers) -> None:
    """[MQTT-3.3.4-2] overlapping subscriptions of one session: one copy; subscribers on
    both workers get theirs, the local one too."""
    remote = workers.connect_on(1)
    local = workers.connect_on(0)
    remote.subscribe("wild/+/temp", 1)
    remote.subscribe("wild/#", 1)
    local.subscribe("wild/#", 1)
    workers.synced(remote, local)
    local.publish("wild/room1/temp", b"21", 1)
    local.publish("wild/room1/hum", b"40", 1)
    assert sorted(m.topic for m in remote.expect_messages(2)) == [
        "wild/room1/hum",
        "wild/room1/temp",
    ]
    assert sorted(m.topic for m in local.expect_messages(2)) == [
        "wild/room1/hum",
        "wild/room1/temp",
    ]
    remote.expect_no_message()
    local.publish("other/room1/temp", b"x", 1)
    remote.expect_no_message()
    remote.disconnect()
    local.disconnect()


def test_retained_message_is_held_by_every_worker(workers: Workers) -> None:
    """[MQTT-3.3.1-6] a new subscription gets the retained message, on either worker;
    [MQTT-3.3.1-10] a retained empty payload removes it everywhere.

    Each retained publish is followed, on the same connection, by a live message that a
    witness on the other worker receives: the bus keeps each link's order, so the retained
    one has reached that worker by then."""
    pub = workers.connect_on(0)
    witness1 = workers.connect_on(1)
    witness1.subscribe("retseen/1", 1)
    workers.synced(witness1, pub)
    pub.publish("ret/a", b"kept", 1, retain=True)
    pub.publish("retseen/1", b"after kept", 1)
    assert witness1.expect_message().payload == b"after kept"
    for worker in (0, 1):
        sub = workers.connect_on(worker)
        sub.subscribe("ret/#", 1)
        message = sub.expect_message()
        assert (message.topic, message.payload, message.retain) == ("ret/a", b"kept", True)
        sub.disconnect()
    clearer = workers.connect_on(1)
    witness0 = workers.connect_on(0)
    witness0.subscribe("retseen/0", 1)
    workers.synced(witness0, clearer)
    clearer.publish("ret/a", b"", 1, retain=True)
    clearer.publish("retseen/0", b"after clear", 1)
    assert witness0.expect_message().payload == b"after clear"
    for worker in (0, 1):
        sub = workers.connect_on(worker)
        sub.subscribe("ret/#", 1)
        sub.expect_no_message()
        sub.disconnect()
    for client in (pub, clearer, witness0, witness1):
        client.disconnect()


def test_share_group_gets_each_message_once_box_wide(workers: Workers) -> None:
    """MQTT 5 section 4.8.2: each message goes to one member of a `$share` group, members
    on both workers; a non-shared subscriber still gets every message, once."""
    member0 = workers.connect_on(0)
    member1 = workers.connect_on(1)
    plain = workers.connect_on(1)
    member0.subscribe("$share/g/jobs/#", 1)
    member1.subscribe("$share/g/jobs/#", 1)
    plain.subscribe("jobs/#", 1)
    pub0 = workers.connect_on(0)
    pub1 = workers.connect_on(1)
    workers.synced(member1, pub0)
    workers.synced(plain, pub0)
    workers.synced(member0, pub1)
    sent = []
    for i in range(10):
        for pub, name in ((pub0, "a"), (pub1, "b")):
            pub.publish(f"jobs/{name}", f"{name}{i}".encode(), 1)
            sent.append(f"{name}{i}".encode())
    got = []
    deadline = time.monotonic() + 5
    while len(got) < len(sent) and time.monotonic() < deadline:
        for member in (member0, member1):
            while not member.messages.empty():
                got.append(member.messages.get().payload)
        time.sleep(0.05)
    member0.expect_no_message()
    member1.expect_no_message()
    for member in (member0, member1):
        while not member.messages.empty():
            got.append(member.messages.get().payload)
    assert sorted(got) == sorted(sent)
    assert sorted(m.payload for m in plain.expect_messages(len(sent))) == sorted(sent)
    plain.expect_no_message()
    for client in (member0, member1, plain, pub0, pub1):
        client.disconnect()


def test_takeover_of_a_client_connected_to_the_other_worker(workers: Workers) -> None:
    """[MQTT-3.1.4-3] the existing connection of the client id is closed, DISCONNECT
    0x8E Session taken over, though it is on another worker."""
    # `second` connects once per try: a retry landing on worker 0 would take `first` over
    # on its own worker, and the cross-worker path would not be tested.
    for _ in range(60):
        first = workers.connect_on(0, "taken")
        second = Client(workers, "taken", V5)  # type: ignore[arg-type]
        second.connect()
        if workers.worker_of(second)[0] == 1:
            break
        second.disconnect()
    else:
        pytest.fail("could not reach worker 1")
    assert first.expect_disconnect().reason_code == 0x8E
    second.subscribe("takeover/t", 1)
    pub = workers.connect_on(0)
    workers.synced(second, pub)
    pub.publish("takeover/t", b"x", 1)
    assert second.expect_message().payload == b"x"
    for client in (second, pub):
        client.disconnect()


def resume_on_worker_1(workers: Workers, client_id: str, topic: str, count: int = 3) -> None:
    """Queue messages for the offline session (held by worker 0 at first), then resume it
    until the kernel puts the connection on worker 1; each round must get its messages."""
    expiry = props(CONNECT, SessionExpiryInterval=300)
    pub = workers.connect_on(1)
    for round_ in range(30):
        sent = [f"r{round_}m{i}".encode() for i in range(count)]
        for payload in sent:
            pub.publish(topic, payload, 1)
        client = Client(workers, client_id)  # type: ignore[arg-type]
        connack = client.connect(clean_start=False, properties=expiry)
        assert connack.session_present
        client.subscribe("$SYS/broker/worker")
        got = client.expect_messages(count + 1)
        (sys_message,) = [m for m in got if m.topic.startswith("$SYS")]
        assert [m.payload for m in got if m.topic == topic] == sent
        client.unsubscribe("$SYS/broker/worker")
        client.disconnect()
        if sys_message.payload.split()[0] == b"1":
            pub.disconnect()
            return  # resumed on worker 1 (at least once; further rounds may move it back)
    pytest.fail("the client never landed on worker 1")


def test_persistent_session_resumed_on_the_other_worker(workers: Workers) -> None:
    """[MQTT-3.1.2-4] [MQTT-4.4.0-1] a session resumed on the other worker has its
    subscriptions and the messages queued while it was offline (handed over)."""
    expiry = props(CONNECT, SessionExpiryInterval=300)
    holder = workers.connect_on(0, "keeper", clean_start=False, properties=expiry)
    holder.subscribe("keep/t", 1)
    holder.disconnect()
    resume_on_worker_1(workers, "keeper", "keep/t")


def test_killed_worker_is_restarted_and_gets_the_retained_set(tmp_path: Path) -> None:
    """The parent restarts a worker that dies; the new one gets the retained messages from
    the other worker (memory durability) and routing between them resumes."""
    broker = Workers(tmp_path)
    broker.start()
    try:
        pub = broker.connect_on(0)
        pub.publish("restart/r", b"kept", 1, retain=True)
        victim = broker.connect_on(1)
        _, pid = broker.worker_of(victim)
        os.kill(pid, signal.SIGKILL)
        broker.wait_log(rf"worker 1 \(pid {pid}\) exited", 1)
        broker.wait_log(r"worker 0: linked to worker 1", 2)
        broker.wait_log(r"worker 1: linked to worker 0", 2)
        sub = broker.connect_on(1)
        sub.subscribe("restart/#", 1)
        assert sub.expect_message().payload == b"kept"
        broker.synced(sub, pub)
        pub.publish("restart/live", b"again", 1)
        assert sub.expect_message().payload == b"again"
        sub.disconnect()
        pub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_durable_session_handed_over_is_stored_by_the_new_worker(tmp_path: Path) -> None:
    """Durable mode, a store per worker: the session resumed on the other worker keeps
    its messages [MQTT-4.4.0-1], and is in the new worker's store, not the old one's."""
    broker = Workers(tmp_path, durability="sync")
    broker.start()
    try:
        expiry = props(CONNECT, SessionExpiryInterval=300)
        holder = broker.connect_on(0, "durable", clean_start=False, properties=expiry)
        holder.subscribe("dur/t", 1)
        holder.disconnect()
        resume_on_worker_1(broker, "durable", "dur/t")
    finally:
        assert broker.stop() == 0, broker.text()
    assert stored_sessions(tmp_path, "durable") == {0: 0, 1: 1}


def test_spilled_queue_is_handed_over_in_order(tmp_path: Path) -> None:
    """Durable mode, `max_queued_in_memory = 2`: the part of an offline session's queue that
    is on disk only is handed over too; all its messages arrive, in order [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, durability="sync", mqtt="max_queued_in_memory = 2")
    broker.start()
    try:
        expiry = props(CONNECT, SessionExpiryInterval=300)
        holder = broker.connect_on(0, "spiller", clean_start=False, properties=expiry)
        holder.subscribe("spill/t", 1)
        holder.disconnect()
        resume_on_worker_1(broker, "spiller", "spill/t", count=8)
    finally:
        assert broker.stop() == 0, broker.text()
