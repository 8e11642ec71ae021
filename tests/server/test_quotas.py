"""Per-tenant quotas (docs/quotas.md) with real paho clients: connections and sessions at
CONNECT, subscriptions at SUBSCRIBE, the publish rate and retained messages at PUBLISH.
Tenant "ta" is on listener "a", tenant "tb" on listener "b"; one tenant's quota never
touches the other."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from roost.config import QuotaConfig, TenantQuotaConfig
from tests.conftest import BrokerHandle, managed_brokers
from tests.dialects.support import at, dialect_listener
from tests.integration.helpers import V5, V311, Client, connect_props, wait_until

QUOTA_EXCEEDED = 0x97
NO_MATCHING_SUBSCRIBERS = 0x10


@pytest.fixture
def tenants() -> Iterator[Callable[..., BrokerHandle]]:
    """`tenants(ta=QuotaConfig(...) overrides, quotas=QuotaConfig(...))`: a broker with
    listeners "a" (tenant ta) and "b" (tenant tb)."""
    brokers = managed_brokers()
    factory = next(brokers)

    def make(quotas: QuotaConfig | None = None, **ta: Any) -> BrokerHandle:
        return factory(
            listeners=(
                dialect_listener("a", "generic", "ta"),
                dialect_listener("b", "generic", "tb"),
            ),
            quotas=quotas,
            tenant_quotas=(TenantQuotaConfig(tenant="ta", overrides=tuple(ta.items())),),
            durability="memory",
        )

    yield make
    next(brokers, None)  # stops them


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(handle: BrokerHandle, listener: str, client_id: str, **kw: Any) -> Client:
        client = Client(at(handle, listener), client_id, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def usage(handle: BrokerHandle, tenant: str, name: str) -> int:
    return int(handle.call(lambda: handle.server.broker.quotas.of(tenant).as_dict()[name]))


def test_max_connections_refused_with_quota_exceeded(tenants, clients):
    """Over the tenant's connections: CONNACK 0x97 Quota exceeded (3.1.1: 0x03 Server
    unavailable), Session Present 0, connection closed [MQTT-3.2.2-6] [MQTT-3.2.2-7]
    (3.1.1 [MQTT-3.2.2-4] [MQTT-3.2.2-5])."""
    handle = tenants(max_connections=2)
    first = clients(handle, "a", "a1")
    first.connect()
    clients(handle, "a", "a2", version=V311).connect()
    over5 = clients(handle, "a", "a3").connect(expect_success=False)
    assert (over5.reason_code, over5.session_present) == (QUOTA_EXCEEDED, False)
    # paho reports the 3.1.1 return code 0x03 Server unavailable as 0x88.
    v311 = clients(handle, "a", "a4", version=V311)
    assert v311.connect(expect_success=False).reason_code == 0x88
    # Another tenant is not affected; a takeover of a connected client id takes nothing new.
    clients(handle, "b", "b1").connect()
    clients(handle, "a", "a1").connect()
    assert first.expect_disconnect().reason_code == 0x8E
    assert usage(handle, "ta", "refused_connections") == 2
    # The $SYS values name each tenant's usage.
    values = handle.call(handle.server.sys_values)
    assert values["tenants/ta/connections"] == "2"
    assert values["tenants/ta/refused_connections"] == "2"


def test_connection_freed_by_disconnect_is_available_again(tenants, clients):
    handle = tenants(max_connections=1)
    c = clients(handle, "a", "a1")
    c.connect()
    c.disconnect()
    wait_until(lambda: usage(handle, "ta", "connections") == 0, what="connection released")
    clients(handle, "a", "a2").connect()


def test_max_sessions_counts_offline_sessions(tenants, clients):
    """An offline persistent session holds its place; resuming it takes nothing new."""
    handle = tenants(max_sessions=2)
    expiry = connect_props(SessionExpiryInterval=600)
    offline = clients(handle, "a", "p1")
    offline.connect(properties=expiry)
    offline.disconnect()
    clients(handle, "a", "c2").connect()
    wait_until(lambda: usage(handle, "ta", "connections") == 1, what="p1 offline")
    assert clients(handle, "a", "c3").connect(expect_success=False).reason_code == QUOTA_EXCEEDED
    resumed = clients(handle, "a", "p1").connect(clean_start=False, properties=expiry)
    assert resumed.session_present


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_subscriptions_per_session_and_per_tenant(tenants, clients, version):
    """SUBACK carries 0x97 Quota exceeded (3.1.1: 0x80 Failure) for a subscription over a
    quota, a code per filter in order [MQTT-3.9.3-1] (3.1.1 [MQTT-3.8.4-5])."""
    failure = QUOTA_EXCEEDED if version == V5 else 0x80
    handle = tenants(max_subscriptions_per_session=2, max_subscriptions=3)
    s1 = clients(handle, "a", "s1", version=version)
    s1.connect()
    assert s1.subscribe("x/1", 1) == [1]
    assert s1.subscribe("x/2", 1) == [1]
    assert s1.subscribe("x/3", 1) == [failure]
    assert s1.subscribe("x/1", 0) == [0]  # replacing one takes nothing new
    s2 = clients(handle, "a", "s2", version=version)
    s2.connect()
    assert s2.subscribe("y/1", 1) == [1]
    assert s2.subscribe("y/2", 1) == [failure]  # the tenant's 3 are used
    assert s1.unsubscribe("x/2") in ([0], [])
    assert s2.subscribe("y/2", 1) == [1]
    other = clients(handle, "b", "o1", version=version)
    other.connect()
    assert [other.subscribe(f"z/{i}", 1)[0] for i in range(4)] == [1, 1, 1, 1]


def test_publish_rate_v5_puback_quota_exceeded_and_qos0_dropped(tenants, clients):
    """Over the tenant's rate a v5 QoS 1 PUBLISH gets PUBACK 0x97 and is not delivered; a
    QoS 0 one is dropped and counted."""
    handle = tenants(publish_rate=0.05, publish_burst=3)
    sub = clients(handle, "a", "sub")
    sub.connect()
    sub.subscribe("up/#", 1)
    pub = clients(handle, "a", "pub")
    pub.connect()
    assert [pub.publish(f"up/{i}", b"m", 1) for i in range(3)] == [0, 0, 0]
    assert len(sub.expect_messages(3)) == 3
    assert pub.publish("up/over", b"m", 1) == QUOTA_EXCEEDED
    pub.publish("up/zero", b"m", 0)
    wait_until(lambda: usage(handle, "ta", "refused_publishes") == 2, what="QoS 0 counted")
    sub.expect_no_message()
    # Tenant tb has no rate.
    other = clients(handle, "b", "pub-b")
    other.connect()
    assert [other.publish("up/b", b"m", 1) for _ in range(5)] == [NO_MATCHING_SUBSCRIBERS] * 5


def test_publish_rate_v311_qos1_closes_the_connection_unacknowledged(tenants, clients):
    """3.1.1 has no PUBACK reason code: a QoS 1 PUBLISH over the rate is not acknowledged
    and the connection is closed, so the client sends it again later instead of losing it."""
    handle = tenants(publish_rate=0.05, publish_burst=1)
    pub = clients(handle, "a", "pub", version=V311)
    pub.connect()
    assert pub.publish("up/1", b"m", 1) == 0
    info = pub.paho.publish("up/2", b"m", 1)
    pub.expect_disconnect()
    assert not info.is_published()


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_retained_message_count(tenants, clients, version):
    """Over the tenant's retained messages a retained PUBLISH to a new topic is refused
    (v5: PUBACK 0x97; 3.1.1 acknowledges and drops it, as any refused PUBLISH
    [MQTT-3.3.5-2]); replacing or deleting one is always allowed."""
    handle = tenants(max_retained_messages=2)
    pub = clients(handle, "a", "pub", version=version)
    pub.connect()
    pub.publish("r/1", b"one", 1, retain=True)
    pub.publish("r/2", b"two", 1, retain=True)
    code = pub.publish("r/3", b"three", 1, retain=True)
    assert code == (QUOTA_EXCEEDED if version == V5 else 0)
    pub.publish("r/1", b"one again", 1, retain=True)
    wait_until(lambda: usage(handle, "ta", "refused_retained") == 1, what="refusal counted")
    sub = clients(handle, "a", "sub")
    sub.connect()
    sub.subscribe("r/#", 1)
    got = {m.topic: m.payload for m in sub.expect_messages(2)}
    assert got == {"r/1": b"one again", "r/2": b"two"}
    sub.expect_no_message()
    pub.publish("r/2", b"", 1, retain=True)
    assert pub.publish("r/3", b"three", 1, retain=True) in (0, NO_MATCHING_SUBSCRIBERS)
    assert usage(handle, "ta", "retained_messages") == 2


def test_retained_bytes(tenants, clients):
    """A retained message counts its payload, topic and 64 bytes of overhead."""
    handle = tenants(max_retained_bytes=250)
    pub = clients(handle, "a", "pub")
    pub.connect()
    assert pub.publish("r/1", b"x" * 100, 1, retain=True) == NO_MATCHING_SUBSCRIBERS  # 167
    assert pub.publish("r/2", b"x" * 100, 1, retain=True) == QUOTA_EXCEEDED  # 334 > 250
    assert pub.publish("r/1", b"x" * 150, 1, retain=True) == NO_MATCHING_SUBSCRIBERS  # 217
    assert usage(handle, "ta", "retained_bytes") == 217
    other = clients(handle, "b", "pub-b")
    other.connect()
    assert other.publish("r/2", b"x" * 1000, 1, retain=True) == NO_MATCHING_SUBSCRIBERS


def test_default_quotas_apply_to_every_tenant(tenants, clients):
    """`[quotas]` holds for each tenant on its own; `[[tenant_quotas]]` overrides it."""
    handle = tenants(QuotaConfig(max_connections=1), max_connections=2)
    clients(handle, "b", "b1").connect()
    assert clients(handle, "b", "b2").connect(expect_success=False).reason_code == QUOTA_EXCEEDED
    clients(handle, "a", "a1").connect()
    clients(handle, "a", "a2").connect()
