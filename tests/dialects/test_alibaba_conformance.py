"""Conformance of the `alibaba` dialect, statement by statement through the seed document
alibaba-iot-mqtt.md and Alibaba's public connection and RRPC guides, with paho-mqtt 3.1,
3.1.1 and 5.0 devices signed as Alibaba's firmware signs them, over real sockets."""

from __future__ import annotations

import asyncio

import pytest
from paho.mqtt.packettypes import PacketTypes

from roost.errors import DeviceOffline, RrpcTimeout, TooManyCalls
from tests.dialects.alibaba_support import (
    EXAMPLE_CLIENT_ID,
    EXAMPLE_DN,
    EXAMPLE_PASSWORD,
    EXAMPLE_PK,
    PK1,
    PK2,
    Ali,
    Clients,
    ali,
    answer,
    backend,
    device,
    sign,
)
from tests.integration.helpers import V5, V31, V311, connect_props, props

__all__ = ["ali"]

VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])


def refused_sub(version: int) -> int:
    """A refused subscription: 0x87 in v5, 0x80 in 3.1.1."""
    return 0x87 if version == V5 else 0x80


def accepted(code: int) -> bool:
    """A PUBACK that accepted: 0x00, or v5 0x10 No matching subscribers."""
    return code in (0x00, 0x10)


# -- Supported versions ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [V31, V311, V5], ids=["v31", "v311", "v5"])
def test_compatible_with_versions_5_0_3_1_1_and_3_1(ali: Ali, clients: Clients, version):
    """ "IoT Platform supports standard MQTT connections, compatible with versions 5.0,
    3.1.1, and 3.1." A signed device connects with each and exchanges messages."""
    c = device(clients, ali, version)
    assert c.subscribe(f"/{PK1}/dev1/user/get", 1) == [1]
    c.publish(f"/{PK1}/dev1/user/get", b"hello", 1)
    assert c.expect_message().payload == b"hello"


# -- Signed login (public guide: "MQTT-based connection ... signature") -----------------------


def test_device_written_for_alibaba_connects_and_exchanges_messages(ali: Ali, clients: Clients):
    """The public guide's worked example, verbatim: client id
    `SN1928339|securemode=3,signmethod=hmacsha1,timestamp=1539421321846|`, username
    `light1983432&a14Xib5kdYd` and its password connect; the device publishes on its
    `/${productKey}/${deviceName}/user/...` topic and receives on its own."""
    c = clients(
        ali.handle,
        EXAMPLE_CLIENT_ID,
        username=f"{EXAMPLE_DN}&{EXAMPLE_PK}",
        password=EXAMPLE_PASSWORD,
        version=V311,
    )
    c.connect()
    own = f"/{EXAMPLE_PK}/{EXAMPLE_DN}/user/get"
    assert c.subscribe(own, 1) == [1]
    c.publish(f"/{EXAMPLE_PK}/{EXAMPLE_DN}/user/update", b'{"on":1}', 1)
    c.publish(own, b'{"cmd":"off"}', 1)
    assert c.expect_message().payload == b'{"cmd":"off"}'
    # A backend of product PK1 and a PK1 device talk through their tenant.
    dev = device(clients, ali, V5)
    app = backend(clients, ali)
    assert app.subscribe(f"/{PK1}/dev1/user/update", 1) == [1]
    assert dev.subscribe(f"/{PK1}/dev1/user/get", 1) == [1]
    assert dev.publish(f"/{PK1}/dev1/user/update", b"t=21", 1) == 0
    assert app.expect_message().payload == b"t=21"
    assert app.publish(f"/{PK1}/dev1/user/get", b"set", 1) == 0
    assert dev.expect_message().payload == b"set"


