"""Round trips with the mosquitto command-line clients (mosquitto_pub / mosquitto_sub) for
MQTT 3.1, 3.1.1 and 5.0 against Roost on port 0."""

from __future__ import annotations

import pytest

from tests.integration.helpers import (
    V5,
    V31,
    V311,
    mosquitto_pub,
    mosquitto_sub,
    sub_output,
    wait_subscribed,
)

VERSIONS = [pytest.param(V31, id="v31"), pytest.param(V311, id="v311"), pytest.param(V5, id="v5")]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_round_trip_mqtt_4_3(broker, version, qos):
    """[MQTT-4.3.1-1] [MQTT-4.3.2-1] [MQTT-4.3.3-1] with [MQTT-3.8.4-8]: mosquitto_pub at QoS n
    reaches mosquitto_sub subscribed at QoS n, once, at QoS n, with RETAIN 0."""
    sub = mosquitto_sub(broker, "cli/t", version, f"msub-{version}-{qos}", qos=qos, count=1)
    wait_subscribed(broker, f"msub-{version}-{qos}", "cli/t")
    mosquitto_pub(broker, "cli/t", f"hello-{qos}", version, qos=qos)
    assert sub_output(sub) == [f"cli/t|{qos}|0|hello-{qos}"]


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_retained_mqtt_3_3_1_8(broker, version):
    """[MQTT-3.3.1-5] [MQTT-3.3.1-8]: `mosquitto_pub -r` stores a retained message that a later
    mosquitto_sub receives with RETAIN 1."""
    mosquitto_pub(broker, "cli/retained", "kept", version, qos=1, retain=True)
    sub = mosquitto_sub(broker, "cli/retained", version, f"mret-{version}", qos=1, count=1)
    assert sub_output(sub) == ["cli/retained|1|1|kept"]


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_retained_cleared_by_empty_payload_mqtt_3_3_1_6(broker, version):
    """v5 [MQTT-3.3.1-6] (3.1.1 [MQTT-3.3.1-10]): `mosquitto_pub -r -n` (empty payload) removes
    the retained message; a later subscriber gets only what is retained afterwards."""
    mosquitto_pub(broker, "cli/clear/a", "old", version, retain=True)
    mosquitto_pub(broker, "cli/clear/a", None, version, retain=True)
    mosquitto_pub(broker, "cli/clear/b", "other", version, retain=True)
    sub = mosquitto_sub(broker, "cli/clear/#", version, f"mclr-{version}", count=1, wait=3)
    assert sub_output(sub) == ["cli/clear/b|0|1|other"]


def test_mosquitto_wildcard_and_downgrade_mqtt_3_8_4_8(broker):
    """[MQTT-3.8.4-8] [MQTT-4.7.1-2]: a `#` subscription at QoS 1 receives a QoS 2 message
    at QoS 1 and a QoS 0 message at QoS 0."""
    sub = mosquitto_sub(broker, "cli/w/#", V311, "mwild", qos=1, count=2)
    wait_subscribed(broker, "mwild", "cli/w/#")
    mosquitto_pub(broker, "cli/w/a/b", "two", V311, qos=2)
    mosquitto_pub(broker, "cli/w", "zero", V311, qos=0)
    assert sub_output(sub) == ["cli/w/a/b|1|0|two", "cli/w|0|0|zero"]


def test_mosquitto_v5_user_properties_and_content_type_mqtt_3_3_2_17(broker):
    """[MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]: user properties (in order) and the
    content type set by mosquitto_pub -D reach a v5 mosquitto_sub unchanged."""
    sub = mosquitto_sub(broker, "cli/props", V5, "mprops", count=1, fmt="%C|%P|%p")
    wait_subscribed(broker, "mprops", "cli/props")
    mosquitto_pub(
        broker,
        "cli/props",
        "body",
        V5,
        extra=[
            "-D",
            "publish",
            "user-property",
            "k1",
            "v1",
            "-D",
            "publish",
            "user-property",
            "k0",
            "v0",
            "-D",
            "publish",
            "content-type",
            "text/plain",
        ],
    )
    (line,) = sub_output(sub)
    content_type, user, payload = line.split("|")
    assert (content_type, payload) == ("text/plain", "body")
    assert user.split() == ["k1:v1", "k0:v0"]


def test_mosquitto_mixed_versions_mqtt_4_3(broker, client_factory):
    """A v5 paho publisher reaches a 3.1 mosquitto_sub and a 3.1.1 mosquitto_pub reaches a v5
    paho subscriber: the broker translates between protocol levels."""
    sub = mosquitto_sub(broker, "cli/mix", V31, "mmix31", qos=1, count=1)
    wait_subscribed(broker, "mmix31", "cli/mix")
    paho_sub = client_factory(broker, "paho-sub", version=V5)
    paho_sub.connect()
    paho_sub.subscribe("cli/mix", 1)
    pub = client_factory(broker, "paho-pub", version=V5)
    pub.connect()
    pub.publish("cli/mix", b"from paho", 1)
    assert sub_output(sub) == ["cli/mix|1|0|from paho"]
    assert paho_sub.expect_message().payload == b"from paho"
    mosquitto_pub(broker, "cli/mix", "from mosquitto", V311, qos=1)
    message = paho_sub.expect_message()
    assert (message.payload, message.qos) == (b"from mosquitto", 1)
