"""The `generic` dialect: plain MQTT; registry credentials or anonymous, per config; the
tenant is the listener's."""

from __future__ import annotations

import pytest

from tests.dialects.support import at, dialect_listener, platform, registry_of
from tests.integration.helpers import V5, V311

VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


@pytest.fixture
def generic():
    handle = platform(dialect_listener("plain", "generic", tenant="acme"))
    registry = registry_of(handle)
    registry.add_tenant("acme")
    registry.add_device("acme", "sensor-1")
    registry.add_password("acme", "sensor-1", "sensor-1", "pw1")
    yield at(handle, "plain")
    handle.stop()


def test_without_registry_every_client_is_let_in(broker, clients):
    """No registry configured: the AuthChain decides, as before dialects (allow all)."""
    c = clients(broker, "anon-1", version=V311)
    assert c.connect().reason_code == 0


@VERSIONS
def test_registry_credentials_accepted(generic, clients, version):
    c = clients(generic, "g-ok", username="sensor-1", password="pw1", version=version)
    c.connect()
    assert generic.call(lambda: ("acme", "g-ok") in generic.server.ctx.connections)
    client = generic.call(lambda: generic.server.ctx.connections[("acme", "g-ok")].client)
    assert client.device_id == "sensor-1"


@VERSIONS
def test_bad_password_refused_0x04(generic, clients, version):
    """Wrong password or unknown username: 3.1.1 0x04, v5 0x86 Bad User Name or Password."""
    for user, pw in (("sensor-1", "nope"), ("nobody", "pw1")):
        c = clients(generic, "g-bad", username=user, password=pw, version=version)
        assert c.connect(expect_success=False).reason_code == 0x86


@VERSIONS
def test_anonymous_refused_unless_allowed(generic, clients, version):
    c = clients(generic, "g-anon", version=version)
    assert c.connect(expect_success=False).reason_code == 0x87


def test_anonymous_allowed_by_config(clients):
    handle = platform(dialect_listener("plain", "generic", tenant="acme"), allow_anonymous=True)
    try:
        c = clients(at(handle, "plain"), "g-anon", version=V5)
        assert c.connect().reason_code == 0
    finally:
        handle.stop()


def test_disabled_device_refused(generic, clients):
    registry_of(generic).set_device_enabled("acme", "sensor-1", False)
    c = clients(generic, "g-dis", username="sensor-1", password="pw1", version=V5)
    assert c.connect(expect_success=False).reason_code == 0x86


def test_generic_keeps_mqtt_capabilities(generic, clients):
    """Wildcards, QoS 2 and retained messages work as in plain MQTT."""
    sub = clients(generic, "g-sub", username="sensor-1", password="pw1", version=V5)
    sub.connect()
    assert sub.subscribe("g/#", 2) == [2]
    pub = clients(generic, "g-pub", username="sensor-1", password="pw1", version=V5)
    pub.connect()
    pub.publish("g/r", b"kept", 2, retain=True)
    assert sub.expect_message().qos == 2
    late = clients(generic, "g-late", username="sensor-1", password="pw1", version=V5)
    late.connect()
    late.subscribe("g/r", 1)
    assert late.expect_message().retain