@pytest.mark.parametrize("method", ["hmacmd5", "hmacsha1", "hmacsha256"])
@pytest.mark.parametrize("timestamp", ["1539421321846", None], ids=["timestamp", "none"])
def test_signmethod_hmacmd5_hmacsha1_hmacsha256_timestamp_optional(
    ali: Ali, clients: Clients, method, timestamp
):
    """signmethod `hmacmd5`, `hmacsha1` or `hmacsha256`; the timestamp parameter may be left
    out of the client id, and then out of the signed content."""
    c = device(clients, ali, V5, method=method, timestamp=timestamp, extra=("_v=sdk-1.0",))
    assert c.connack is not None and c.connack.reason_code == 0


@VERSIONS
def test_invalid_signature_bad_user_name_or_password(ali: Ali, clients: Clients, version):
    """A password that is not the signature: CONNACK "bad user name or password" (3.1.1
    0x04, v5 0x86): another device's secret, a signature over another timestamp or client
    id, an unknown signmethod, a password that is not hex, none, a username without `&`."""
    secret = ali.secrets[(PK1, "dev1")]
    other = ali.secrets[(PK1, "dev2")]
    cases = [sign(PK1, "dev1", other)]
    mqtt_id, user, password = sign(PK1, "dev1", secret, timestamp="1")
    cases.append((mqtt_id.replace("timestamp=1", "timestamp=2"), user, password))
    cases.append((mqtt_id.replace("SN1|", "SN2|"), user, password))
    cases.append(sign(PK1, "dev1", secret, method="hmacsha512"))
    cases.append((mqtt_id, user, "zz" + password[2:]))
    cases.append((mqtt_id, user, ""))
    cases.append((mqtt_id, f"dev1{PK1}", password))
    for mqtt_id, user, password in cases:
        c = clients(ali.handle, mqtt_id, username=user, password=password, version=version)
        assert c.connect(expect_success=False).reason_code == 0x86, (mqtt_id, user, password)


@VERSIONS
def test_unknown_device_not_authorized(ali: Ali, clients: Clients, version):
    """An unknown product key or device name, a device without a device secret, a disabled
    device: CONNACK 0x05 (v5 0x87), whatever the password."""
    for pk, dn in ((PK1, "ghost"), ("a1Unknown00", "dev1"), (PK1, "nosecret"), (PK2, "dev2")):
        c = device(clients, ali, version, dn=dn, pk=pk, connect=False)
        assert c.connect(expect_success=False).reason_code == 0x87, (pk, dn)
    ali.registry.set_device_enabled(PK1, "dev2", False)
    c = device(clients, ali, version, dn="dev2", connect=False)
    assert c.connect(expect_success=False).reason_code == 0x87


@VERSIONS
def test_client_id_with_securemode_and_signmethod_between_bars(ali: Ali, clients: Clients, version):
    """mqttClientId: `clientId+"|securemode=3,signmethod=hmacsha1,timestamp=...|"`, the
    clientId at most 64 characters. Anything else: 0x02 (v5 0x85)."""
    _, user, password = sign(PK1, "dev1", ali.secrets[(PK1, "dev1")])
    for mqtt_id in (
        "SN1",
        "SN1|securemode=3,signmethod=hmacsha1",
        "SN1|signmethod=hmacsha1|",
        "SN1|securemode=3|",
        "|securemode=3,signmethod=hmacsha1|",
        "SN1|securemode=3,signmethod=hmacsha1,timestamp=12x|",
        "SN1|securemode=3,signmethod=hmacsha1,securemode=2|",
        "x" * 65 + "|securemode=3,signmethod=hmacsha1|",
    ):
        c = clients(ali.handle, mqtt_id, username=user, password=password, version=version)
        assert c.connect(expect_success=False).reason_code == 0x85, mqtt_id
    longest = device(clients, ali, version, client_id="x" * 64)
    assert longest.connack is not None


@VERSIONS
def test_keep_alive_30_to_1200_seconds(ali: Ali, clients: Clients, version):
    """Public guide: "Valid values of the keep-alive time: 30 to 1,200 seconds ... IoT
    Platform rejects the connection" otherwise (v5 0x83; 3.1.1 0x03, paho's 0x88)."""
    for keepalive in (0, 29, 1201):
        c = device(clients, ali, version, connect=False)
        code = c.connect(keepalive=keepalive, expect_success=False).reason_code
        assert code == (0x83 if version == V5 else 0x88), keepalive
    for keepalive in (30, 1200):
        c = device(clients, ali, version, connect=False)
        assert c.connect(keepalive=keepalive).reason_code == 0


