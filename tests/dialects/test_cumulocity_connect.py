"""Conformance of the `cumulocity-connect` dialect, statement by statement through the seed
document cumulocity-mqtt-connect.md, with paho-mqtt 3.1.1 and 5.0 over real sockets."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import BrokerHandle
from tests.dialects.support import at, dialect_listener, login, platform, registry_of
from tests.integration.helpers import V5, V311, Client, connect_props

Clients = Callable[..., Client]
VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
PASSWORD = "s3cret-pw"


@pytest.fixture
def c8y() -> Iterator[BrokerHandle]:
    """A broker whose listener "c8y" speaks Cumulocity Connect; tenant t1 with devices
    dev1 and dev2 (usernames dev1 / dev2), tenant t2 with dev1."""
    handle = platform(dialect_listener("c8y", "cumulocity-connect"))
    registry = registry_of(handle)
    for tenant, devices in (("t1", ("dev1", "dev2")), ("t2", ("dev1",))):
        registry.add_tenant(tenant)
        for device in devices:
            registry.add_device(tenant, device)
            registry.add_password(tenant, device, device, PASSWORD)
    yield at(handle, "c8y")
    handle.stop()


def device(
    clients: Clients,
    handle: BrokerHandle,
    client_id: str,
    version: int,
    user: str = "t1/dev1",
    **kwargs: bool,
) -> Client:
    return login(clients, handle, client_id, version, user, PASSWORD, **kwargs)


def connected(
    clients: Clients, handle: BrokerHandle, client_id: str, version: int, user: str = "t1/dev1"
) -> Client:
    return login(clients, handle, client_id, version, user, PASSWORD, connect=True)


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def v311_connack_return_code(handle: BrokerHandle, client_id: str, user: str, pw: str) -> int:
    """The CONNACK return code byte on the wire for a 3.1.1 CONNECT with these credentials."""
    variable = _string(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    payload = _string(client_id.encode()) + _string(user.encode()) + _string(pw.encode())
    body = variable + payload
    with socket.create_connection((handle.host, handle.port), timeout=3) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        data = b""
        while len(data) < 4:
            chunk = sock.recv(4 - len(data))
            if not chunk:
                break
            data += chunk
    assert data[:2] == b"\x20\x02", data
    return data[3]


# -- Features: Authentication ------------------------------------------------------------


@VERSIONS
def test_username_must_include_tenant_id_and_username(c8y, clients, version):
    """ "The MQTT username must include the tenant ID and username in the format
    <tenantID>/<username>." The tenant is the username's."""
    ok = connected(clients, c8y, "auth1", version)
    assert ok.connack is not None and ok.connack.reason_code == 0
    assert c8y.call(lambda: ("t1", "auth1") in c8y.server.ctx.connections)
    for user in ("dev1", "/dev1", "t1/", "t9/dev1"):
        bad = device(clients, c8y, "auth2", version, user=user)
        assert bad.connect(expect_success=False).reason_code == 0x87, user


@VERSIONS
def test_invalid_credentials_connack_0x05(c8y, clients, version):
    """ "if invalid credentials are sent in the CONNECT message, the server response CONNACK
    message contains the 0x05 return code" (v5: 0x87 Not authorized)."""
    c = clients(c8y, "badpw", username="t1/dev1", password="wrong", version=version)
    assert c.connect(expect_success=False).reason_code == 0x87
    missing = clients(c8y, "nopw", version=version)
    assert missing.connect(expect_success=False).reason_code == 0x87


def test_invalid_credentials_connack_0x05_on_the_wire(c8y):
    """The 3.1.1 CONNACK carries return code 0x05 itself (not 0x04)."""
    assert v311_connack_return_code(c8y, "wire1", "t1/dev1", "wrong") == 0x05
    assert v311_connack_return_code(c8y, "wire2", "t1/dev1", PASSWORD) == 0x00


# -- Features: ClientId --------------------------------------------------------------------


@VERSIONS
def test_client_id_up_to_128_alphanumeric_characters(c8y, clients, version):
    """ "ClientId may consist of up to 128 alphanumeric characters." Longer ones, other
    characters and an empty one are refused (0x02 / v5 0x85)."""
    assert connected(clients, c8y, "A" * 128, version).connack is not None
    for client_id in ("A" * 129, "dev-1", "dev_1", "dev:1"):
        bad = device(clients, c8y, client_id, version)
        assert bad.connect(expect_success=False).reason_code == 0x85, client_id


