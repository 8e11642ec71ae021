"""Sessions over real sockets: clean session / clean start, Session Present, session expiry,
offline queueing, client identifiers, takeover, keep alive and bounded queues."""

from __future__ import annotations

import socket
import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Disconnect, Properties
from tests.integration.helpers import (
    V5,
    V311,
    bye,
    connect_props,
    props,
    raw,
    session_of,
    wait_connected,
    wait_gone,
)


def persistent_v5(seconds: int = 60) -> dict:
    return {"clean_start": False, "properties": connect_props(SessionExpiryInterval=seconds)}


# -- clean session / clean start and Session Present ---------------------------------------


def test_v311_clean_session_discards_state_mqtt_3_1_2_6(broker, client_factory):
    """[MQTT-3.1.2-6] [MQTT-3.2.2-1]: with CleanSession 1 the session lasts as long as the
    connection and CONNACK has Session Present 0; nothing is kept for the next connection."""
    first = client_factory(broker, "clean", version=V311, clean_session=True)
    assert not first.connect().session_present
    first.subscribe("clean/t", 1)
    first.disconnect()
    wait_gone(broker, "clean")
    assert session_of(broker, "clean") is None
    second = client_factory(broker, "clean", version=V311, clean_session=True)
    assert not second.connect().session_present
    pub = client_factory(broker, "pub", version=V311)
    pub.connect()
    pub.publish("clean/t", b"x", 1)
    second.expect_no_message()


def test_v311_persistent_session_present_mqtt_3_2_2_2(broker, client_factory):
    """[MQTT-3.2.2-2] [MQTT-3.2.2-3] (3.1.1): CleanSession 0 with no stored session gives
    Session Present 0; reconnecting to the stored session gives Session Present 1 and the
    subscriptions are still there [MQTT-3.1.2-4]."""
    first = client_factory(broker, "keep", version=V311, clean_session=False)
    assert not first.connect().session_present
    first.subscribe("keep/t", 1)
    first.disconnect()
    wait_connected(broker, "keep", connected=False)
    second = client_factory(broker, "keep", version=V311, clean_session=False)
    assert second.connect().session_present
    pub = client_factory(broker, "pub", version=V311)
    pub.connect()
    pub.publish("keep/t", b"still subscribed", 1)
    assert second.expect_message().payload == b"still subscribed"


def test_v5_clean_start_discards_existing_session_mqtt_3_1_2_4(broker, client_factory):
    """[MQTT-3.1.2-4] [MQTT-3.2.2-2]: Clean Start 1 discards an existing session; CONNACK
    has Session Present 0."""
    first = client_factory(broker, "cs")
    first.connect(**persistent_v5())
    first.subscribe("cs/t", 1)
    first.disconnect()
    wait_connected(broker, "cs", connected=False)
    second = client_factory(broker, "cs")
    assert not second.connect(clean_start=True).session_present
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("cs/t", b"x", 1)
    second.expect_no_message()


def test_v5_resume_session_present_mqtt_3_2_2_3(broker, client_factory):
    """[MQTT-3.1.2-5] [MQTT-3.2.2-3]: Clean Start 0 with a stored session resumes it; CONNACK
    has Session Present 1."""
    first = client_factory(broker, "resume")
    assert not first.connect(**persistent_v5()).session_present
    first.disconnect()
    wait_connected(broker, "resume", connected=False)
    second = client_factory(broker, "resume")
    assert second.connect(**persistent_v5()).session_present


# -- session expiry ------------------------------------------------------------------------


def test_v5_session_expires_after_interval_mqtt_3_1_2_11(broker, client_factory):
    """[MQTT-3.1.2-23]: the session is kept for Session Expiry Interval seconds after the
    connection closes, then discarded: a resume after that has Session Present 0."""
    first = client_factory(broker, "exp")
    first.connect(**persistent_v5(1))
    first.subscribe("exp/t", 1)
    first.disconnect()
    wait_connected(broker, "exp", connected=False)
    assert session_of(broker, "exp") is not None
    time.sleep(1.3)
    assert session_of(broker, "exp") is None
    second = client_factory(broker, "exp")
    assert not second.connect(**persistent_v5(1)).session_present


