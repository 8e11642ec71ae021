"""A persistent session handed over between worker processes: its QoS 1/2 exchanges under
way keep their packet ids and complete on the new worker; a hand-over arriving after the
claim timed out (`[server] claim_timeout = 0`) is merged, not lost (docs/workers.md)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.cluster.codec import HEADER, Kind, Reader, Writer
from roost.cluster.handover import HandOver, read_hand_over, write_hand_over
from roost.core.message import Delivery, Message
from roost.core.session import SessionSubscription
from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Packet,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscription,
)
from tests.integration.helpers import TIMEOUT, V5, V311, Client, bye, props
from tests.rawclient import RawClient
from tests.workers.conftest import (
    WHERE,
    Workers,
    free_port,
    leave_subscribed,
    raw_worker_of,
    stored_sessions,
)

LATE = "[server]\nclaim_timeout = 0\nhand_over_delay = 0.5"
VERSIONS = {V5: ProtocolVersion.V5, V311: ProtocolVersion.V311}


def place(
    workers: Workers, client_id: str, version: int
) -> tuple[RawClient, int, bool, list[Packet]]:
    """One persistent connection (clean start 0; v5: expiry 300 s): the client, the worker it
    is on, Session Present, and what the broker sent between CONNACK and the answer to
    our SUBSCRIBE (the resent exchanges [MQTT-4.4.0-1])."""
    client = RawClient(workers.host, workers.port, VERSIONS[version], timeout=TIMEOUT)
    expiry = Properties(session_expiry_interval=300) if version == V5 else None
    connack = client.connect(client_id, clean_start=False, properties=expiry)
    assert isinstance(connack, Connack) and connack.reason_code == 0, connack
    worker, _, before = raw_worker_of(client)
    return client, worker, connack.session_present, before


def recv(client: RawClient) -> Packet:
    """The next packet, a later `$SYS` round aside."""
    while isinstance(packet := client.recv(), Publish) and packet.topic == WHERE:
        pass
    return packet


def open_exchanges(workers: Workers, client_id: str, version: int) -> tuple[int, int, int]:
    """On worker 0, a session with a QoS 1 PUBLISH unacknowledged, a QoS 2 one released
    (PUBREC received, PUBREL sent), a QoS 2 one unacknowledged, and inbound QoS 2 packet
    id 7 awaiting PUBREL; left (DISCONNECT). Their packet ids."""
    for _ in range(60):
        sub, worker, _, _ = place(workers, client_id, version)
        if worker == 0:
            break
        bye(sub)
    else:
        pytest.fail("could not reach worker 0")
    topic = f"ids/{client_id}"
    sub.subscribe(topic, 2)
    pub = workers.connect_on(0)
    pub.publish(topic, b"m0", 1)  # acknowledged: the ids of the next ones are not 1
    first = recv(sub)
    assert isinstance(first, Publish) and first.payload == b"m0"
    sub.send(Puback(packet_id=first.packet_id or 0))
    for payload, qos in ((b"m1", 1), (b"m2", 2), (b"m3", 2)):
        pub.publish(topic, payload, qos)
    pub.disconnect()
    m1, m2, m3 = recv(sub), recv(sub), recv(sub)
    assert isinstance(m1, Publish) and isinstance(m2, Publish) and isinstance(m3, Publish)
    assert [m.payload for m in (m1, m2, m3)] == [b"m1", b"m2", b"m3"]
    a, b, c = m1.packet_id, m2.packet_id, m3.packet_id
    assert a and b and c and a != 1
    sub.send(Pubrec(packet_id=b))
    assert recv(sub) == Pubrel(packet_id=b)
    sub.publish(f"in/{client_id}", b"inbound", 2, packet_id=7)
    answer = recv(sub)  # v5: 0x10 No matching subscribers
    assert isinstance(answer, Pubrec) and answer.packet_id == 7
    bye(sub)
    return a, b, c


def resume(
    workers: Workers, client_id: str, version: int, ids: tuple[int, int, int], on: int | None
) -> RawClient:
    """Resume the session until it is on worker `on` (None: any); each time it gets
    PUBLISH DUP=1, PUBREL, PUBLISH DUP=1 under the same packet ids."""
    a, b, c = ids
    for _ in range(60):
        sub, worker, present, resent = place(workers, client_id, version)
        assert present
        assert [(type(p).__name__, getattr(p, "packet_id", None)) for p in resent] == [
            ("Publish", a),
            ("Pubrel", b),
            ("Publish", c),
        ]
        again1, _, again3 = resent
        assert isinstance(again1, Publish) and isinstance(again3, Publish)
        assert (again1.payload, again1.qos, again1.dup) == (b"m1", 1, True)
        assert (again3.payload, again3.qos, again3.dup) == (b"m3", 2, True)
        if on is None or worker == on:
            return sub
        bye(sub)  # resumed where it was: again
    pytest.fail(f"could not reach worker {on}")


def complete(
    workers: Workers, sub: RawClient, client_id: str, version: int, ids: tuple[int, int, int]
) -> None:
    """Each exchange completes under its packet id; nothing is resent afterwards."""
    a, b, c = ids
    sub.send(Puback(packet_id=a))
    sub.send(Pubcomp(packet_id=b))
    sub.send(Pubrec(packet_id=c))
    assert recv(sub) == Pubrel(packet_id=c)
    sub.send(Pubcomp(packet_id=c))
    sub.send(Pubrel(packet_id=7))
    assert recv(sub) == Pubcomp(packet_id=7)  # v5: 0x00, not 0x92 Packet Identifier not found
    bye(sub)
    sub, _, present, resent = place(workers, client_id, version)
    assert present and resent == []
    bye(sub)


@pytest.mark.parametrize("version", [V5, V311])
def test_exchanges_under_way_keep_their_packet_ids_on_the_other_worker(
    workers: Workers, version: int
) -> None:
    """[MQTT-4.4.0-1] [MQTT-3.3.1-1] a session with a QoS 1 PUBLISH unacknowledged, a
    QoS 2 one released (PUBREC received, PUBREL sent) and a QoS 2 one unacknowledged moves
    to the other worker: on resume there it gets PUBLISH DUP=1, PUBREL and PUBLISH DUP=1
    under the same packet ids, and each exchange completes with them; the inbound QoS 2
    packet id awaiting PUBREL survives too [MQTT-4.3.3-9]."""
    client_id = f"ids-{version}"
    ids = open_exchanges(workers, client_id, version)
    sub = resume(workers, client_id, version, ids, on=1)
    complete(workers, sub, client_id, version, ids)


def test_exchanges_handed_over_are_stored_by_the_new_worker(tmp_path: Path) -> None:
    """Durable mode: the exchanges handed over are journaled by the new worker under their
    packet ids (the released one as such): after a restart of the broker they are resent
    and complete as before [MQTT-4.4.0-1]."""
    broker = Workers(tmp_path, durability="sync")
    broker.start()
    try:
        ids = open_exchanges(broker, "stored-ids", V5)
        bye(resume(broker, "stored-ids", V5, ids, on=1))
        assert broker.stop() == 0, broker.text()
        # Stored by the new worker alone: the old one let its copy go.
        assert stored_sessions(tmp_path, "stored-ids") == {0: 0, 1: 1}
        broker.log.unlink()  # its lines would satisfy the next start's waits
        broker.start()
        sub = resume(broker, "stored-ids", V5, ids, on=None)
        complete(broker, sub, "stored-ids", V5, ids)
    finally:
        assert broker.stop() == 0, broker.text()


@pytest.mark.parametrize("durability", ["memory", "sync"])
def test_session_handed_over_after_the_claim_timed_out_is_merged(
    tmp_path: Path, durability: str
) -> None:
    """`claim_timeout = 0`: the CONNACK never waits for the other worker, whose hand-over
    of the session comes half a second later (`hand_over_delay`). Resumed on the other
    worker, the client gets a new session (Session Present 0) into which the late one is
    merged: its queued messages, in order [MQTT-4.6.0-6], and its subscription, which
    delivers a message published afterwards [MQTT-3.3.5-1]. Durable: the
    session is stored once, by the new worker."""
    broker = Workers(tmp_path, durability=durability, extra=LATE)
    broker.start()
    expiry = props(PacketTypes.CONNECT, SessionExpiryInterval=300)
    try:
        # Connected once: a try on the other worker would leave a session there.
        old = leave_subscribed(broker, "late", "late/t", 300)
        pub = broker.connect_on(old)
        for round_ in range(30):
            sent = [f"r{round_}m{i}".encode() for i in range(3)]
            for payload in sent:
                pub.publish("late/t", payload, 1)  # queued in the session once acknowledged
            client = Client(broker, "late")  # type: ignore[arg-type]
            connack = client.connect(clean_start=False, properties=expiry)
            client.subscribe(WHERE)
            worker, got = -1, []
            deadline = time.monotonic() + 10  # `$SYS` comes every second: not a bound
            while (worker < 0 or len(got) < len(sent)) and time.monotonic() < deadline:
                message = client.expect_message()
                if message.topic == WHERE:
                    worker = int(message.payload.split()[0])
                else:
                    got.append(message.payload)
            assert connack.session_present == (worker == old)
            assert got == sent
            client.unsubscribe(WHERE)
            if worker != old:
                # The merged subscription delivers what is published after it.
                broker.synced(client, pub)
                pub.publish("late/t", b"after the merge", 1)
                message = client.expect_message()
                while message.topic == WHERE:  # a `$SYS` round sent before the UNSUBSCRIBE
                    message = client.expect_message()
                assert (message.topic, message.payload) == ("late/t", b"after the merge")
                client.disconnect()
                break
            client.disconnect()
        else:
            pytest.fail("the client never landed on the other worker")
        broker.wait_log(rf"worker {worker}: session default/late handed over after its claim", 1)
        pub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()
    if durability == "sync":
        assert stored_sessions(tmp_path, "late") == {old: 0, worker: 1}


def test_session_handed_over_late_after_its_client_left_expires(tmp_path: Path) -> None:
    """[MQTT-3.1.2-23] the client resumes its session (expiry 3 s) on the other worker and
    leaves at once with Session Expiry Interval 0, before the late hand-over comes; the
    session installed by it, with no client, expires 3 s later: its stored copy goes too."""
    broker = Workers(tmp_path, durability="sync", extra=LATE)
    broker.start()
    try:
        old = leave_subscribed(broker, "gone", "gone/t", 3)
        # Clean start 0: each try landing on `old` resumes the session there and leaves
        # it as it was.
        client = broker.connect_on(
            1 - old,
            "gone",
            clean_start=False,
            properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3),
        )
        client.disconnect(0, props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
        new = 1 - old
        broker.wait_log(rf"worker {new}: session default/gone handed over \(", 1)
        deadline = time.monotonic() + 20
        while (stored := stored_sessions(tmp_path, "gone")) != {0: 0, 1: 0}:
            assert time.monotonic() < deadline, f"never expired: {stored}"
            time.sleep(0.1)
    finally:
        assert broker.stop() == 0, broker.text()


def test_session_is_not_handed_over_on_a_lost_link(tmp_path: Path) -> None:
    """The worker that claimed the session dies before the (delayed) answer: the holder
    keeps the session instead of sending it into a dead link; the client resuming it later
    gets the message queued meanwhile [MQTT-3.1.2-4] [MQTT-4.6.0-6]."""
    broker = Workers(tmp_path, extra="[server]\nclaim_timeout = 0\nhand_over_delay = 1")
    broker.start()
    expiry = props(PacketTypes.CONNECT, SessionExpiryInterval=300)
    try:
        old = leave_subscribed(broker, "lk", "lk/t", 300)
        probe = broker.connect_on(1 - old)
        pid = broker.worker_of(probe)[1]
        probe.disconnect()
        pub = broker.connect_on(old)
        for _ in range(60):
            client = Client(broker, "lk")  # type: ignore[arg-type]
            # Session Present 1: resumed where it is; 0: on the other worker, claiming it.
            if not client.connect(clean_start=False, properties=expiry).session_present:
                os.kill(pid, signal.SIGKILL)
                client.close()
                break
            client.disconnect()
        else:
            pytest.fail("the client never landed on the other worker")
        broker.wait_log(
            rf"worker {old}: link to worker {1 - old} lost before the answer to its claim "
            r"of default/lk",
            1,
        )
        pub.publish("lk/t", b"kept", 1)
        pub.disconnect()
        broker.wait_log(rf"worker {old}: linked to worker {1 - old}", 2)
        client = Client(broker, "lk")  # type: ignore[arg-type]
        client.connect(clean_start=False, properties=expiry)
        assert client.expect_message().payload == b"kept"  # resumed, or merged on the other
        client.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


class PortClient(RawClient):
    """A raw v5 client from a chosen local port: the kernel gives each connection from it
    to the same worker (SO_REUSEPORT hashes the addresses); `abort` leaves no TIME_WAIT."""

    def __init__(self, workers: Workers, source_port: int) -> None:
        super().__init__(
            workers.host, workers.port, timeout=TIMEOUT, source_address=("127.0.0.1", source_port)
        )

    def abort(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def test_session_handed_over_late_is_not_merged_into_a_clean_start(tmp_path: Path) -> None:
    """[MQTT-3.1.2-4] the client resumes its session on the other worker (the hand-over is
    a second late), then connects there again with Clean Start 1 before the hand-over
    comes: the late session is dropped, not merged; nothing of it reaches the client."""
    broker = Workers(tmp_path, extra="[server]\nclaim_timeout = 0\nhand_over_delay = 1")
    broker.start()
    expiry = Properties(session_expiry_interval=300)
    try:
        holder = Client(broker, "cs")  # type: ignore[arg-type]
        holder.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
        old = broker.worker_of(holder)[0]
        new = 1 - old
        for _ in range(60):
            port = free_port()
            probe = PortClient(broker, port)
            probe.connect("cs-probe")
            index, _, _ = raw_worker_of(probe)
            probe.abort()
            if index == new:
                break  # connections from `port` go to `new`
        else:
            pytest.fail(f"no local port whose connections go to worker {new}")
        holder.subscribe("cs/t", 1)
        holder.disconnect()
        pub = broker.connect_on(old)
        pub.publish("cs/t", b"old", 1)  # queued in the session on `old`
        first = PortClient(broker, port)
        connack = first.connect("cs", clean_start=False, properties=expiry)
        assert isinstance(connack, Connack) and not connack.session_present  # on `new`
        first.abort()
        client = PortClient(broker, port)
        connack = client.connect("cs", clean_start=True, properties=expiry)
        assert isinstance(connack, Connack) and not connack.session_present
        broker.wait_log(rf"worker {new}: session default/cs handed over after its client", 1)
        assert isinstance(client.subscribe("cs/probe", 1), Suback)
        client.publish("cs/probe", b"probe", 1, packet_id=1)  # delivered on its worker
        while not isinstance(packet := client.recv(), Publish):
            assert isinstance(packet, Puback), packet
        assert packet.payload == b"probe"  # nothing of the old session before it
        bye(client)
        pub.disconnect()
    finally:
        assert broker.stop() == 0, broker.text()


def test_hand_over_frame_keeps_packet_ids_and_released_flags() -> None:
    """The CLAIMED frame's session: each exchange under way with its packet id, QoS, DUP
    and released flag [MQTT-4.4.0-1], queued messages in order with their v5 properties
    and expiry, inbound QoS 2 ids; decoded as encoded."""
    message = Message(
        tenant="t",
        topic="a/b",
        payload=b"\x00payload",
        qos=2,
        properties=Properties(content_type="text/plain", user_properties=(("k", "v"),)),
        expires_at=1234.5,
        publisher="p",
        created_at=1000.25,
    )
    options = Subscription(topic_filter="$share/g/a/#", qos=2, no_local=True, retain_handling=2)
    h = HandOver(
        expiry_interval=300,
        device_id="dev",
        subscription_qos=True,
        subscriptions=[
            SessionSubscription(
                topic_filter="$share/g/a/#", options=options, subscription_identifier=9
            )
        ],
        inflight=[
            Delivery(message=message, qos=1, retain=False, packet_id=65_535, dup=True),
            Delivery(message=message, qos=2, retain=True, packet_id=3, released=True),
        ],
        queued=[
            Delivery(message=message, qos=2, retain=False, subscription_identifiers=(9, 70_000))
        ],
        awaiting_rel=[7, 65_000],
    )
    w = Writer(Kind.CLAIMED)
    write_hand_over(w, h)
    frame = w.frame()
    assert read_hand_over(Reader(frame[5:])) == h


def test_a_hand_over_keeps_every_subscription_option() -> None:
    """The subscriptions a hand-over carries come back with their QoS, No Local, Retain As
    Published, Retain Handling [MQTT-3.8.3-1] and Subscription Identifier, as the
    Subscription Options byte of a SUBSCRIBE carries them."""
    subscriptions = [
        SessionSubscription(
            topic_filter=f"{n}/#",
            options=Subscription(
                topic_filter=f"{n}/#",
                qos=n % 3,
                no_local=bool(n & 1),
                retain_as_published=bool(n & 2),
                retain_handling=n % 3,
            ),
            subscription_identifier=n or None,
        )
        for n in range(6)
    ]
    w = Writer(Kind.CLAIMED)
    write_hand_over(w, HandOver(300, "device-1", True, subscriptions=subscriptions))
    back = read_hand_over(Reader(w.frame()[HEADER.size :]))
    assert back.subscriptions == subscriptions
    assert (back.expiry_interval, back.device_id, back.subscription_qos) == (300, "device-1", True)
