"""Quality of service over real sockets: QoS 0/1/2 both ways with paho 3.1, 3.1.1 and 5.0,
the downgrade to the subscription's QoS, packet identifiers per subscriber, redelivery with
DUP on resume and exactly-once delivery for QoS 2."""

from __future__ import annotations

import pytest

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import (
    Connack,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
)
from tests.integration.helpers import (
    TIMEOUT,
    V5,
    V31,
    V311,
    bye,
    hang_up,
    raw,
    session_of,
)

VERSIONS = [pytest.param(V311, id="v311"), pytest.param(V5, id="v5")]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_round_trip_at_each_qos_mqtt_4_3(broker, client_factory, version, qos):
    """[MQTT-4.3.1-1] [MQTT-4.3.2-1] [MQTT-4.3.3-1]: a message published at QoS n to a
    QoS n subscription arrives once, at QoS n, with its payload intact."""
    sub = client_factory(broker, "sub", version=version)
    pub = client_factory(broker, "pub", version=version)
    sub.connect()
    pub.connect()
    assert sub.subscribe("qos/t", qos) == [qos]
    pub.publish("qos/t", b"payload-%d" % qos, qos)
    message = sub.expect_message()
    assert (message.topic, message.payload, message.qos) == ("qos/t", b"payload-%d" % qos, qos)
    assert not message.retain
    sub.expect_no_message()


def test_mqtt_31_round_trip(broker, client_factory):
    """MQTT 3.1 ("MQIsdp", level 3) clients connect, subscribe and publish [MQTT-3.1.2-1]."""
    sub = client_factory(broker, "sub31", version=V31)
    pub = client_factory(broker, "pub31", version=V31)
    sub.connect()
    pub.connect()
    assert sub.subscribe("v31/#", 1) == [1]
    pub.publish("v31/a", b"hello", 1)
    message = sub.expect_message()
    assert (message.topic, message.payload, message.qos) == ("v31/a", b"hello", 1)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("published", "subscribed"), [(2, 0), (2, 1), (1, 0), (0, 2)])
def test_delivered_at_minimum_of_publish_and_subscription_qos_mqtt_3_8_4_8(
    broker, client_factory, version, published, subscribed
):
    """[MQTT-3.8.4-8] (3.1.1 [MQTT-3.8.4-6]): the QoS of a forwarded message is the minimum
    of the QoS it was published with and the maximum QoS granted."""
    sub = client_factory(broker, "sub", version=version)
    pub = client_factory(broker, "pub", version=version)
    sub.connect()
    pub.connect()
    sub.subscribe("down/t", subscribed)
    pub.publish("down/t", b"x", published)
    assert sub.expect_message().qos == min(published, subscribed)


def test_qos2_publisher_completes_flow_mqtt_4_3_3(broker):
    """[MQTT-4.3.3-2] [MQTT-4.3.3-9] [MQTT-4.3.3-11]: the server answers a QoS 2 PUBLISH with
    PUBREC and a PUBREL with PUBCOMP, same packet identifier."""
    c = raw(broker)
    assert isinstance(c.connect("q2"), Connack)
    c.send(Publish(topic="q2/t", payload=b"x", qos=2, packet_id=42))
    rec = c.recv()
    assert isinstance(rec, Pubrec) and rec.packet_id == 42
    c.send(Pubrel(packet_id=42))
    comp = c.recv()
    assert isinstance(comp, Pubcomp) and comp.packet_id == 42
    bye(c)


@pytest.mark.parametrize("version", [ProtocolVersion.V311, ProtocolVersion.V5], ids=["v311", "v5"])
def test_qos2_exactly_once_when_resent_with_dup_before_pubrel_mqtt_4_3_3_10(
    broker, client_factory, version
):
    """[MQTT-4.3.3-10] (3.1.1 [MQTT-4.3.3-2]): until PUBREL the receiver must not cause
    duplicate delivery; a PUBLISH resent with DUP=1 is acknowledged but not forwarded again."""
    sub = client_factory(broker, "sub", version=V5)
    sub.connect()
    sub.subscribe("once/t", 2)
    c = raw(broker, version)
    c.connect("pub-raw")
    c.send(Publish(topic="once/t", payload=b"one", qos=2, packet_id=7))
    assert isinstance(c.recv(), Pubrec)
    for _ in range(2):
        c.send(Publish(topic="once/t", payload=b"one", qos=2, packet_id=7, dup=True))
        rec = c.recv()
        assert isinstance(rec, Pubrec) and rec.packet_id == 7
    c.send(Pubrel(packet_id=7))
    assert isinstance(c.recv(), Pubcomp)
    assert sub.expect_message().payload == b"one"
    sub.expect_no_message()
    bye(c)