def test_v5_session_expiry_zero_on_disconnect_ends_session_mqtt_3_14_2_2(broker, client_factory):
    """[MQTT-3.14.2] Session Expiry Interval on DISCONNECT replaces the one from CONNECT:
    0 ends the session when the connection closes."""
    first = client_factory(broker, "dexp")
    first.connect(**persistent_v5(60))
    first.subscribe("dexp/t", 1)
    first.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    wait_gone(broker, "dexp")
    assert session_of(broker, "dexp") is None
    second = client_factory(broker, "dexp")
    assert not second.connect(**persistent_v5(60)).session_present


def test_v5_session_expiry_set_on_disconnect_mqtt_3_14_2(broker, client_factory):
    """[MQTT-3.14.2]: a Session Expiry Interval of 1 s sent on DISCONNECT (CONNECT had 60 s)
    makes the session expire 1 s after the connection closes."""
    first = client_factory(broker, "dexp1")
    first.connect(**persistent_v5(60))
    first.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=1))
    wait_connected(broker, "dexp1", connected=False)
    assert session_of(broker, "dexp1").expiry_interval == 1
    time.sleep(1.3)
    assert session_of(broker, "dexp1") is None


def test_v5_disconnect_cannot_set_expiry_after_zero_mqtt_3_14_2_2(broker):
    """[MQTT-3.14.2-2]: a non-zero Session Expiry Interval on DISCONNECT when CONNECT had 0
    is a Protocol Error; the session is not kept."""
    c = raw(broker)
    c.connect("zero", clean_start=True)
    c.send(Disconnect(properties=Properties(session_expiry_interval=30)))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] in ([], [0x82])
    wait_gone(broker, "zero")
    assert session_of(broker, "zero") is None


def test_session_expiry_capped_by_server_mqtt_3_2_2_19(broker_factory, client_factory):
    """[MQTT-3.2.2-19] (v5 3.2.2.3.2): when the server uses a Session Expiry Interval other
    than the client's, CONNACK carries the value used."""
    handle = broker_factory(max_session_expiry_interval=5)
    c = client_factory(handle, "cap")
    connack = c.connect(**persistent_v5(3600))
    assert connack.properties.SessionExpiryInterval == 5


# -- offline queueing ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_offline_messages_queued_for_persistent_session_mqtt_3_1_2_5(
    broker, client_factory, version
):
    """[MQTT-3.1.2-5] [MQTT-4.4.0-1] (3.1.1 [MQTT-3.1.2-5]): QoS 1 and QoS 2 messages that
    match the subscriptions of a disconnected persistent session are stored and delivered,
    in order, when the client reconnects."""
    kw = {"clean_session": False} if version == V311 else {}
    connect_kw = persistent_v5() if version == V5 else {}
    sub = client_factory(broker, "offline", version=version, **kw)
    sub.connect(**connect_kw)
    sub.subscribe("off/#", 2)
    sub.disconnect()
    wait_connected(broker, "offline", connected=False)
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    pub.publish("off/1", b"one", 1)
    pub.publish("off/2", b"two", 2)
    again = client_factory(broker, "offline", version=version, **kw)
    assert again.connect(**connect_kw).session_present
    got = again.expect_messages(2)
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        ("off/1", b"one", 1),
        ("off/2", b"two", 2),
    ]


# -- client identifiers --------------------------------------------------------------------


