"""MQTT 5 features over real sockets: No Local, Subscription Identifiers, Topic Aliases both
ways, Receive Maximum both ways, Maximum Packet Size, Message Expiry, property pass-through,
request/response information and the "No matching subscribers" reason code."""

from __future__ import annotations

import time

from paho.mqtt.packettypes import PacketTypes

from roost.mqtt.packets import (
    Disconnect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
)
from tests.integration.helpers import (
    QUIET,
    V5,
    V311,
    bye,
    connect_props,
    props,
    raw,
    wait_connected,
)


def test_no_local_mqtt_3_8_3_3(broker, client_factory):
    """[MQTT-3.8.3-3]: with No Local 1, the client's own messages are not forwarded to it;
    other clients' messages are."""
    c = client_factory(broker, "self")
    c.connect()
    c.subscribe("nl/t", 1, noLocal=True)
    c.publish("nl/t", b"mine", 1)
    c.expect_no_message()
    other = client_factory(broker, "other")
    other.connect()
    other.publish("nl/t", b"theirs", 1)
    assert c.expect_message().payload == b"theirs"


def test_without_no_local_own_messages_come_back_mqtt_3_8_3_3(broker, client_factory):
    """[MQTT-3.8.3-3] (converse): with No Local 0, the publisher's own matching subscription
    receives its message."""
    c = client_factory(broker, "echo")
    c.connect()
    c.subscribe("nl/echo", 1)
    c.publish("nl/echo", b"mine", 1)
    assert c.expect_message().payload == b"mine"