def test_empty_client_id_refused(c8y):
    """Each client must bring its own unique identifier: an empty one is refused (0x02)."""
    assert v311_connack_return_code(c8y, "", "t1/dev1", PASSWORD) == 0x02


@VERSIONS
def test_second_client_with_same_identifier_disconnects_the_previous(c8y, clients, version):
    """ "connecting a second client with the same identifier will result in the previous
    client's disconnection.\""""
    first = connected(clients, c8y, "samecid", version)
    connected(clients, c8y, "samecid", version, user="t1/dev2")
    first.expect_disconnect()


# -- Features: Quality of Service ------------------------------------------------------------


@VERSIONS
def test_qos_0_and_qos_1_supported(c8y, clients, version):
    """QoS 0 (fire and forget) and QoS 1 (acknowledged) are supported."""
    sub = connected(clients, c8y, "qsub", version)
    assert sub.subscribe("qos/topic", 1) == [1]
    pub = connected(clients, c8y, "qpub", version, user="t1/dev2")
    pub.publish("qos/topic", b"zero", 0)
    assert pub.publish("qos/topic", b"one", 1) == 0
    got = sub.expect_messages(2)
    assert [(m.payload, m.qos) for m in got] == [(b"zero", 0), (b"one", 1)]


@VERSIONS
def test_qos_2_not_supported(c8y, clients, version):
    """ "QoS 2: Exactly once - not supported": a QoS 2 PUBLISH closes the connection (v5:
    DISCONNECT 0x9B QoS not supported); a v5 CONNACK says Maximum QoS 1."""
    c = connected(clients, c8y, "q2pub", version)
    if version == V5:
        assert c.connack is not None and c.connack.properties.MaximumQoS == 1
    c.paho.publish("qos/two", b"x", 2)
    gone = c.expect_disconnect()
    if version == V5:
        assert gone.reason_code == 0x9B


@VERSIONS
def test_subscriptions_deliver_in_the_qos_the_client_defined(c8y, clients, version):
    """ "MQTT Connect will deliver all messages in the QoS that the client defined when
    subscribing": QoS 0 and 1 as asked, a request for 2 is granted 1."""
    sub0 = connected(clients, c8y, "sub0", version)
    sub2 = connected(clients, c8y, "sub2", version, user="t1/dev2")
    assert sub0.subscribe("deliver/qos", 0) == [0]
    assert sub2.subscribe("deliver/qos", 2) == [1]
    pub = connected(clients, c8y, "dpub", version)
    pub.publish("deliver/qos", b"m", 1)
    assert sub0.expect_message().qos == 0
    assert sub2.expect_message().qos == 1


# -- Features: Clean session -------------------------------------------------------------------


@VERSIONS
def test_clean_session_required(c8y, clients, version):
    """ "MQTT Connect requires clean session to be set to 1." Roost accepts 0 and treats it
    as 1: no session is kept, Session Present is 0, nothing queued while away arrives; a
    v5 client is told Session Expiry Interval 0."""
    kwargs = {"clean_session": False} if version == V311 else {}
    sub = device(clients, c8y, "durable", version, **kwargs)
    props = connect_props(SessionExpiryInterval=3600) if version == V5 else None
    connack = sub.connect(clean_start=False, properties=props)
    assert connack.session_present is False
    if version == V5:
        assert connack.properties.SessionExpiryInterval == 0
    sub.subscribe("clean/topic", 1)
    sub.disconnect()
    pub = connected(clients, c8y, "cleanpub", version, user="t1/dev2")
    pub.publish("clean/topic", b"while away", 1)
    again = device(clients, c8y, "durable", version, **kwargs)
    assert again.connect(clean_start=False, properties=props).session_present is False
    again.expect_no_message()


# -- Features: Retained flag ---------------------------------------------------------------------


@VERSIONS
def test_retained_flag_is_ignored(c8y, clients, version):
    """ "Publishing data with the retained flag on the topic is allowed but has no practical
    difference to sending it without the flag": delivered live without RETAIN, not kept."""
    live = connected(clients, c8y, "retlive", version)
    live.subscribe("ret/topic", 1)
    pub = connected(clients, c8y, "retpub", version, user="t1/dev2")
    assert pub.publish("ret/topic", b"kept?", 1, retain=True) == 0
    message = live.expect_message()
    assert message.payload == b"kept?" and not message.retain
    late = connected(clients, c8y, "retlate", version)
    late.subscribe("ret/topic", 1)
    late.expect_no_message()


# -- Features: Last will ---------------------------------------------------------------------------


