"""Conformance of the `cumulocity-smartrest` dialect, statement by statement through the seed
document cumulocity-mqtt-smartrest.md, with paho-mqtt 3.1.1 and 5.0 over real sockets.

Devices connect on listener "sr"; an application of tenant t1 watches and commands them on
listener "app" (generic dialect, tenant t1) through the canonical topics
`smartrest/<deviceIdentifier>/...`."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import BrokerHandle
from tests.dialects.support import at, dialect_listener, login, platform, registry_of
from tests.integration.helpers import V5, V311, Client, connect_props, wait_until

Clients = Callable[..., Client]
VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
PASSWORD = "s3cret-pw"


@pytest.fixture
def sr() -> Iterator[tuple[BrokerHandle, BrokerHandle]]:
    """(device listener, application listener); tenant t1 with users dev42 and dev43."""
    handle = platform(
        dialect_listener("sr", "cumulocity-smartrest"),
        dialect_listener("app", "generic", tenant="t1"),
        allow_anonymous=True,
    )
    registry = registry_of(handle)
    registry.add_tenant("t1")
    for device in ("dev42", "dev43"):
        registry.add_device("t1", device)
        registry.add_password("t1", device, device, PASSWORD)
    yield at(handle, "sr"), at(handle, "app")
    handle.stop()


def device(
    clients: Clients,
    handle: BrokerHandle,
    client_id: str,
    version: int,
    user: str = "t1/dev42",
    **kwargs: bool,
) -> Client:
    return login(clients, handle, client_id, version, user, PASSWORD, **kwargs)


def connected(
    clients: Clients, handle: BrokerHandle, client_id: str, version: int, user: str = "t1/dev42"
) -> Client:
    return login(clients, handle, client_id, version, user, PASSWORD, connect=True)


def app(clients: Clients, handle: BrokerHandle, name: str, version: int) -> Client:
    c = clients(handle, name, version=version)
    c.connect()
    return c


# -- MQTT Authentication ---------------------------------------------------------------------


@VERSIONS
def test_username_in_the_format_tenant_slash_username(sr, clients, version):
    """ "the MQTT username needs to include both tenant and username in the format
    tenant/username"; anything else is refused (0x05 / v5 0x87)."""
    devices, _ = sr
    assert connected(clients, devices, "dev42", version).connack is not None
    for user in ("dev42", "/dev42", "t1/", "t9/dev42"):
        bad = device(clients, devices, "dev43", version, user=user)
        assert bad.connect(expect_success=False).reason_code == 0x87, user
    wrong = clients(devices, "dev43", username="t1/dev43", password="nope", version=version)
    assert wrong.connect(expect_success=False).reason_code == 0x87


# -- MQTT ClientId -----------------------------------------------------------------------------


@VERSIONS
def test_client_id_connection_type_device_identifier_default_template(sr, clients, version):
    """ClientId "connectionType:deviceIdentifier:defaultTemplateIdentifier"; only the
    deviceIdentifier is mandatory, the connection type defaults to d. Other shapes are
    refused (0x02 / v5 0x85)."""
    devices, _ = sr
    for client_id in ("mySerialNumber", "d:mySerialNumber", "d:mySerialNumber:myTemplate"):
        c = connected(clients, devices, client_id, version)
        assert c.connack is not None and c.connack.reason_code == 0
        c.disconnect()
    for client_id in ("x:serial", "d::tmpl", "d:serial:", "d:a:b:c", "d:se/rial", "d:s+"):
        bad = device(clients, devices, client_id, version)
        assert bad.connect(expect_success=False).reason_code == 0x85, client_id


@VERSIONS
def test_uniqueness_determined_only_by_device_identifier(sr, clients, version):
    """ "The uniqueness of the MQTT ClientId is determined only by the deviceIdentifier":
    `d:dev42:tmpl9` takes over the session of `dev42:...` and its connection is closed."""
    devices, _ = sr
    first = connected(clients, devices, "d:dev42:tmpl1", version)
    assert devices.call(lambda: ("t1", "dev42") in devices.server.ctx.connections)
    second = connected(clients, devices, "d:dev42:tmpl9", version)
    first.expect_disconnect()
    assert second.subscribe("s/ds", 1) == [1]
    other = connected(clients, devices, "dev43", version, user="t1/dev43")
    assert other.connack is not None and other.connack.reason_code == 0


# -- MQTT Quality of Service -------------------------------------------------------------------