def test_subscription_identifiers_overlapping_one_publish_mqtt_3_3_4_4(broker, client_factory):
    """[MQTT-3.3.4-3] [MQTT-3.3.4-4] [MQTT-3.3.4-2]: overlapping subscriptions of one client
    give ONE PUBLISH carrying the identifiers of all matching subscriptions, at the highest
    granted QoS."""
    sub = client_factory(broker, "ids")
    sub.connect()
    sub.subscribe("si/#", 0, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=5))
    sub.subscribe("si/+", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe("si/x")  # no identifier
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("si/x", b"x", 1)
    message = sub.expect_message()
    assert message.qos == 1
    assert sorted(message.properties.SubscriptionIdentifier) == [5, 7]
    sub.expect_no_message()


def test_subscription_identifier_on_retained_message_mqtt_3_3_4_3(broker, client_factory):
    """[MQTT-3.3.4-3]: a retained message sent because of a new subscription carries that
    subscription's identifier."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("si/ret", b"r", 1, retain=True)
    sub = client_factory(broker, "ids")
    sub.connect()
    sub.subscribe("si/ret", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    message = sub.expect_message()
    assert message.retain and message.properties.SubscriptionIdentifier == [42]


# -- topic aliases -------------------------------------------------------------------------


def test_client_topic_alias_used_for_later_publishes_mqtt_3_3_2_12(broker, client_factory):
    """[MQTT-3.3.2-12] v5 3.3.2.3.4: a client sets alias 1 with a topic, then publishes with
    an empty topic and alias 1; the server resolves it to the topic."""
    connack = client_factory(broker, "probe").connect()
    assert connack.properties.TopicAliasMaximum >= 1
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("alias/in", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("alias/in", b"first", 1, properties=props(TopicAlias=1))
    pub.publish("", b"second", 1, properties=props(TopicAlias=1))
    got = [(m.topic, m.payload) for m in sub.expect_messages(2)]
    assert got == [("alias/in", b"first"), ("alias/in", b"second")]


def test_client_topic_alias_over_maximum_disconnect_0x94_mqtt_3_3_2_9(broker_factory):
    """[MQTT-3.3.2-9]: a Topic Alias greater than the server's Topic Alias Maximum closes the
    connection with DISCONNECT 0x94 Topic Alias invalid."""
    handle = broker_factory(topic_alias_maximum=2)
    c = raw(handle)
    c.connect("alias-bad")
    c.send(Publish(topic="a", payload=b"x", properties=Properties(topic_alias=3)))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x94]


def test_server_assigns_topic_alias_mqtt_3_3_2_10(broker, client_factory):
    """[MQTT-3.3.2-10] [MQTT-3.3.2-11] v5 3.3.2.3.4: to a client with Topic Alias Maximum > 0
    the server may send a topic alias: the first PUBLISH carries topic and alias, later ones
    the alias and an empty topic."""
    c = raw(broker)
    c.connect("aliased", properties=Properties(topic_alias_maximum=5))
    c.subscribe("alias/out", 0)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("alias/out", b"1")
    pub.publish("alias/out", b"2")
    first, second = c.recv(), c.recv()
    assert isinstance(first, Publish) and isinstance(second, Publish)
    alias = first.properties.topic_alias
    assert first.topic == "alias/out" and alias is not None and 1 <= alias <= 5
    assert second.topic == "" and second.properties.topic_alias == alias
    assert second.payload == b"2"
    bye(c)


def test_no_topic_alias_to_client_without_maximum_mqtt_3_3_2_10(broker, client_factory):
    """[MQTT-3.1.2-27] [MQTT-3.3.2-10]: a client that sent no Topic Alias Maximum (0) never
    receives a topic alias."""
    c = raw(broker)
    c.connect("plain")
    c.subscribe("alias/none", 0)
    pub = client_factory(broker, "pub")
    pub.connect()
    for n in range(2):
        pub.publish("alias/none", b"%d" % n)
    for _ in range(2):
        p = c.recv()
        assert isinstance(p, Publish)
        assert p.topic == "alias/none" and p.properties.topic_alias is None
    bye(c)


# -- receive maximum -----------------------------------------------------------------------


def test_client_receive_maximum_1_one_inflight_mqtt_3_3_4_9(broker, client_factory):
    """[MQTT-3.3.4-9]: the server does not send more QoS 1/2 PUBLISH packets than the
    client's Receive Maximum without acknowledgement; the next follows each PUBACK."""
    c = raw(broker)
    c.connect("rm1", properties=Properties(receive_maximum=1))
    c.subscribe("rm/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    for n in range(3):
        pub.publish("rm/t", b"%d" % n, 1)
    for n in range(3):
        p = c.recv()
        assert isinstance(p, Publish) and p.payload == b"%d" % n
        try:
            extra = c.recv(QUIET)
        except TimeoutError:
            extra = None
        assert extra is None, f"second unacknowledged PUBLISH: {extra}"
        c.send(Puback(packet_id=p.packet_id))
    bye(c)


def test_server_receive_maximum_exceeded_disconnect_0x93_mqtt_3_3_4_8(broker_factory):
    """[MQTT-3.3.4-8] with v5 3.2.2.3.3 (CONNACK Receive Maximum): a client sending more QoS 2
    PUBLISH packets than the server's Receive Maximum without completing them gets
    DISCONNECT 0x93 Receive Maximum exceeded."""
    handle = broker_factory(receive_maximum=2)
    c = raw(handle)
    connack = c.connect("flood")
    assert connack.properties.receive_maximum == 2
    for packet_id in (1, 2):
        c.send(Publish(topic="rm/in", payload=b"x", qos=2, packet_id=packet_id))
        assert isinstance(c.recv(), Pubrec)
    c.send(Publish(topic="rm/in", payload=b"x", qos=2, packet_id=3))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x93]


# -- maximum packet size ---------------------------------------------------------------------


def test_client_maximum_packet_size_drops_for_that_client_only_mqtt_3_1_2_25(
    broker, client_factory
):
    """[MQTT-3.1.2-25]: the server does not send a packet larger than the client's Maximum
    Packet Size; the message is discarded for that client only, others receive it."""
    small = client_factory(broker, "small")
    small.connect(properties=connect_props(MaximumPacketSize=128))
    small.subscribe("mps/t", 1)
    big = client_factory(broker, "big")
    big.connect()
    big.subscribe("mps/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("mps/t", b"L" * 500, 1)
    pub.publish("mps/t", b"small", 1)
    assert [m.payload for m in big.expect_messages(2)] == [b"L" * 500, b"small"]
    assert small.expect_message().payload == b"small"
    small.expect_no_message()


# -- message expiry ------------------------------------------------------------------------


def test_message_expiry_offline_queue_and_remaining_interval_mqtt_3_3_2_5(broker, client_factory):
    """[MQTT-3.3.2-5]: a message whose expiry interval has passed is not delivered to a
    subscriber that was offline, nor kept as a retained message; [MQTT-3.3.2-6]: the Message Expiry Interval forwarded is
    the time remaining, less than the publisher's."""
    expiry = connect_props(SessionExpiryInterval=60)
    sub = client_factory(broker, "exp-sub")
    sub.connect(clean_start=False, properties=expiry)
    sub.subscribe("mx/#", 1)
    sub.disconnect()
    wait_connected(broker, "exp-sub", connected=False)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("mx/short", b"stale", 1, properties=props(MessageExpiryInterval=1))
    pub.publish("mx/long", b"fresh", 1, properties=props(MessageExpiryInterval=10))
    pub.publish("mxr/t", b"retained", 1, retain=True, properties=props(MessageExpiryInterval=1))
    time.sleep(1.2)
    late = client_factory(broker, "late")
    late.connect()
    late.subscribe("mxr/t")
    late.expect_no_message()  # the retained message expired as well [MQTT-3.3.2-5]
    again = client_factory(broker, "exp-sub")
    assert again.connect(clean_start=False, properties=expiry).session_present
    message = again.expect_message()
    assert (message.topic, message.payload) == ("mx/long", b"fresh")
    assert 1 <= message.properties.MessageExpiryInterval < 10
    again.expect_no_message()


def test_message_expiry_forwarded_online_mqtt_3_3_2_6(broker, client_factory):
    """[MQTT-3.3.2-6]: a subscriber online receives the Message Expiry Interval (at most the
    publisher's)."""
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("mx/online")
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("mx/online", b"x", 1, properties=props(MessageExpiryInterval=30))
    assert 0 < sub.expect_message().properties.MessageExpiryInterval <= 30


# -- properties pass-through and request/response ------------------------------------------------


def test_publish_properties_forwarded_unchanged_mqtt_3_3_2_17(broker, client_factory):
    """[MQTT-3.3.2-4] Payload Format Indicator, [MQTT-3.3.2-20] Content Type, [MQTT-3.3.2-15]
    Response Topic, [MQTT-3.3.2-16] Correlation Data, [MQTT-3.3.2-17] [MQTT-3.3.2-18] User
    Properties (order kept): forwarded unaltered from a v5 publisher to a v5 subscriber."""
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("pp/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    user = [("z", "1"), ("a", "2"), ("z", "3")]
    pub.publish(
        "pp/t",
        "héllo".encode(),
        1,
        properties=props(
            PayloadFormatIndicator=1,
            ContentType="text/plain; charset=utf-8",
            ResponseTopic="pp/reply",
            CorrelationData=b"\x00\x01corr",
            UserProperty=user,
        ),
    )
    p = sub.expect_message().properties
    assert p.PayloadFormatIndicator == 1
    assert p.ContentType == "text/plain; charset=utf-8"
    assert p.ResponseTopic == "pp/reply"
    assert p.CorrelationData == b"\x00\x01corr"
    assert p.UserProperty == user


def test_v5_properties_not_sent_to_v311_subscriber_mqtt_3_3_2(broker, client_factory):
    """A 3.1.1 subscriber receives the same message from a v5 publisher, without properties."""
    sub = client_factory(broker, "old", version=V311)
    sub.connect()
    sub.subscribe("pp/mixed", 1)
    pub = client_factory(broker, "pub", version=V5)
    pub.connect()
    pub.publish("pp/mixed", b"x", 1, properties=props(UserProperty=[("k", "v")]))
    message = sub.expect_message()
    assert (message.topic, message.payload, message.qos) == ("pp/mixed", b"x", 1)


def test_response_information_when_requested_mqtt_3_1_2_28(broker, client_factory):
    """v5 3.1.2.11.7 / 3.2.2.3.15: Request Response Information 1 -> CONNACK carries
    Response Information; [MQTT-3.1.2-28] with 0 (default) it is not sent."""
    asking = client_factory(broker, "asking")
    connack = asking.connect(properties=connect_props(RequestResponseInformation=1))
    info = connack.properties.ResponseInformation
    assert info
    not_asking = client_factory(broker, "quiet")
    connack = not_asking.connect()
    assert getattr(connack.properties, "ResponseInformation", None) is None
    # The information is usable as a topic prefix for responses.
    asking.subscribe(info + "/#", 1)
    responder = client_factory(broker, "responder")
    responder.connect()
    responder.publish(info + "/answer", b"42", 1)
    assert asking.expect_message().payload == b"42"


def test_request_response_round_trip_mqtt_4_10(broker, client_factory):
    """v5 4.10 Request / Response: a responder answers on the Response Topic with the
    request's Correlation Data."""
    requester = client_factory(broker, "requester")
    requester.connect()
    requester.subscribe("rr/reply/requester", 1)
    responder = client_factory(broker, "responder")
    responder.connect()
    responder.subscribe("rr/request", 1)
    requester.publish(
        "rr/request",
        b"ping",
        1,
        properties=props(ResponseTopic="rr/reply/requester", CorrelationData=b"c-1"),
    )
    request = responder.expect_message()
    responder.publish(
        request.properties.ResponseTopic,
        b"pong",
        1,
        properties=props(CorrelationData=request.properties.CorrelationData),
    )
    reply = requester.expect_message()
    assert (reply.payload, reply.properties.CorrelationData) == (b"pong", b"c-1")


# -- reason codes ----------------------------------------------------------------------------


def test_puback_no_matching_subscribers_0x10_mqtt_3_4_2_1(broker, client_factory):
    """v5 3.4.2.1 PUBACK Reason Code 0x10 No matching subscribers (QoS 1) and 3.5.2.1 PUBREC
    0x10 (QoS 2); 0x00 once someone subscribes."""
    pub = client_factory(broker, "pub")
    pub.connect()
    assert pub.publish("nobody/here", b"x", 1) == 0x10
    c = raw(broker)  # paho reports the PUBCOMP's reason code for QoS 2, not the PUBREC's
    c.connect("raw-pub")
    c.send(Publish(topic="nobody/here", payload=b"x", qos=2, packet_id=4))
    pubrec = c.recv()
    assert isinstance(pubrec, Pubrec) and pubrec.reason_code == 0x10
    c.send(Pubrel(packet_id=4))
    assert isinstance(c.recv(), Pubcomp)
    bye(c)
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("nobody/here", 1)
    assert pub.publish("nobody/here", b"x", 1) == 0x00


def test_v5_subscribe_options_retain_handling_sent_raw_mqtt_3_8_3_1(broker):
    """3.8.3.1: Subscription Options are honoured as sent on the wire (raw client): granted
    QoS is echoed in SUBACK per filter, in order [MQTT-3.9.3-1]."""
    c = raw(broker)
    c.connect("opts")
    c.send(
        Subscribe(
            packet_id=9,
            subscriptions=(
                Subscription(topic_filter="o/a", qos=2, no_local=True),
                Subscription(topic_filter="o/b", qos=0, retain_as_published=True),
                Subscription(topic_filter="o/c", qos=1, retain_handling=2),
            ),
        )
    )
    suback = c.recv()
    assert list(suback.reason_codes) == [2, 0, 1]
    bye(c)


# -- server limits -------------------------------------------------------------------------


def test_packet_over_server_maximum_disconnect_0x95_mqtt_3_2_2_15(broker_factory):
    """v5 3.2.2.3.6 with [MQTT-3.1.2-24] mirrored: CONNACK announces the server's Maximum
    Packet Size; a larger packet from the client is answered with DISCONNECT 0x95 Packet too
    large and the connection is closed."""
    handle = broker_factory(max_packet_size=256)
    c = raw(handle)
    connack = c.connect("big-sender")
    assert connack.properties.maximum_packet_size == 256
    c.send(Publish(topic="big", payload=b"x" * 1000, qos=0))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x95]


def test_maximum_qos_1_downgrades_suback_and_refuses_qos2_publish_mqtt_3_2_2_12(
    broker_factory, client_factory
):
    """[MQTT-3.2.2-9] [MQTT-3.2.2-11] [MQTT-3.2.2-12]: with Maximum QoS 1 the CONNACK says so,
    a QoS 2 subscription is granted QoS 1, and a QoS 2 PUBLISH is answered with DISCONNECT
    0x9B QoS not supported."""
    handle = broker_factory(maximum_qos=1)
    c = client_factory(handle, "q1")
    connack = c.connect()
    assert connack.properties.MaximumQoS == 1
    assert c.subscribe("mq/t", 2) == [1]
    r = raw(handle)
    r.connect("q2-sender")
    r.send(Publish(topic="mq/t", payload=b"x", qos=2, packet_id=1))
    got = r.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x9B]


def test_retain_not_available_refuses_retained_publish_mqtt_3_2_2_15(broker_factory):
    """[MQTT-3.2.2-14] [MQTT-3.2.2-15]: with Retain Available 0 the CONNACK says so, and a
    PUBLISH with RETAIN 1 is answered with DISCONNECT 0x9A Retain not supported."""
    handle = broker_factory(retain_available=False)
    c = raw(handle)
    connack = c.connect("retainer")
    assert connack.properties.retain_available == 0
    c.send(Publish(topic="r/t", payload=b"x", retain=True))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x9A]