@VERSIONS
def test_one_connection_per_device_certificate(ali: Ali, clients: Clients, version):
    """A device connecting with the device certificate of one already connected brings that
    one offline (v5 DISCONNECT 0x8E), whatever its clientId and timestamp; with clean
    session 0 the second resumes the first one's session."""
    first = device(clients, ali, version, client_id="A", timestamp="1")
    assert first.subscribe(f"/{PK1}/dev1/user/get", 1) == [1]
    second = device(clients, ali, version, client_id="B", timestamp="2", connect=False)
    second.connect()
    gone = first.expect_disconnect()
    if version == V5:
        assert gone.reason_code == 0x8E
    second.disconnect()
    durable = connect_props(SessionExpiryInterval=300) if version == V5 else None
    keep = device(clients, ali, version, client_id="C", timestamp="3", connect=False)
    if version == V311:
        keep.paho._clean_session = False
    keep.connect(clean_start=False, properties=durable)
    assert keep.subscribe(f"/{PK1}/dev1/user/get", 1) == [1]
    keep.disconnect()
    again = device(clients, ali, version, client_id="D", timestamp="4", connect=False)
    if version == V311:
        again.paho._clean_session = False
    assert again.connect(clean_start=False, properties=durable).session_present


# -- Differences from standard MQTT ------------------------------------------------------------


@VERSIONS
def test_qos_0_and_1_supported_qos_2_not_supported(ali: Ali, clients: Clients, version):
    """ "Supports Quality of Service (QoS) levels 0 and 1. Does not support QoS 2." A QoS 2
    PUBLISH gets the MQTT reaction to an unsupported QoS: v5 DISCONNECT 0x9B (the v5 CONNACK
    says Maximum QoS 1); 3.1.1 has none but closing the connection."""
    c = device(clients, ali, version)
    if version == V5:
        assert c.connack is not None and c.connack.properties.MaximumQoS == 1
    topic = f"/{PK1}/dev1/user/data"
    assert c.subscribe(topic, 1) == [1]
    c.publish(topic, b"q0", 0)
    c.publish(topic, b"q1", 1)
    received = c.expect_messages(2)
    assert [(m.payload, m.qos) for m in received] == [(b"q0", 0), (b"q1", 1)]
    c.paho.publish(topic, b"q2", 2)
    gone = c.expect_disconnect()
    if version == V5:
        assert gone.reason_code == 0x9B


@VERSIONS
def test_subscription_qos_not_supported_sender_determines_qos(ali: Ali, clients: Clients, version):
    """ "Does not support subscription QoS. The message QoS is determined by the sender
    (PUB)." Every subscription is granted QoS 1 (what SUBACK says, whatever was asked), so a
    QoS 1 message reaches a subscription asked at QoS 0 at QoS 1, a QoS 0 one at QoS 0."""
    c = device(clients, ali, version)
    topic = f"/{PK1}/dev1/user/data"
    assert c.subscribe(topic, 0) == [1]
    c.publish(topic, b"one", 1)
    c.publish(topic, b"zero", 0)
    received = c.expect_messages(2)
    assert [(m.payload, m.qos) for m in received] == [(b"one", 1), (b"zero", 0)]


def test_no_will_messages_or_retained_messages_in_3_x(ali: Ali, clients: Clients):
    """ "Does not support will messages or retained messages." (3.x): a will refuses the
    CONNECT (0x05); a retained PUBLISH is dropped (3.1.1 has no negative PUBACK): neither
    delivered nor kept."""
    dying = device(clients, ali, V311, connect=False)
    dying.will_set(f"/{PK1}/dev1/user/will", b"gone", 1)
    assert dying.connect(expect_success=False).reason_code == 0x87
    app = backend(clients, ali)
    topic = f"/{PK1}/dev1/user/state"
    assert app.subscribe(topic, 1) == [1]
    c = device(clients, ali, V311)
    assert c.publish(topic, b"kept?", 1, retain=True) == 0
    c.publish(topic, b"plain", 1)
    assert app.expect_message().payload == b"plain"
    late = backend(clients, ali, "late")
    assert late.subscribe(topic, 1) == [1]
    late.expect_no_message()