def test_qos2_exactly_once_across_publisher_reconnect_mqtt_4_4_0_1(broker, client_factory):
    """[MQTT-4.3.3-10] with [MQTT-4.4.0-1]: a publisher that reconnects to its session and
    resends a QoS 2 PUBLISH (DUP=1) before PUBREL does not cause a second delivery."""
    sub = client_factory(broker, "sub", version=V5)
    sub.connect()
    sub.subscribe("once/t", 2)
    expiry = Properties(session_expiry_interval=60)
    c = raw(broker)
    c.connect("pub-raw", clean_start=False, properties=expiry)
    c.send(Publish(topic="once/t", payload=b"one", qos=2, packet_id=9))
    assert isinstance(c.recv(), Pubrec)
    hang_up(broker, c, "pub-raw")
    assert sub.expect_message().payload == b"one"
    c = raw(broker)
    connack = c.connect("pub-raw", clean_start=False, properties=expiry)
    assert isinstance(connack, Connack) and connack.session_present
    c.send(Publish(topic="once/t", payload=b"one", qos=2, packet_id=9, dup=True))
    assert isinstance(c.recv(), Pubrec)
    c.send(Pubrel(packet_id=9))
    comp = c.recv()
    assert isinstance(comp, Pubcomp) and comp.reason_code == 0
    sub.expect_no_message()
    bye(c)


def test_packet_identifiers_are_per_subscriber_mqtt_2_2_1_3(broker, client_factory):
    """[MQTT-2.2.1-3]: each session allocates its own unused packet identifiers, so two
    subscribers receiving the same message see identifiers from their own sequence."""
    a = raw(broker)
    a.connect("a")
    b = raw(broker)
    b.connect("b")
    assert isinstance(a.subscribe("ids/#", 1), Suback)
    assert isinstance(b.subscribe("ids/shared", 1), Suback)
    pub = client_factory(broker, "pub")
    pub.connect()
    seen_a = []
    for n in range(3):
        pub.publish("ids/only-a", b"%d" % n, 1)
        p = a.recv()
        assert isinstance(p, Publish)
        seen_a.append(p.packet_id)
        a.send(Puback(packet_id=p.packet_id))
    pub.publish("ids/shared", b"both", 1)
    pa, pb = a.recv(), b.recv()
    assert isinstance(pa, Publish) and isinstance(pb, Publish)
    assert len(set(seen_a)) == 3
    assert pb.packet_id == 1
    assert pa.packet_id not in (None, 0)
    bye(a)
    bye(b)