@VERSIONS
def test_all_3_levels_of_qos_supported(sr, clients, version):
    """QoS 0, 1 and 2 upstream; downstream see the next test."""
    devices, apps = sr
    watcher = app(clients, apps, "watch", version)
    assert watcher.subscribe("smartrest/dev42/s/us", 2) == [2]
    dev = connected(clients, devices, "d:dev42", version)
    assert dev.subscribe("s/ds", 2) == [2]
    if version == V5:
        assert dev.connack is not None
        assert getattr(dev.connack.properties, "MaximumQoS", 2) == 2
    for qos in (0, 1, 2):
        dev.publish("s/us", f"200,{qos}".encode(), qos)
        got = watcher.expect_message()
        assert (got.topic, got.payload, got.qos) == (
            "smartrest/dev42/s/us",
            f"200,{qos}".encode(),
            qos,
        )


@VERSIONS
def test_operations_delivered_in_the_qos_defined_when_subscribing(sr, clients, version):
    """ "For subscriptions to the operation or error topics we will deliver all messages in
    the QoS the client defined when subscribing to the topic": whatever QoS an operation
    was published with, not the lower of the two as plain MQTT does [MQTT-3.8.4-8]."""
    devices, apps = sr
    ops = app(clients, apps, "ops", version)
    for subscribed in (0, 1, 2):
        dev = connected(clients, devices, "d:dev42", version)
        assert dev.subscribe("s/ds", subscribed) == [subscribed]
        for published in (0, 1, 2):
            ops.publish("smartrest/dev42/s/ds", f"510,dev42,{published}".encode(), published)
            got = dev.expect_message()
            assert (got.topic, got.qos) == ("s/ds", subscribed), (subscribed, published)
        dev.disconnect()


def test_operation_qos_kept_for_a_persistent_session_across_restart(clients, tmp_path):
    """An offline device's persistent session keeps the rule through a restart: an operation
    published at QoS 0 meanwhile is queued (and stored) at the QoS 1 it subscribed with."""

    def start() -> BrokerHandle:
        return platform(
            dialect_listener("sr", "cumulocity-smartrest"),
            dialect_listener("app", "generic", tenant="t1"),
            allow_anonymous=True,
            data_dir=str(tmp_path),
        )

    handle = start()
    registry = registry_of(handle)
    registry.add_tenant("t1")
    registry.add_device("t1", "dev42")
    registry.add_password("t1", "dev42", "dev42", PASSWORD)
    dev = device(clients, at(handle, "sr"), "dev42", V311, clean_session=False)
    dev.connect()
    dev.subscribe("s/ds", 1)
    dev.disconnect()
    handle.stop()
    handle = start()
    try:
        ops = app(clients, at(handle, "app"), "ops", V5)
        assert ops.publish("smartrest/dev42/s/ds", b"511,dev42,reboot", 0) == 0
        wait_until(
            lambda: handle.call(
                lambda: handle.server.broker.sessions[("t1", "dev42")].message_count() == 1
            ),
            what="operation queued",
        )
        handle.stop()
        handle = start()  # a QoS 0 delivery would not have been stored
        again = device(clients, at(handle, "sr"), "dev42", V311, clean_session=False)
        assert again.connect().session_present
        got = again.expect_message()
        assert (got.topic, got.payload, got.qos) == ("s/ds", b"511,dev42,reboot", 1)
    finally:
        handle.stop()


# -- MQTT Clean Session ------------------------------------------------------------------------


@VERSIONS
def test_clean_session_0_keeps_the_subscription_and_missed_messages(sr, clients, version):
    """ "if the client disconnects your subscription will still work and when you reconnect
    the client will receive the missed messages" — even under another template id."""
    devices, apps = sr
    kwargs = {"clean_session": False} if version == V311 else {}
    props = connect_props(SessionExpiryInterval=3600) if version == V5 else None
    dev = device(clients, devices, "d:dev42:tmpl1", version, **kwargs)
    assert dev.connect(clean_start=False, properties=props).session_present is False
    assert dev.subscribe("s/ds", 1) == [1]
    dev.disconnect()
    ops = app(clients, apps, "ops", version)
    ops.publish("smartrest/dev42/s/ds", b"510,dev42", 1)
    again = device(clients, devices, "d:dev42:tmpl2", version, **kwargs)
    assert again.connect(clean_start=False, properties=props).session_present is True
    got = again.expect_message()
    assert (got.topic, got.payload) == ("s/ds", b"510,dev42")


# -- MQTT Retained Flag --------------------------------------------------------------------------


@VERSIONS
def test_retained_flag_allowed_but_without_practical_difference(sr, clients, version):
    """Publishing with the retained flag is allowed but "has no practical difference from
    sending without the flag": delivered without it, nothing kept for later subscribers."""
    devices, apps = sr
    live = app(clients, apps, "live", version)
    live.subscribe("smartrest/dev42/s/us", 1)
    dev = connected(clients, devices, "dev42", version)
    assert dev.publish("s/us", b"200,1", 1, retain=True) in (0, 0x10)
    got = live.expect_message()
    assert got.retain is False
    late = app(clients, apps, "late", version)
    late.subscribe("smartrest/dev42/s/us", 1)
    late.expect_no_message()


