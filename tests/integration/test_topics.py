"""Topic matching and subscriptions over real sockets: wildcards, $-topics and $SYS, shared
subscriptions, refused and invalid filters, overlapping subscriptions and UNSUBSCRIBE."""

from __future__ import annotations

import queue
from collections import Counter

import pytest

from roost.mqtt.constants import ProtocolVersion
from roost.mqtt.packets import Suback, Subscribe, Subscription, Unsuback, Unsubscribe
from tests.integration.helpers import V5, V311, bye, raw

VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def received_topics(client, count: int) -> list[str]:
    return sorted(m.topic for m in client.expect_messages(count))


# -- wildcards -----------------------------------------------------------------------------


@VERSIONS
def test_single_level_wildcard_mqtt_4_7_1_3(broker, client_factory, version):
    """[MQTT-4.7.1-3]: `+` matches exactly one topic level, including an empty one."""
    sub = client_factory(broker, "sub", version=version)
    sub.connect()
    sub.subscribe("wild/+/temp")
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    for topic in ("wild/a/temp", "wild//temp", "wild/a/b/temp", "wild/temp", "wild/a/temp/x"):
        pub.publish(topic, b"x")
    pub.barrier()
    assert received_topics(sub, 2) == ["wild//temp", "wild/a/temp"]
    sub.expect_no_message()


@VERSIONS
def test_multi_level_wildcard_includes_parent_mqtt_4_7_1_2(broker, client_factory, version):
    """[MQTT-4.7.1-2]: `#` matches any number of levels, including the parent level itself
    (`sport/#` matches `sport`)."""
    sub = client_factory(broker, "sub", version=version)
    sub.connect()
    sub.subscribe("sport/#")
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    for topic in ("sport", "sport/tennis", "sport/tennis/player1", "sports", "other/sport"):
        pub.publish(topic, b"x")
    pub.barrier()
    assert received_topics(sub, 3) == ["sport", "sport/tennis", "sport/tennis/player1"]
    sub.expect_no_message()


def test_hash_alone_matches_everything_but_dollar_topics_mqtt_4_7_2_1(broker, client_factory):
    """[MQTT-4.7.2-1]: `#` and `+/...` do not match topic names starting with `$`; the broker
    still delivers `$`-topics to an explicit `$` subscription."""
    everything = client_factory(broker, "all")
    everything.connect()
    everything.subscribe("#")
    everything.subscribe("+/info")
    dollar = client_factory(broker, "dollar")
    dollar.connect()
    dollar.subscribe("$app/info")
    everything.expect_no_message()  # nothing of $SYS either
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("$app/info", b"dollar", 1)
    pub.publish("app/info", b"plain", 1)
    assert dollar.expect_message().payload == b"dollar"
    got = everything.expect_message()
    assert (got.topic, got.payload) == ("app/info", b"plain")
    everything.expect_no_message()


def test_sys_broker_version_readable_by_explicit_subscription_mqtt_4_7_2_1(broker, client_factory):
    """[MQTT-4.7.2-1] and 4.7.2: `$SYS/broker/version` is readable with an explicit
    subscription (`$SYS/#`), while `#` does not match it."""
    c = client_factory(broker, "sys")
    c.connect()
    c.subscribe("$SYS/broker/version")
    message = c.expect_message()
    assert message.topic == "$SYS/broker/version"
    assert message.payload.startswith(b"roost")
    assert message.retain
    wide = client_factory(broker, "sys-wide", version=V311)
    wide.connect()
    wide.subscribe("$SYS/#")
    topics = {m.topic for m in wide.expect_messages(3)}
    assert all(t.startswith("$SYS/broker/") for t in topics)


# -- shared subscriptions ------------------------------------------------------------------


def test_connack_shared_subscription_available_mqtt_3_2_2_3(broker, client_factory):
    """v5 3.2.2.3.15: CONNACK Shared Subscription Available is 1 when supported."""
    c = client_factory(broker, "caps")
    connack = c.connect()
    assert connack.properties.SharedSubscriptionAvailable == 1
    assert connack.properties.WildcardSubscriptionAvailable == 1
    assert connack.properties.SubscriptionIdentifierAvailable == 1


@pytest.mark.parametrize("members", [2, 3])
def test_shared_subscription_each_message_to_one_member_round_robin_mqtt_4_8_2(
    broker, client_factory, members
):
    """v5 4.8.2 Shared Subscriptions: each message matching `$share/g/topic` goes to exactly
    one session of the group; with round robin the members take turns."""
    group = [client_factory(broker, f"member{i}") for i in range(members)]
    for member in group:
        member.connect()
        assert member.subscribe("$share/g/jobs/+", 1) == [1]
    pub = client_factory(broker, "pub")
    pub.connect()
    total = members * 3
    for n in range(total):
        pub.publish("jobs/x", b"%d" % n, 1)
    counts = Counter()
    seen = []
    for index, member in enumerate(group):
        while True:
            try:
                message = member.messages.get(timeout=0.5)
            except queue.Empty:
                break
            counts[index] += 1
            seen.append(message.payload)
    assert sorted(seen) == sorted(b"%d" % n for n in range(total))  # each exactly once
    assert counts == Counter({i: 3 for i in range(members)})


def test_shared_and_plain_subscription_both_receive_mqtt_4_8_2(broker, client_factory):
    """v5 4.8.2: a shared group receives one copy, independently of ordinary subscriptions
    and of other groups."""
    a = client_factory(broker, "a")
    b = client_factory(broker, "b")
    plain = client_factory(broker, "plain")
    for c in (a, b, plain):
        c.connect()
    a.subscribe("$share/g1/news")
    b.subscribe("$share/g2/news")
    plain.subscribe("news")
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("news", b"x", 1)
    for c in (a, b, plain):
        assert c.expect_message().payload == b"x"