def test_no_local_on_one_of_two_overlapping_subscriptions_mqtt_3_8_3_3(broker, client_factory):
    """[MQTT-3.8.3-3] applies per subscription: the publisher's own message still comes back
    through an overlapping subscription without No Local, once."""
    c = client_factory(broker, "mixed")
    c.connect()
    c.subscribe("nl2/t", 0, noLocal=True)
    c.subscribe("nl2/#", 1)
    c.publish("nl2/t", b"mine", 1)
    message = c.expect_message()
    assert (message.payload, message.qos) == (b"mine", 1)
    c.expect_no_message()


def test_no_local_on_shared_subscription_protocol_error_mqtt_3_8_3_4(broker):
    """[MQTT-3.8.3-4]: No Local 1 on a Shared Subscription is a Protocol Error: DISCONNECT
    0x82 and close."""
    c = raw(broker)
    c.connect("nl-shared")
    c.send(
        Subscribe(
            packet_id=1,
            subscriptions=(Subscription(topic_filter="$share/g/t", qos=0, no_local=True),),
        )
    )
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x82]


def test_wildcard_in_publish_topic_closes_mqtt_3_3_2_2(broker):
    """[MQTT-3.3.2-2]: the Topic Name of a PUBLISH must not contain wildcards; the server
    closes the connection (v5: DISCONNECT 0x90 Topic Name invalid)."""
    c = raw(broker)
    c.connect("wild-pub")
    c.send(Publish(topic="a/+/b", payload=b"x"))
    got = c.expect_closed()
    assert [p.reason_code for p in got if isinstance(p, Disconnect)] == [0x90]


def test_retained_message_keeps_properties_mqtt_3_3_2_17(broker, client_factory):
    """[MQTT-3.3.2-17] [MQTT-3.3.2-20] [MQTT-3.3.2-6]: a retained message sent to a new
    subscriber carries the publisher's properties, and the remaining expiry interval."""
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish(
        "rp/t",
        b"r",
        1,
        retain=True,
        properties=props(
            ContentType="text/plain", UserProperty=[("k", "v")], MessageExpiryInterval=60
        ),
    )
    sub = client_factory(broker, "sub")
    sub.connect()
    sub.subscribe("rp/t", 1)
    message = sub.expect_message()
    assert message.retain
    assert message.properties.ContentType == "text/plain"
    assert message.properties.UserProperty == [("k", "v")]
    assert 0 < message.properties.MessageExpiryInterval <= 60
