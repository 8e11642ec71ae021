"""Retained messages over real sockets: set, replace, delete, the RETAIN flag on delivery,
Retain Handling and Retain As Published."""

from __future__ import annotations

import pytest

from tests.integration.helpers import V5, V311

VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


@VERSIONS
def test_retained_sent_to_new_subscriber_with_retain_1_mqtt_3_3_1_8(
    broker, client_factory, version
):
    """[MQTT-3.3.1-5] [MQTT-3.3.1-8] (3.1.1 [MQTT-3.3.1-5] [MQTT-3.3.1-8]): a retained message
    is stored and sent to a later subscriber with RETAIN 1."""
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    pub.publish("ret/t", b"stored", 1, retain=True)
    sub = client_factory(broker, "sub", version=version)
    sub.connect()
    sub.subscribe("ret/t", 1)
    message = sub.expect_message()
    assert (message.topic, message.payload, message.qos, message.retain) == (
        "ret/t",
        b"stored",
        1,
        True,
    )
    sub.expect_no_message()


@VERSIONS
def test_live_delivery_to_existing_subscription_has_retain_0_mqtt_3_3_1_9(
    broker, client_factory, version
):
    """3.1.1 [MQTT-3.3.1-9] / v5 [MQTT-3.3.1-12]: a retained PUBLISH forwarded to an existing
    subscription (without Retain As Published) has RETAIN 0."""
    sub = client_factory(broker, "sub", version=version)
    sub.connect()
    sub.subscribe("ret/live", 0)
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    pub.publish("ret/live", b"x", 0, retain=True)
    assert sub.expect_message().retain is False


def test_retained_replaced_mqtt_3_3_1_5(broker, client_factory):
    """[MQTT-3.3.1-5]: a new retained message on a topic replaces the one stored."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("ret/r", b"old", 1, retain=True)
    pub.publish("ret/r", b"new", 1, retain=True)
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("ret/r")
    assert sub.expect_message().payload == b"new"
    sub.expect_no_message()


@VERSIONS
def test_empty_retained_payload_deletes_mqtt_3_3_1_6(broker, client_factory, version):
    """v5 [MQTT-3.3.1-6] [MQTT-3.3.1-7] (3.1.1 [MQTT-3.3.1-10] [MQTT-3.3.1-11]): a retained
    PUBLISH with an empty payload removes the retained message and is not stored itself,
    but is forwarded to current subscribers."""
    live = client_factory(broker, "live", version=version)
    live.connect()
    live.subscribe("ret/d")
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    pub.publish("ret/d", b"something", 1, retain=True)
    pub.publish("ret/d", b"", 1, retain=True)
    assert [m.payload for m in live.expect_messages(2)] == [b"something", b""]
    late = client_factory(broker, "late", version=version)
    late.connect()
    late.subscribe("ret/d")
    late.expect_no_message()


def test_retained_qos_is_minimum_and_wildcards_match_mqtt_3_8_4_8(broker, client_factory):
    """[MQTT-3.8.4-8] and [MQTT-3.3.1-9]: every retained message matching a new wildcard
    subscription is sent, at the minimum of its QoS and the granted QoS."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("ret/w/a", b"a", 2, retain=True)
    pub.publish("ret/w/b", b"b", 0, retain=True)
    pub.publish("ret/other", b"no", 1, retain=True)
    pub.barrier()
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("ret/w/+", 1)
    got = sorted((m.topic, m.qos, m.retain) for m in sub.expect_messages(2))
    assert got == [("ret/w/a", 1, True), ("ret/w/b", 0, True)]
    sub.expect_no_message()


def test_retain_handling_0_sends_on_every_subscribe_mqtt_3_3_1_9(broker, client_factory):
    """[MQTT-3.3.1-9]: Retain Handling 0 sends retained messages whenever the subscription is
    made, also when it replaces an existing one."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("rh/0", b"r", 0, retain=True)
    pub.barrier()
    sub = client_factory(broker, "sub")
    sub.connect()
    for _ in range(2):
        sub.subscribe("rh/0", 0, retainHandling=0)
        assert sub.expect_message().payload == b"r"


def test_retain_handling_1_only_for_new_subscription_mqtt_3_3_1_10(broker, client_factory):
    """[MQTT-3.3.1-10]: Retain Handling 1 sends retained messages only if the subscription
    did not exist."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("rh/1", b"r", 0, retain=True)
    pub.barrier()
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("rh/1", 0, retainHandling=1)
    assert sub.expect_message().payload == b"r"
    sub.subscribe("rh/1", 0, retainHandling=1)
    sub.expect_no_message()


def test_retain_handling_2_never_sends_mqtt_3_3_1_11(broker, client_factory):
    """[MQTT-3.3.1-11]: Retain Handling 2 sends no retained messages."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("rh/2", b"r", 0, retain=True)
    pub.barrier()
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("rh/2", 0, retainHandling=2)
    sub.expect_no_message()


@pytest.mark.parametrize("rap", [False, True], ids=["rap0", "rap1"])
def test_retain_as_published_mqtt_3_3_1_12(broker, client_factory, rap):
    """[MQTT-3.3.1-12] [MQTT-3.3.1-13]: on live forwarding RETAIN is 0 unless the subscription
    has Retain As Published 1, which keeps the publisher's RETAIN flag."""
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("rap/t", 0, retainAsPublished=rap)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("rap/t", b"retained", 0, retain=True)
    pub.publish("rap/t", b"plain", 0, retain=False)
    got = [(m.payload, m.retain) for m in sub.expect_messages(2)]
    assert got == [(b"retained", rap), (b"plain", False)]


def test_no_retained_for_shared_subscription_mqtt_4_8_2(broker, client_factory):
    """v5 4.8.2 / [MQTT-3.8.4] Shared Subscriptions: retained messages are not sent when a
    shared subscription is made."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("ret/shared", b"r", 0, retain=True)
    pub.barrier()
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("$share/g/ret/shared")
    sub.expect_no_message()