def test_v5_empty_client_id_gets_assigned_identifier_mqtt_3_1_3_6(broker, client_factory):
    """[MQTT-3.1.3-6] [MQTT-3.2.2-16]: a zero-length ClientID is assigned a unique one,
    returned in CONNACK as Assigned Client Identifier."""
    ids = []
    for _ in range(2):
        c = client_factory(broker, "")
        connack = c.connect()
        assigned = connack.properties.AssignedClientIdentifier
        assert assigned
        ids.append(assigned)
        assert session_of(broker, assigned) is not None
    assert ids[0] != ids[1]


def test_v311_empty_client_id_with_clean_session_accepted_mqtt_3_1_3_6(broker, client_factory):
    """[MQTT-3.1.3-6] (3.1.1): a zero-byte ClientId with CleanSession 1 is accepted."""
    c = client_factory(broker, "", version=V311, clean_session=True)
    assert c.connect().reason_code == 0
    assert c.subscribe("anon/t", 1) == [1]


def test_v311_empty_client_id_without_clean_session_refused_mqtt_3_1_3_8(broker):
    """[MQTT-3.1.3-7] [MQTT-3.1.3-8] (3.1.1): a zero-byte ClientId with CleanSession 0 is
    answered with CONNACK return code 0x02 (Identifier rejected), then the connection is
    closed [MQTT-3.2.2-5]."""
    cid = b""
    body = b"\x00\x04MQTT\x04\x00\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    with socket.create_connection((broker.host, broker.port), timeout=3) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        data = b""
        while chunk := s.recv(64):
            data += chunk
    assert data == b"\x20\x02\x00\x02"


# -- takeover ------------------------------------------------------------------------------


def test_v5_takeover_disconnects_existing_client_0x8e_mqtt_3_1_4_3(broker, client_factory):
    """[MQTT-3.1.4-3] [MQTT-3.14.0-1]: a second connection with the same ClientID makes the
    server send DISCONNECT 0x8E (Session taken over) to the first and close it; the new one
    continues the session (Clean Start 0)."""
    first = client_factory(broker, "dup-id")
    first.connect(**persistent_v5())
    first.subscribe("take/t", 1)
    second = client_factory(broker, "dup-id")
    assert second.connect(**persistent_v5()).session_present
    assert first.expect_disconnect().reason_code == 0x8E
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("take/t", b"to the new one", 1)
    assert second.expect_message().payload == b"to the new one"
    first.expect_no_message()


def test_v311_takeover_closes_existing_connection_mqtt_3_1_4_2(broker, client_factory):
    """[MQTT-3.1.4-2] (3.1.1): if the ClientId is already connected, the server disconnects
    the existing client."""
    first = client_factory(broker, "dup311", version=V311, clean_session=False)
    first.connect()
    second = client_factory(broker, "dup311", version=V311, clean_session=False)
    assert second.connect().session_present
    first.expect_disconnect()
    wait_connected(broker, "dup311")


# -- keep alive ----------------------------------------------------------------------------


def test_v5_server_keep_alive_when_over_maximum_mqtt_3_2_2_21(broker_factory, client_factory):
    """[MQTT-3.2.2-21] [MQTT-3.1.2-21]: if the server sends Server Keep Alive in CONNACK the
    client must use it; the server sends it when the requested value is over its maximum."""
    handle = broker_factory(max_keep_alive=10)
    c = client_factory(handle, "ka")
    connack = c.connect(keepalive=60)
    assert connack.properties.ServerKeepAlive == 10


def test_v5_keep_alive_within_maximum_not_overridden_mqtt_3_2_2_21(broker_factory, client_factory):
    """[MQTT-3.2.2-21]: a keep alive within the server's maximum is used as is (no Server
    Keep Alive in CONNACK)."""
    handle = broker_factory(max_keep_alive=10)
    c = client_factory(handle, "ka-ok")
    connack = c.connect(keepalive=5)
    assert getattr(connack.properties, "ServerKeepAlive", None) is None