def test_retained_message_and_will_with_delay_in_5_0(ali: Ali, clients: Clients):
    """MQTT 5.0: "Retained message" (kept, sent to later subscribers) and "Will message"
    with "setWillDelayInterval": published once the delay has passed after the device lost
    its connection. A will on another device's topic: CONNACK 0x90."""
    topic = f"/{PK1}/dev1/user/state"
    c = device(clients, ali, V5)
    assert c.publish(topic, b"on", 1, retain=True) in (0x00, 0x10)
    app = backend(clients, ali)
    assert app.subscribe(topic, 1) == [1]
    kept = app.expect_message()
    assert kept.payload == b"on" and kept.retain
    c.disconnect()

    will_topic = f"/{PK1}/dev1/user/will"
    assert app.subscribe(will_topic, 1) == [1]
    dying = device(clients, ali, V5, connect=False)
    dying.will_set(
        will_topic, b"gone", 1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)
    )
    # The will waits for its delay only while the session lives on: expiry > delay.
    dying.connect(properties=connect_props(SessionExpiryInterval=60))
    dying.drop()
    app.expect_no_message()
    assert app.expect_message(timeout=5).payload == b"gone"

    bad = device(clients, ali, V5, connect=False)
    bad.will_set(f"/{PK1}/dev2/user/will", b"x", 1)
    assert bad.connect(expect_success=False).reason_code == 0x90


def test_user_property_maximum_20_keys_no_underscore_key_value_128(ali: Ali, clients: Clients):
    """ "Maximum 20 properties. Keys cannot start with underscore (_). Combined key-value
    length cannot exceed 128 characters." The seed names no reason code: PUBACK 0x97 Quota
    exceeded for more than 20, 0x83 Implementation specific error for the others; the
    message is dropped. A will carrying them refuses the CONNECT with the same codes."""
    c = device(clients, ali, V5)
    topic = f"/{PK1}/dev1/user/data"
    assert c.subscribe(topic, 1) == [1]
    twenty = [(f"k{i}", "v") for i in range(20)]
    longest = [("k" * 64, "v" * 64)]
    for ok in (twenty, longest):
        assert c.publish(topic, b"ok", 1, properties=props(UserProperty=ok)) == 0
        assert c.expect_message().properties.UserProperty == ok
    for bad, code in (
        ([(f"k{i}", "v") for i in range(21)], 0x97),
        ([("_k", "v")], 0x83),
        ([("k" * 64, "v" * 65)], 0x83),
    ):
        assert c.publish(topic, b"no", 1, properties=props(UserProperty=bad)) == code
    c.expect_no_message()
    dying = device(clients, ali, V5, connect=False)
    will_props = props(PacketTypes.WILLMESSAGE, UserProperty=[("_k", "v")])
    dying.will_set(topic, b"x", 1, properties=will_props)
    assert dying.connect(expect_success=False).reason_code == 0x83


def test_response_topic_and_correlation_data_maximum_128_characters(ali: Ali, clients: Clients):
    """ "ResponseTopic and CorrelationData each have a maximum length of 128 characters."
    Longer: PUBACK 0x83, dropped; at 128 both are delivered."""
    c = device(clients, ali, V5)
    topic = f"/{PK1}/dev1/user/get"
    assert c.subscribe(topic, 1) == [1]
    reply = "/" + "r" * 127
    ok = props(ResponseTopic=reply, CorrelationData=b"c" * 128)
    assert c.publish(topic, b"req", 1, properties=ok) == 0
    message = c.expect_message()
    assert message.properties.ResponseTopic == reply
    assert message.properties.CorrelationData == b"c" * 128
    assert c.publish(topic, b"x", 1, properties=props(ResponseTopic="/" + "r" * 128)) == 0x83
    assert c.publish(topic, b"x", 1, properties=props(CorrelationData=b"c" * 129)) == 0x83
    c.expect_no_message()