@VERSIONS
def test_last_will_supported(c8y, clients, version):
    """ "Last will is fully supported": published when the client loses the connection."""
    watcher = connected(clients, c8y, "willsub", version)
    watcher.subscribe("will/topic", 1)
    dying = device(clients, c8y, "willpub", version, user="t1/dev2")
    dying.will_set("will/topic", b"gone", 1)
    dying.connect()
    dying.drop()
    assert watcher.expect_message().payload == b"gone"


@VERSIONS
def test_last_will_on_unreserved_topic_only(c8y, clients, version):
    """ "like with any other publish messages you can use any unreserved topic": a will on a
    reserved topic refuses the CONNECT (3.1.1: 0x05; v5: 0x90 Topic Name invalid)."""
    dying = device(clients, c8y, "willbad", version)
    dying.will_set("error", b"x", 0)
    code = dying.connect(expect_success=False).reason_code
    assert code == (0x90 if version == V5 else 0x87)


# -- Topic restrictions ------------------------------------------------------------------------------


@VERSIONS
def test_wildcard_topics_not_supported(c8y, clients, version):
    """ "Wildcard topics are not supported": SUBACK 0x80 (v5: 0xA2); v5 CONNACK says so."""
    c = connected(clients, c8y, "wild", version)
    expected = 0xA2 if version == V5 else 0x80
    assert c.subscribe("a/+", 0) == [expected]
    assert c.subscribe("a/#", 0) == [expected]
    if version == V5:
        assert c.connack is not None
        assert c.connack.properties.WildcardSubscriptionAvailable == 0


@VERSIONS
def test_only_alphanumeric_characters_and_slash_in_topic_name(c8y, clients, version):
    """ "Only alphanumeric characters and slash (/) can be used in topic name": other topics
    are not delivered (v5 PUBACK 0x90) and cannot be subscribed to."""
    sub = connected(clients, c8y, "charsub", version)
    assert sub.subscribe("ok/Topic9", 1) == [1]
    assert sub.subscribe("bad-topic", 1) == [0x8F if version == V5 else 0x80]
    pub = connected(clients, c8y, "charpub", version, user="t1/dev2")
    code = pub.publish("bad-topic", b"x", 1)
    assert code == (0x90 if version == V5 else 0)
    pub.publish("ok/Topic9", b"fine", 1)
    assert sub.expect_message().payload == b"fine"
    sub.expect_no_message()


@VERSIONS
@pytest.mark.parametrize(
    "topic", ["s/us", "s/uc/myTemplate", "t/us", "error", "devicecontrol/notifications"]
)
def test_reserved_topics_refused(c8y, clients, version, topic):
    """ "a few topic names which are reserved": all SmartREST 2.0 topics, `error`,
    `devicecontrol/notifications` — neither published to (v5 PUBACK 0x87) nor subscribed."""
    sub = connected(clients, c8y, "ressub", version)
    assert sub.subscribe(topic, 1) == [0x87 if version == V5 else 0x80]
    pub = connected(clients, c8y, "respub", version, user="t1/dev2")
    assert pub.publish(topic, b"x", 1) == (0x87 if version == V5 else 0)


# -- Payload restrictions ------------------------------------------------------------------------------


@VERSIONS
def test_maximum_accepted_payload_size_1_mib_including_header(c8y, clients, version):
    """ "the maximum accepted payload size is 1048576 bytes (1 MiB), which includes both
    message header and body": a larger packet closes the connection (v5: 0x95)."""
    sub = connected(clients, c8y, "bigsub", version)
    sub.subscribe("big/topic", 0)
    pub = connected(clients, c8y, "bigpub", version, user="t1/dev2")
    if version == V5:
        assert pub.connack is not None
        assert pub.connack.properties.MaximumPacketSize == 1_048_576
    fits = b"x" * (1_048_576 - 64)
    assert pub.publish("big/topic", fits, 1) == 0
    assert len(sub.expect_message(timeout=10).payload) == len(fits)
    pub.paho.publish("big/topic", b"x" * 1_048_576, 0)
    gone = pub.expect_disconnect(timeout=10)
    if version == V5:
        assert gone.reason_code == 0x95


# -- Versions ---------------------------------------------------------------------------------------------


def test_mqtt_3_1_1_supported_3_1_refused(c8y, clients):
    """ "The MQTT Connect implementation supports MQTT Version 3.1.1" (Roost: and 5.0);
    MQTT 3.1 is refused with 0x01."""
    from tests.integration.helpers import V31

    old = device(clients, c8y, "old31", V31)
    assert old.connect(expect_success=False).reason_code == 0x84