@pytest.mark.parametrize("version", [ProtocolVersion.V311, ProtocolVersion.V5], ids=["v311", "v5"])
def test_unacknowledged_qos1_resent_with_dup_on_resume_mqtt_4_4_0_1(
    broker, client_factory, version
):
    """[MQTT-4.4.0-1] [MQTT-3.3.1-1]: on resuming a session (Clean Start 0) the server resends
    unacknowledged QoS 1 PUBLISH packets with their original packet identifier and DUP=1."""
    persistent = {"clean_start": False}
    if version == ProtocolVersion.V5:
        persistent["properties"] = Properties(session_expiry_interval=60)
    c = raw(broker, version)
    c.connect("resume", **persistent)
    c.subscribe("dup/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("dup/t", b"m1", 1)
    first = c.recv()
    assert isinstance(first, Publish) and not first.dup
    hang_up(broker, c, "resume")  # no PUBACK
    c = raw(broker, version)
    connack = c.connect("resume", **persistent)
    assert isinstance(connack, Connack) and connack.session_present
    again = c.recv()
    assert isinstance(again, Publish)
    assert (again.packet_id, again.payload, again.qos, again.dup) == (
        first.packet_id,
        b"m1",
        1,
        True,
    )
    c.send(Puback(packet_id=again.packet_id))
    bye(c)


def test_unacknowledged_qos2_resent_then_pubrel_resent_mqtt_4_4_0_1(broker, client_factory):
    """[MQTT-4.4.0-1]: a QoS 2 PUBLISH never acknowledged is resent with DUP=1; once PUBREC
    was received, the server resends PUBREL (not the PUBLISH) on the next resume."""
    persistent = {"clean_start": False, "properties": Properties(session_expiry_interval=60)}
    c = raw(broker)
    c.connect("resume2", **persistent)
    c.subscribe("dup2/t", 2)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("dup2/t", b"m2", 2)
    first = c.recv()
    assert isinstance(first, Publish) and first.qos == 2 and not first.dup
    hang_up(broker, c, "resume2")
    c = raw(broker)
    assert c.connect("resume2", **persistent).session_present
    again = c.recv()
    assert isinstance(again, Publish) and again.dup and again.packet_id == first.packet_id
    c.send(Pubrec(packet_id=again.packet_id))
    rel = c.recv()
    assert isinstance(rel, Pubrel) and rel.packet_id == first.packet_id
    hang_up(broker, c, "resume2")  # no PUBCOMP
    c = raw(broker)
    assert c.connect("resume2", **persistent).session_present
    rel = c.recv()
    assert isinstance(rel, Pubrel) and rel.packet_id == first.packet_id
    c.send(Pubcomp(packet_id=first.packet_id))
    hang_up(broker, c, "resume2")
    assert not session_of(broker, "resume2").inflight


@pytest.mark.parametrize("qos", [1, 2])
def test_ordered_delivery_of_a_burst_mqtt_4_6_0_6(broker, client_factory, qos):
    """[MQTT-4.6.0-5] [MQTT-4.6.0-6]: messages from one publisher on one topic are delivered
    to a subscriber in the order they were published (no waiting between PUBLISH packets)."""
    sub = client_factory(broker, "ordered")
    sub.connect()
    sub.subscribe("order/t", qos)
    pub = client_factory(broker, "burst")
    pub.connect()
    infos = [pub.paho.publish("order/t", b"%03d" % n, qos) for n in range(100)]
    for info in infos:
        info.wait_for_publish(TIMEOUT)
    payloads = [m.payload for m in sub.expect_messages(100)]
    assert payloads == [b"%03d" % n for n in range(100)]


def test_resume_resends_inflight_before_queued_in_order_mqtt_4_6_0_1(broker, client_factory):
    """[MQTT-4.6.0-1] [MQTT-4.4.0-1]: on resume the server resends unacknowledged PUBLISH
    packets first, in their original order, then sends what was queued meanwhile."""
    persistent = {"clean_start": False, "properties": Properties(session_expiry_interval=60)}
    c = raw(broker)
    c.connect(
        "order-resume",
        **{**persistent, "properties": Properties(session_expiry_interval=60, receive_maximum=2)},
    )
    c.subscribe("ro/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    for n in range(4):
        pub.publish("ro/t", b"%d" % n, 1)
    first = [c.recv(), c.recv()]
    assert [p.payload for p in first] == [b"0", b"1"]
    hang_up(broker, c, "order-resume")
    c = raw(broker)
    assert c.connect("order-resume", **persistent).session_present
    got = []
    while len(got) < 4:
        p = c.recv()
        assert isinstance(p, Publish)
        got.append((p.payload, p.dup))
        c.send(Puback(packet_id=p.packet_id))
    assert got == [(b"0", True), (b"1", True), (b"2", False), (b"3", False)]
    bye(c)


def test_takeover_resends_unacknowledged_to_new_connection_mqtt_4_4_0_1(broker, client_factory):
    """[MQTT-3.1.4-3] with [MQTT-4.4.0-1]: when a new connection takes over a session
    (Clean Start 0), QoS 1 messages unacknowledged on the old connection are resent on the
    new one with DUP=1."""
    persistent = {"clean_start": False, "properties": Properties(session_expiry_interval=60)}
    old = raw(broker)
    old.connect("taken", **persistent)
    old.subscribe("take/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("take/t", b"pending", 1)
    first = old.recv()
    assert isinstance(first, Publish) and not first.dup
    new = raw(broker)
    connack = new.connect("taken", **persistent)
    assert isinstance(connack, Connack) and connack.session_present
    again = new.recv()
    assert isinstance(again, Publish)
    assert (again.payload, again.packet_id, again.dup) == (b"pending", first.packet_id, True)
    got = old.expect_closed()
    assert [p.reason_code for p in got if hasattr(p, "reason_code")] == [0x8E]
    new.send(Puback(packet_id=again.packet_id))
    bye(new)


def test_qos2_refused_pubrec_frees_packet_id_mqtt_4_3_3_4(broker, client_factory):
    """v5 4.3.3 with 3.5.2.1: a PUBREC with a Reason Code of 0x80 or above ends the QoS 2
    exchange, so the packet identifier can be reused at once for a new message, which is
    then delivered (not taken as a duplicate)."""
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("reuse/t", 2)
    c = raw(broker)
    c.connect("reuser")
    c.send(Publish(topic="$SYS/not-yours", payload=b"no", qos=2, packet_id=5))
    refused = c.recv()
    assert isinstance(refused, Pubrec) and refused.reason_code == 0x87
    c.send(Publish(topic="reuse/t", payload=b"yes", qos=2, packet_id=5))
    accepted = c.recv()
    assert isinstance(accepted, Pubrec) and accepted.reason_code == 0x00
    c.send(Pubrel(packet_id=5))
    assert isinstance(c.recv(), Pubcomp)
    assert sub.expect_message().payload == b"yes"
    bye(c)