# -- refused and invalid filters -------------------------------------------------------------


@VERSIONS
def test_refused_topic_filter_suback_0x80_mqtt_3_9_3(broker_factory, client_factory, version):
    """3.9.3 SUBACK payload, [MQTT-3.9.3-1]: the server may refuse a subscription; SUBACK
    carries 0x80 (3.1.1 Failure / v5 Unspecified error) for it, and no message for that
    filter is delivered."""
    handle = broker_factory(refused_topic_filters=("test/nosubscribe",))
    c = client_factory(handle, "refused", version=version)
    c.connect()
    assert c.subscribe("test/nosubscribe", 1) == [0x80]
    assert c.subscribe("test/ok", 1) == [1]
    pub = client_factory(handle, "pub", version=version)
    pub.connect()
    pub.publish("test/nosubscribe", b"x", 1)
    c.expect_no_message()


@pytest.mark.parametrize(
    ("version", "code"), [(ProtocolVersion.V311, 0x80), (ProtocolVersion.V5, 0x8F)]
)
def test_invalid_topic_filter_refused_mqtt_4_7_1_2(broker, version, code):
    """[MQTT-4.7.1-1] [MQTT-4.7.1-2]: `#` must be last and alone in its level; an invalid
    filter gets SUBACK 0x80 (3.1.1) / 0x8F Topic Filter invalid (v5)."""
    c = raw(broker, version)
    c.connect("badfilter")
    c.send(
        Subscribe(
            packet_id=3,
            subscriptions=(
                Subscription(topic_filter="a/#/b", qos=1),
                Subscription(topic_filter="a/b#", qos=1),
                Subscription(topic_filter="a/+/b", qos=1),
            ),
        )
    )
    suback = c.recv()
    assert isinstance(suback, Suback) and suback.packet_id == 3
    assert list(suback.reason_codes) == [code, code, 1]
    bye(c)


# -- overlapping subscriptions -----------------------------------------------------------------


@VERSIONS
def test_overlapping_subscriptions_one_copy_at_highest_qos_mqtt_3_3_4_2(
    broker, client_factory, version
):
    """v5 [MQTT-3.3.4-2]: a client with several matching (non-shared) subscriptions receives
    the message respecting the maximum QoS of them (Roost sends one copy)."""
    sub = client_factory(broker, "overlap", version=version)
    sub.connect()
    sub.subscribe("ov/#", 0)
    sub.subscribe("ov/+", 2)
    pub = client_factory(broker, "pub", version=version)
    pub.connect()
    pub.publish("ov/x", b"x", 2)
    assert sub.expect_message().qos == 2
    sub.expect_no_message()


# -- UNSUBSCRIBE ----------------------------------------------------------------------------


def test_unsubscribe_stops_delivery_mqtt_3_10_4_1(broker, client_factory):
    """[MQTT-3.10.4-1] [MQTT-3.10.4-4] [MQTT-3.10.4-5]: after UNSUBACK the server stops adding
    messages for the filter; the UNSUBACK has the packet identifier of the UNSUBSCRIBE."""
    sub = client_factory(broker, "unsub")
    sub.connect()
    sub.subscribe("un/t", 1)
    assert sub.unsubscribe("un/t") == [0x00]
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("un/t", b"x", 1)
    sub.expect_no_message()


def test_v5_unsuback_no_subscription_existed_0x11_mqtt_3_11_3(broker):
    """v5 3.11.3: UNSUBACK carries 0x11 No subscription existed for a filter the client did
    not hold, 0x00 for one it did, in order [MQTT-3.11.3-1]."""
    c = raw(broker)
    c.connect("unsub-raw")
    c.subscribe("held", 0)
    c.send(Unsubscribe(packet_id=5, topic_filters=("never", "held")))
    unsuback = c.recv()
    assert isinstance(unsuback, Unsuback) and unsuback.packet_id == 5
    assert list(unsuback.reason_codes) == [0x11, 0x00]
    bye(c)


def test_v311_unsuback_even_if_nothing_unsubscribed_mqtt_3_10_4_5(broker):
    """[MQTT-3.10.4-5] (3.1.1): the server sends UNSUBACK even if no topic filter matched."""
    c = raw(broker, ProtocolVersion.V311)
    c.connect("unsub311")
    c.send(Unsubscribe(packet_id=6, topic_filters=("nothing/here",)))
    unsuback = c.recv()
    assert isinstance(unsuback, Unsuback) and unsuback.packet_id == 6
    bye(c)


def test_shared_and_non_shared_subscription_of_one_client_two_copies_mqtt_4_8_2(
    broker, client_factory
):
    """v5 4.8.2: a client with a Shared Subscription and a non-shared one matching the same
    message receives a copy by virtue of the non-shared subscription and a second copy as
    the (only) member of the shared group."""
    c = client_factory(broker, "both")
    c.connect()
    c.subscribe("$share/g/both/t", 1)
    c.subscribe("both/t", 1)
    pub = client_factory(broker, "pub")
    pub.connect()
    pub.publish("both/t", b"x", 1)
    assert [m.payload for m in c.expect_messages(2)] == [b"x", b"x"]
    c.expect_no_message()


def test_client_may_not_publish_into_sys_mqtt_4_7_2_1(broker, client_factory):
    """4.7.2: `$SYS/` is the server's own; a v5 publish there is refused (PUBACK 0x87 Not
    authorized) and reaches no subscriber."""
    watcher = client_factory(broker, "watcher")
    watcher.connect()
    watcher.subscribe("$SYS/fake")
    pub = client_factory(broker, "pub")
    pub.connect()
    assert pub.publish("$SYS/fake", b"x", 1) == 0x87
    watcher.expect_no_message()
