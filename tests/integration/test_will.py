"""Will messages over real sockets: when they are published and when not, their QoS and
retain, the Will Delay Interval and its interplay with reconnects and session expiry."""

from __future__ import annotations

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Connect, Disconnect, Will
from tests.integration.helpers import V5, V311, connect_props, props, raw, wait_connected


def will_props(**values):
    return props(PacketTypes.WILLMESSAGE, **values)


@pytest.fixture
def watcher(broker, client_factory):
    w = client_factory(broker, "watcher")
    w.connect()
    w.subscribe("will/#", 2)
    return w


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_will_published_on_network_loss_mqtt_3_1_2_8(broker, client_factory, watcher, version):
    """[MQTT-3.1.2-8] (3.1.1 [MQTT-3.1.2-8]): the will is published when the network
    connection is closed without a DISCONNECT."""
    c = client_factory(broker, "dying", version=version)
    c.will_set("will/dying", b"gone", qos=1)
    c.connect()
    c.drop()
    message = watcher.expect_message()
    assert (message.topic, message.payload, message.qos) == ("will/dying", b"gone", 1)


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_no_will_after_normal_disconnect_mqtt_3_1_2_10(broker, client_factory, watcher, version):
    """[MQTT-3.1.2-10] [MQTT-3.14.4-3]: a DISCONNECT (v5: reason 0x00) removes the will; it is
    not published."""
    c = client_factory(broker, "polite", version=version)
    c.will_set("will/polite", b"should not appear")
    c.connect()
    c.disconnect()
    watcher.expect_no_message()


def test_will_published_on_disconnect_with_will_message_0x04_mqtt_3_14_2_1(
    broker, client_factory, watcher
):
    """v5 3.14.2.1: DISCONNECT with reason code 0x04 (Disconnect with Will Message) asks the
    server to publish the will."""
    c = client_factory(broker, "asks")
    c.will_set("will/asks", b"as requested")
    c.connect()
    c.disconnect(reason_code=0x04)
    assert watcher.expect_message().payload == b"as requested"


def test_will_qos_and_retain_mqtt_3_1_2_14(broker, client_factory, watcher):
    """[MQTT-3.1.2-14] [MQTT-3.1.2-17]: the will is published with its Will QoS, and retained
    when Will Retain is 1 (a later subscriber receives it as a retained message)."""
    c = client_factory(broker, "ret-will")
    c.will_set("will/retained", b"last words", qos=2, retain=True)
    c.connect()
    c.drop()
    live = watcher.expect_message()
    assert (live.payload, live.qos) == (b"last words", 2)
    late = client_factory(broker, "late")
    late.connect()
    late.subscribe("will/retained", 2)
    stored = late.expect_message()
    assert (stored.payload, stored.qos, stored.retain) == (b"last words", 2, True)


def test_will_properties_forwarded_mqtt_3_1_3_10(broker, client_factory, watcher):
    """[MQTT-3.1.3-10] and v5 3.1.3.2: the will's Content Type, Response Topic, user
    properties (in order [MQTT-3.3.2-18]) and Message Expiry Interval are sent with it."""
    c = client_factory(broker, "propwill")
    c.will_set(
        "will/props",
        b"{}",
        properties=will_props(
            ContentType="application/json",
            ResponseTopic="will/answer",
            UserProperty=[("b", "2"), ("a", "1")],
            MessageExpiryInterval=30,
        ),
    )
    c.connect()
    c.drop()
    message = watcher.expect_message()
    assert message.properties.ContentType == "application/json"
    assert message.properties.ResponseTopic == "will/answer"
    assert message.properties.UserProperty == [("b", "2"), ("a", "1")]
    assert 0 < message.properties.MessageExpiryInterval <= 30


def test_will_delay_interval_mqtt_3_1_3_9(broker, client_factory, watcher):
    """v5 3.1.3.2.2 Will Delay Interval: the will is published only after the delay has
    passed since the network connection closed."""
    c = client_factory(broker, "delayed")
    c.will_set("will/delayed", b"late", properties=will_props(WillDelayInterval=1))
    c.connect(clean_start=False, properties=connect_props(SessionExpiryInterval=60))
    closed_at = time.monotonic()
    c.drop()
    watcher.expect_no_message(0.6)
    message = watcher.expect_message(timeout=2)
    assert message.payload == b"late"
    assert time.monotonic() - closed_at >= 0.9