@VERSIONS
def test_shared_subscription_share_name_letters_digits_underscores(
    ali: Ali, clients: Clients, version
):
    """ "$share/${ShareName}/${filter}", "${ShareName}: A string that contains only letters,
    digits, and underscores (_)." Another share name: SUBACK 0x8F (3.1.1 0x80); the filter
    follows the topic rules of any subscription."""
    c = device(clients, ali, version)
    own = f"/{PK1}/dev1/user/post"
    assert c.subscribe(f"$share/test_Group1/{own}", 1) == [1]
    for name in ("test-group", "grp.1", "grüppe"):
        code = c.subscribe(f"$share/{name}/{own}", 1)
        assert code == [0x8F if version == V5 else 0x80], name
    assert c.subscribe(f"$share/g/{PK1}/dev2/user/post", 1) == [refused_sub(version)]
    app = backend(clients, ali)
    app.publish(own, b"shared", 1)
    assert c.expect_message().payload == b"shared"


# -- Topic specifications ------------------------------------------------------------------------


@VERSIONS
def test_topics_of_the_device_own_product_key_and_device_name(ali: Ali, clients: Clients, version):
    """Topics `/${productKey}/${deviceName}/user/...` and `/sys/${productKey}/${deviceName}/...`
    are the device's own: another device's (or another product's) are refused, for PUBLISH
    (v5 PUBACK 0x87; 3.1.1 dropped) and SUBSCRIBE (0x80 / v5 0x87), as is any other topic."""
    c = device(clients, ali, version)
    for own in (f"/{PK1}/dev1/user/#", f"/sys/{PK1}/dev1/thing/service/+", f"/{PK1}/dev1/+/get"):
        assert c.subscribe(own, 0) == [1], own
    for foreign in (
        f"/{PK1}/dev2/user/get",
        f"/{PK1}/+/user/get",
        f"/{PK2}/dev1/user/get",
        f"/sys/{PK1}/dev2/thing/service/+",
        f"/sys/{PK1}/#",
        "#",
        "user/post",
        f"/ext/rrpc/+/{PK1}/dev1/user/get",
    ):
        assert c.subscribe(foreign, 0) == [refused_sub(version)], foreign
    other = device(clients, ali, version, dn="dev2")
    assert other.subscribe(f"/{PK1}/dev2/user/get", 1) == [1]
    code = c.publish(f"/{PK1}/dev2/user/get", b"not yours", 1)
    assert code == (0x87 if version == V5 else 0)
    assert accepted(c.publish(f"/sys/{PK1}/dev1/thing/event/property/post", b"{}", 1))
    assert c.publish(f"/{PK1}/dev1/user/get", b"mine", 1) == 0
    assert c.expect_message().payload == b"mine"
    other.expect_no_message()


def test_tenant_is_the_product_key(ali: Ali, clients: Clients):
    """Roost's choice: the tenant is the product key, so the same device name in two
    products are two devices that never share a topic, session or connection."""
    one = device(clients, ali, V5, pk=PK1)
    two = device(clients, ali, V5, pk=PK2)
    assert one.subscribe(f"/{PK1}/dev1/user/get", 1) == [1]
    assert two.subscribe(f"/{PK2}/dev1/user/get", 1) == [1]
    assert two.publish(f"/{PK2}/dev1/user/get", b"pk2", 1) == 0
    assert two.expect_message().payload == b"pk2"
    one.expect_no_message()
    assert ali.handle.call(
        lambda: {(PK1, "dev1"), (PK2, "dev1")} <= set(ali.handle.server.ctx.connections)
    )


# -- RRPC ------------------------------------------------------------------------------------------


