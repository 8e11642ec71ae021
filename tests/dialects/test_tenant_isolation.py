"""Tenants are a boundary: no delivery, retained message, session takeover or ACL rule
crosses them, $share groups included."""

from __future__ import annotations

import pytest

from roost.config import AclRuleConfig
from tests.dialects.support import at, dialect_listener, platform, registry_of
from tests.integration.helpers import V5, V311

VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
PW = "pw"


@pytest.fixture
def two_tenants():
    """Listener "a" is tenant a, listener "b" tenant b (generic); "c8y" takes the tenant
    from the username. Each tenant has a device "dev" with username "dev". ACL: each client
    may use `users/%u/#` and `shared/#` only, and may not subscribe to `shared/secret/#`."""
    acl = (
        AclRuleConfig(permission="deny", action="subscribe", topic="shared/secret/#"),
        AclRuleConfig(permission="allow", action="all", topic="users/%u/#"),
        AclRuleConfig(permission="allow", action="all", topic="shared/#"),
        AclRuleConfig(permission="deny", action="all", topic="#"),
    )
    handle = platform(
        dialect_listener("a", "generic", tenant="a"),
        dialect_listener("b", "generic", tenant="b"),
        dialect_listener("c8y", "cumulocity-connect"),
        acl=acl,
    )
    registry = registry_of(handle)
    for tenant in ("a", "b"):
        registry.add_tenant(tenant)
        registry.add_device(tenant, "dev")
        registry.add_password(tenant, "dev", "dev", PW)
    yield handle
    handle.stop()


def _client(clients, handle, listener, client_id, version):
    c = clients(at(handle, listener), client_id, username="dev", password=PW, version=version)
    c.connect()
    return c


@VERSIONS
def test_no_cross_tenant_delivery(two_tenants, clients, version):
    sub_b = _client(clients, two_tenants, "b", "sub", version)
    sub_b.subscribe("shared/topic", 1)
    sub_a = _client(clients, two_tenants, "a", "sub", version)
    sub_a.subscribe("shared/topic", 1)
    pub_a = _client(clients, two_tenants, "a", "pub", version)
    pub_a.publish("shared/topic", b"for a", 1)
    assert sub_a.expect_message().payload == b"for a"
    sub_b.expect_no_message()


@VERSIONS
def test_no_cross_tenant_delivery_through_username_tenant(two_tenants, clients, version):
    """Cumulocity Connect: the tenant comes from `<tenantID>/<username>`."""
    handle = at(two_tenants, "c8y")
    sub_b = clients(handle, "sub", username="b/dev", password=PW, version=version)
    sub_b.connect()
    sub_b.subscribe("shared/x", 1)
    pub_a = clients(handle, "pub", username="a/dev", password=PW, version=version)
    pub_a.connect()
    pub_a.publish("shared/x", b"a only", 1)
    sub_b.expect_no_message()


@VERSIONS
def test_no_cross_tenant_retained(two_tenants, clients, version):
    pub_a = _client(clients, two_tenants, "a", "pub", version)
    pub_a.publish("shared/retained", b"a's", 1, retain=True)
    sub_b = _client(clients, two_tenants, "b", "sub", version)
    sub_b.subscribe("shared/retained", 1)
    sub_b.expect_no_message()
    sub_a = _client(clients, two_tenants, "a", "sub", version)
    sub_a.subscribe("shared/retained", 1)
    assert sub_a.expect_message().payload == b"a's"


@VERSIONS
def test_same_client_id_in_two_tenants_no_takeover(two_tenants, clients, version):
    first = _client(clients, two_tenants, "a", "same", version)
    _client(clients, two_tenants, "b", "same", version)
    first.expect_no_message()
    with pytest.raises(AssertionError):
        first.expect_disconnect(timeout=0.5)
    keys = two_tenants.call(lambda: set(two_tenants.server.ctx.connections))
    assert {("a", "same"), ("b", "same")} <= keys


def test_no_cross_tenant_shared_subscription(two_tenants, clients):
    """A `$share` group of the same name in another tenant is another group."""
    member_b = _client(clients, two_tenants, "b", "member", V5)
    assert member_b.subscribe("$share/g/shared/work", 1) == [1]
    member_a = _client(clients, two_tenants, "a", "member", V5)
    assert member_a.subscribe("$share/g/shared/work", 1) == [1]
    pub_a = _client(clients, two_tenants, "a", "pub", V5)
    for i in range(4):
        pub_a.publish("shared/work", str(i).encode(), 1)
    assert len(member_a.expect_messages(4)) == 4
    member_b.expect_no_message()


def test_share_filter_checked_against_inner_filter(two_tenants, clients):
    """`$share/g/f` is authorized as `f`: a share of a denied topic is refused."""
    c = _client(clients, two_tenants, "a", "sharer", V5)
    assert c.subscribe("$share/g/private/#", 1) == [0x87]
    assert c.subscribe("$share/g/users/dev/#", 1) == [1]


@VERSIONS
def test_no_acl_leak_between_tenants(two_tenants, clients, version):
    """`users/%u/#` lets "dev" of tenant a use users/dev/...; the same username in tenant b
    gets the same topic of its own tenant, never a's messages."""
    sub_b = _client(clients, two_tenants, "b", "sub", version)
    assert sub_b.subscribe("users/dev/#", 1) == [1]
    assert sub_b.subscribe("users/other/#", 1) == [0x87 if version == V5 else 0x80]
    pub_a = _client(clients, two_tenants, "a", "pub", version)
    pub_a.publish("users/dev/t", b"a", 1)
    sub_b.expect_no_message()


@VERSIONS
def test_retained_delivery_authorized(two_tenants, clients, version):
    """Retained messages are checked on delivery: `shared/#` is allowed, but the retained
    message of `shared/secret/x`, which the ACL denies to subscribers, is not delivered."""
    pub = _client(clients, two_tenants, "a", "pub", version)
    pub.publish("shared/secret/x", b"secret", 1, retain=True)
    pub.publish("shared/open/x", b"open", 1, retain=True)
    sub = _client(clients, two_tenants, "a", "sub", version)
    assert sub.subscribe("shared/#", 1) == [1]
    assert sub.expect_message().payload == b"open"
    sub.expect_no_message()