@VERSIONS
def test_subscriptions_to_the_topics_where_devices_publish_data_not_allowed(sr, clients, version):
    """Subscribing to the data topics (`s/us`, `s/uc/...`, `t|q|c/us`, child suffixes) is
    refused (v5 0x87); the operation, template and error topics are allowed."""
    devices, _ = sr
    dev = connected(clients, devices, "dev42", version)
    refused = 0x80 if version == V311 else 0x87
    for topic_filter in ("s/us", "s/uc/tmpl", "t/us", "q/us", "c/us", "s/us/child1", "a/b"):
        assert dev.subscribe(topic_filter, 1) == [refused], topic_filter
    for topic_filter in ("s/ds", "s/dc/tmpl", "s/e"):
        assert dev.subscribe(topic_filter, 1) == [1], topic_filter


# -- MQTT Last Will ------------------------------------------------------------------------------


@VERSIONS
def test_last_will_not_supported(sr, clients, version):
    """ "The Last Will feature is currently not supported": the CONNECT is accepted, the will
    is never published."""
    devices, apps = sr
    watcher = app(clients, apps, "willwatch", version)
    watcher.subscribe("#", 1)
    dev = device(clients, devices, "dev42", version)
    dev.will_set("s/us", b"400,gone", 1)
    dev.connect()
    dev.drop()
    wait_until(lambda: devices.call(lambda: ("t1", "dev42") not in devices.server.ctx.connections))
    watcher.expect_no_message()


# -- Device Hierarchies ---------------------------------------------------------------------------


@VERSIONS
def test_child_data_by_adding_the_child_identifier_to_the_topic(sr, clients, version):
    """ "the unique ID of the child is added as another section in the topic" (`s/us/child`,
    `s/uc/<template>/child`); the child's data stays below its root device."""
    devices, apps = sr
    watcher = app(clients, apps, "childwatch", version)
    watcher.subscribe("smartrest/dev42/#", 1)
    dev = connected(clients, devices, "dev42", version)
    dev.publish("s/us/child1", b"200,c1", 1)
    dev.publish("s/uc/tmpl/child1", b"300,c1", 1)
    got = watcher.expect_messages(2)
    assert [m.topic for m in got] == [
        "smartrest/dev42/s/us/child1",
        "smartrest/dev42/s/uc/tmpl/child1",
    ]


@VERSIONS
def test_operations_for_every_child_on_the_root_subscription(sr, clients, version):
    """ "The client will automatically receive operations for every child in the hierarchy by
    subscribing to the respective topic": an operation for child1 reaches the root's `s/ds`
    (and `s/dc/<template>`); another device does not see it."""
    devices, apps = sr
    root = connected(clients, devices, "dev42", version)
    root.subscribe("s/ds", 1)
    root.subscribe("s/dc/tmpl", 1)
    stranger = connected(clients, devices, "dev43", version, user="t1/dev43")
    stranger.subscribe("s/ds", 1)
    ops = app(clients, apps, "childops", version)
    ops.publish("smartrest/dev42/s/ds/child1", b"511,child1,reboot", 1)
    ops.publish("smartrest/dev42/s/dc/tmpl/child1", b"700,child1", 1)
    got = root.expect_messages(2)
    assert [(m.topic, m.payload) for m in got] == [
        ("s/ds", b"511,child1,reboot"),
        ("s/dc/tmpl", b"700,child1"),
    ]
    stranger.expect_no_message()


# -- Debugging -------------------------------------------------------------------------------------


@VERSIONS
def test_errors_of_a_publish_reported_on_s_e(sr, clients, version):
    """On `s/e` "the device can retrieve debug and error messages that occur during a publish
    from the device": a refused PUBLISH gets an error line there, at the subscription's QoS
    and without RETAIN; only that device receives it."""
    devices, _ = sr
    dev = connected(clients, devices, "dev42", version)
    assert dev.subscribe("s/e", 1) == [1]
    other = connected(clients, devices, "dev43", version, user="t1/dev43")
    other.subscribe("s/e", 1)
    code = dev.publish("s/ds", b"200,1", 1)
    if version == V5:
        assert code == 0x87
    got = dev.expect_message()
    assert (got.topic, got.payload, got.qos, got.retain) == (
        "s/e",
        b"135,s/ds,not authorized",
        1,
        False,
    )
    dev.publish("s/us", b"200,1", 0)
    dev.expect_no_message()
    other.expect_no_message()