@VERSIONS
def test_rrpc_request_and_response_on_system_topics(ali: Ali, clients: Clients, version):
    """ "Supports revert-RPC (RRPC) based on native MQTT topics, enabling synchronous
    server-to-device calls": the server publishes on
    `/sys/${productKey}/${deviceName}/rrpc/request/${messageId}`, the device answers on
    `/sys/${productKey}/${deviceName}/rrpc/response/${messageId}`, the call returns it."""
    c = device(clients, ali, version)
    prefix = f"/sys/{PK1}/dev1/rrpc/"
    answer(c, lambda topic, payload: (topic.replace("/request/", "/response/"), b"re:" + payload))
    assert c.subscribe(prefix + "request/+", 0) == [1]
    rrpc = ali.rrpc()
    assert ali.run(rrpc.call(PK1, "dev1", b"ping", 5.0)) == b"re:ping"
    assert ali.run(rrpc.call(PK1, "dev1", b"again", 5.0)) == b"re:again"
    request = c.expect_message()
    assert request.topic.startswith(prefix + "request/") and request.payload == b"ping"
    assert request.topic.rsplit("/", 1)[1].isdigit()
    assert rrpc.outstanding == 0


def test_rrpc_timeout_offline_and_limit_on_outstanding_calls(ali: Ali, clients: Clients):
    """A device that does not answer: RrpcTimeout; a device not connected: DeviceOffline;
    `max_outstanding` calls waiting: TooManyCalls, nothing sent. A response published by
    another client of the tenant (here a backend) is not the device's: ignored."""
    rrpc = ali.rrpc(max_outstanding=1)
    with pytest.raises(DeviceOffline):
        ali.run(rrpc.call(PK1, "dev1", b"x", 1.0))
    c = device(clients, ali, V5)
    assert c.subscribe(f"/sys/{PK1}/dev1/rrpc/request/+", 0) == [1]
    forger = backend(clients, ali)
    answer(forger, lambda topic, payload: (topic.replace("/request/", "/response/"), b"forged"))
    assert forger.subscribe(f"/sys/{PK1}/dev1/rrpc/request/+", 0) == [0]

    async def two_calls() -> list[object]:
        first = asyncio.ensure_future(rrpc.call(PK1, "dev1", b"slow", 0.5))
        await asyncio.sleep(0)
        try:
            await rrpc.call(PK1, "dev1", b"second", 0.5)
        except TooManyCalls as exc:
            second: object = exc
        try:
            await first
        except RrpcTimeout as exc:
            return [exc, second]
        return ["answered", second]

    first, second = ali.run(two_calls())
    assert isinstance(first, RrpcTimeout) and isinstance(second, TooManyCalls)
    assert c.expect_message().payload == b"slow"
    assert forger.expect_message().payload == b"slow"
    c.expect_no_message()
    with pytest.raises(ValueError):
        ali.run(rrpc.call(PK1, "dev1", b"x", 9.0))


@VERSIONS
def test_rrpc_custom_topic_ext_rrpc(ali: Ali, clients: Clients, version):
    """Public RRPC guide, custom topics: with `ext=1` in the client id the device subscribes
    to `/ext/rrpc/+/${topic}`; the request arrives on `/ext/rrpc/${messageId}/${topic}` and
    the device answers on the same topic. The answer reaches the caller, not the device's
    own subscription. Without `ext=1` those topics are refused."""
    c = device(clients, ali, version, extra=("ext=1",))
    custom = f"/{PK1}/dev1/user/get"
    answer(c, lambda topic, payload: (topic, b"ok:" + payload))
    assert c.subscribe(f"/ext/rrpc/+{custom}", 0) == [1]
    assert c.subscribe(f"/ext/rrpc/+/{PK1}/dev2/user/get", 0) == [refused_sub(version)]
    rrpc = ali.rrpc()
    assert ali.run(rrpc.call(PK1, "dev1", b"on", 5.0, topic=custom)) == b"ok:on"
    request = c.expect_message()
    assert request.topic.startswith("/ext/rrpc/") and request.topic.endswith(custom)
    c.expect_no_message()