def test_v311_keep_alive_over_maximum_refused_mqtt_3_1_2_24(broker_factory, client_factory):
    """3.1.1 has no Server Keep Alive: a Keep Alive over the server's maximum is refused with
    a non-zero CONNACK return code, and the connection is closed [MQTT-3.2.2-5]."""
    handle = broker_factory(max_keep_alive=10)
    c = client_factory(handle, "ka311", version=V311)
    connack = c.connect(keepalive=60, expect_success=False)
    assert connack.reason_code != 0
    ok = client_factory(handle, "ka311-ok", version=V311)
    assert ok.connect(keepalive=10).reason_code == 0


def test_keep_alive_timeout_closes_connection_mqtt_3_1_2_22(broker):
    """[MQTT-3.1.2-22]: if nothing arrives within one and a half times the Keep Alive, the
    server closes the connection (v5: DISCONNECT 0x8D first)."""
    c = raw(broker)
    c.connect("sleepy", keep_alive=1)
    started = time.monotonic()
    got = c.expect_closed(timeout=4)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.5
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x8D]


# -- bounded queues ------------------------------------------------------------------------


def test_offline_queue_bounded_drop_oldest_counted(broker_factory, client_factory):
    """Section 4.8/4.4 leave queue limits to the server: with max_queued_messages=3 an
    offline persistent session keeps the 3 newest QoS 1 messages (drop_oldest), delivers
    them in order on reconnect, and the drops are counted."""
    handle = broker_factory(max_queued_messages=3)
    sub = client_factory(handle, "small")
    sub.connect(**persistent_v5())
    sub.subscribe("bound/t", 1)
    sub.disconnect()
    wait_connected(handle, "small", connected=False)
    pub = client_factory(handle, "pub")
    pub.connect()
    for n in range(6):
        pub.publish("bound/t", b"%d" % n, 1)
    session = session_of(handle, "small")
    assert handle.call(lambda: session.stats.dropped_overflow) == 3
    assert handle.call(lambda: handle.server.broker.stats.messages_dropped) >= 3
    again = client_factory(handle, "small")
    assert again.connect(**persistent_v5()).session_present
    assert [m.payload for m in again.expect_messages(3)] == [b"3", b"4", b"5"]
    again.expect_no_message()


def test_puback_success_when_subscriber_queue_overflows_mqtt_3_4_2_1(
    broker_factory, client_factory
):
    """[MQTT-3.4.2-1] with the reason code table: 0x10 No matching subscribers means there
    are none; a message accepted for a matching (offline) subscriber whose queue dropped an
    older message is acknowledged with 0x00."""
    handle = broker_factory(max_queued_messages=1)
    sub = client_factory(handle, "tiny")
    sub.connect(**persistent_v5())
    sub.subscribe("tiny/t", 1)
    sub.disconnect()
    wait_connected(handle, "tiny", connected=False)
    pub = client_factory(handle, "pub")
    pub.connect()
    codes = [pub.publish("tiny/t", b"%d" % n, 1) for n in range(3)]
    assert codes == [0, 0, 0]


def test_raw_client_bye_leaves_persistent_session(broker):
    """[MQTT-3.1.2-5]: a normal DISCONNECT of a persistent session keeps it."""
    c = raw(broker, ProtocolVersion.V311)
    c.connect("bye311", clean_start=False)
    bye(c)
    wait_connected(broker, "bye311", connected=False)
    assert session_of(broker, "bye311") is not None


def test_v5_server_keep_alive_is_enforced_mqtt_3_1_2_22(broker_factory):
    """[MQTT-3.2.2-21] [MQTT-3.1.2-22]: the keep alive the server announced (Server Keep
    Alive 1 for a requested 60) is the one it enforces: silence for 1.5 s closes the
    connection with DISCONNECT 0x8D."""
    handle = broker_factory(max_keep_alive=1)
    c = raw(handle)
    connack = c.connect("announced", keep_alive=60)
    assert connack.properties.server_keep_alive == 1
    started = time.monotonic()
    got = c.expect_closed(timeout=4)
    assert time.monotonic() - started < 3.5
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x8D]