def test_will_cancelled_by_reconnect_before_delay_mqtt_3_1_3_9(broker, client_factory, watcher):
    """[MQTT-3.1.3-9]: if a new network connection to the session is made before the Will
    Delay Interval has passed, the will is not sent."""
    expiry = connect_props(SessionExpiryInterval=60)
    c = client_factory(broker, "comeback")
    c.will_set("will/comeback", b"never", properties=will_props(WillDelayInterval=1))
    c.connect(clean_start=False, properties=expiry)
    c.drop()
    again = client_factory(broker, "comeback")
    assert again.connect(clean_start=False, properties=expiry).session_present
    watcher.expect_no_message(1.4)


def test_will_delay_ends_when_session_ends_mqtt_3_1_2_8(broker, client_factory, watcher):
    """[MQTT-3.1.2-8] / v5 3.1.3.2.2: the will is published when the Will Delay Interval has
    elapsed or the session ends, whichever first; with Session Expiry 0 that is at once."""
    c = client_factory(broker, "short")
    c.will_set("will/short", b"session over", properties=will_props(WillDelayInterval=30))
    c.connect()  # Session Expiry Interval 0
    started = time.monotonic()
    c.drop()
    assert watcher.expect_message(timeout=2).payload == b"session over"
    assert time.monotonic() - started < 1.5


def test_will_delay_cut_short_by_session_expiry_mqtt_3_1_2_8(broker, client_factory, watcher):
    """v5 3.1.3.2.2: with Will Delay 30 s and Session Expiry 1 s the will is published when
    the session expires, about 1 s after the connection closed."""
    c = client_factory(broker, "expiring")
    c.will_set("will/expiring", b"expired", properties=will_props(WillDelayInterval=30))
    c.connect(clean_start=False, properties=connect_props(SessionExpiryInterval=1))
    c.drop()
    watcher.expect_no_message(0.6)
    assert watcher.expect_message(timeout=2).payload == b"expired"


def test_takeover_publishes_will_without_delay_mqtt_3_1_4_3(broker, client_factory, watcher):
    """[MQTT-3.1.4-3] with [MQTT-3.1.2-8]: the existing connection of a taken-over session is
    closed without DISCONNECT, so its will (no delay) is published."""
    first = client_factory(broker, "taken", version=V311)
    first.will_set("will/taken", b"replaced")
    first.connect()
    second = client_factory(broker, "taken", version=V311)
    second.connect()
    assert watcher.expect_message().payload == b"replaced"
    wait_connected(broker, "taken")


def test_will_published_when_server_closes_for_protocol_error_mqtt_3_1_2_8(
    broker, client_factory, watcher
):
    """[MQTT-3.1.2-8] / 3.1.2.5: the will is published when the server closes the connection
    because of a protocol error (here a second CONNECT [MQTT-3.1.0-2])."""
    c = raw(broker)
    c.connect("bad", will=Will(topic="will/bad", payload=b"protocol error"))
    c.send(Connect(client_id="bad", protocol_version=ProtocolVersion.V5))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x82]
    assert watcher.expect_message().payload == b"protocol error"


def test_will_published_when_clean_start_ends_delayed_session_mqtt_3_1_2_4(
    broker, client_factory, watcher
):
    """v5 3.1.3.2.2 with [MQTT-3.1.2-4]: a reconnect with Clean Start 1 ends the old session,
    so a will still waiting for its delay is published then, not discarded."""
    c = client_factory(broker, "restart")
    c.will_set("will/restart", b"old session over", properties=will_props(WillDelayInterval=30))
    c.connect(clean_start=False, properties=connect_props(SessionExpiryInterval=60))
    c.drop()
    watcher.expect_no_message()
    fresh = client_factory(broker, "restart")
    assert not fresh.connect(clean_start=True).session_present
    assert watcher.expect_message().payload == b"old session over"
