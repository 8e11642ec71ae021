"""Conformance of the `watson` dialect, statement by statement through the seed document
ibm-watson-iot-mqtt.md, with paho-mqtt 3.1.1 and 5.0 devices and applications over real
sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import BrokerHandle
from tests.dialects.support import at, dialect_listener, platform, registry_of
from tests.integration.helpers import V5, V311, Client, connect_props, props, wait_until

Clients = Callable[..., Client]
VERSIONS = pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
EVENTS = "iot-2/type/+/id/+/evt/+/fmt/+"


class Watson:
    def __init__(self, handle: BrokerHandle, tokens: dict[str, str], api_key: str) -> None:
        self.handle = handle
        self.tokens = tokens
        self.api_key = api_key


@pytest.fixture
def watson() -> Iterator[Watson]:
    """A broker whose listener "watson" speaks Watson IoT; org1 with devices sensor:dev1,
    sensor:dev2, the gateway gw:gw1 (one token each) and application app1 (one API key);
    org2 with sensor:dev1."""
    handle = platform(dialect_listener("watson", "watson"))
    registry = registry_of(handle)
    tokens: dict[str, str] = {}
    for org in ("org1", "org2"):
        registry.add_tenant(org)
        for device in ("dev1", "dev2") if org == "org1" else ("dev1",):
            registry.add_device(org, f"sensor:{device}", type="sensor")
            tokens[f"{org}:{device}"] = registry.add_token(org, f"sensor:{device}")[1]
    registry.add_device("org1", "gw:gw1", type="gw")
    tokens["org1:gw1"] = registry.add_token("org1", "gw:gw1")[1]
    registry.add_application("org1", "app1")
    api_key = registry.add_api_key("org1", "app1")[1]
    yield Watson(at(handle, "watson"), tokens, api_key)
    handle.stop()


def device(
    clients: Clients,
    w: Watson,
    version: int,
    device_id: str = "dev1",
    org: str = "org1",
    connect: bool = True,
    **kwargs: object,
) -> Client:
    token = w.tokens.get(f"{org}:{device_id}", "none")
    c = clients(
        w.handle,
        f"d:{org}:sensor:{device_id}",
        username="use-token-auth",
        password=token,
        version=version,
        **kwargs,
    )
    if connect:
        c.connect()
    return c


def application(clients: Clients, w: Watson, version: int, app: str = "app1") -> Client:
    c = clients(
        w.handle, f"a:org1:{app}", username="a-org1-key", password=w.api_key, version=version
    )
    c.connect()
    return c


def quickstart(clients: Clients, w: Watson, client_id: str, version: int, **kw: object) -> Client:
    return clients(w.handle, client_id, version=version, **kw)


def wait_gone(handle: BrokerHandle, tenant: str, client_id: str) -> None:
    def gone() -> bool:
        return (tenant, client_id) not in handle.server.ctx.connections

    wait_until(lambda: bool(handle.call(gone)), what=f"{client_id} gone")


def refused_code(version: int) -> int:
    """A refused subscription: 0x87 in v5, 0x80 in 3.1.1."""
    return 0x87 if version == V5 else 0x80


# -- MQTT client identifier ----------------------------------------------------------------


@VERSIONS
def test_client_id_d_org_id_device_type_device_id(watson, clients, version):
    """ "define each MQTT client ID in the following format: d:org_id:device_type:device_id";
    type and id "The maximum length is 36 characters" of a-z, A-Z, 0-9, -, _ and ."""
    assert device(clients, watson, version).connack is not None
    longest = "A-z_0.9" + "x" * 29
    c = quickstart(clients, watson, f"d:quickstart:{longest}:{longest}", version)
    assert c.connect().reason_code == 0
    for client_id in (
        "dev1",
        "d:org1:sensor",
        "d:org1:sensor:dev1:extra",
        "d:org1:sen sor:dev1",
        "d:org1:sensor:dev/1",
        f"d:org1:{'x' * 37}:dev1",
        "D:org1:sensor:dev1",
        "g:org1:gw",
        "g:quickstart:gw:gw1",
    ):
        bad = clients(
            watson.handle, client_id, username="use-token-auth", password="x", version=version
        )
        assert bad.connect(expect_success=False).reason_code == 0x85, client_id


# -- MQTT authentication -------------------------------------------------------------------


@VERSIONS
def test_username_use_token_auth_password_device_token(watson, clients, version):
    """ "A value of use-token-auth indicates ... the authentication token for the device will
    be passed as the password". Another username, another device's token, a wrong token or
    an unknown org: 0x87 (3.1.1 0x05). The tenant is the org."""
    ok = device(clients, watson, version)
    assert watson.handle.call(
        lambda: ("org1", "d:org1:sensor:dev1") in watson.handle.server.ctx.connections
    )
    assert ok.connack is not None
    token = watson.tokens["org1:dev1"]
    for client_id, user, password in (
        ("d:org1:sensor:dev1", "dev1", token),
        ("d:org1:sensor:dev1", "use-token-auth", "wrong"),
        ("d:org1:sensor:dev2", "use-token-auth", token),
        ("d:org9:sensor:dev1", "use-token-auth", token),
        ("d:org1:other:dev1", "use-token-auth", token),
    ):
        bad = clients(watson.handle, client_id, username=user, password=password, version=version)
        assert bad.connect(expect_success=False).reason_code == 0x87, (client_id, user)
    missing = clients(watson.handle, "d:org1:sensor:dev2", version=version)
    assert missing.connect(expect_success=False).reason_code == 0x87


# -- Publishing events ---------------------------------------------------------------------


@VERSIONS
def test_devices_publish_only_to_event_topics(watson, clients, version):
    """ "Devices can only publish to the event topics in the following format:
    iot-2/evt/event_id/fmt/format_string". Applications see them as
    iot-2/type/<type>/id/<id>/evt/<event>/fmt/<format>."""
    app = application(clients, watson, V5)
    assert app.subscribe(EVENTS, qos=1) == [1]
    dev = device(clients, watson, version)
    assert dev.publish("iot-2/evt/status/fmt/json", b'{"t": 21}', qos=1) == 0
    message = app.expect_message()
    assert message.topic == "iot-2/type/sensor/id/dev1/evt/status/fmt/json"
    assert message.payload == b'{"t": 21}'
    for topic in (
        "status",
        "iot-2/evt/status",
        "iot-2/evt/status/fmt/json/more",
        "iot-2/cmd/reboot/fmt/json",
        "iot-2/type/sensor/id/dev2/evt/status/fmt/json",
    ):
        code = dev.publish(topic, b"x", qos=1)
        assert code == (0x87 if version == V5 else 0), topic
    app.expect_no_message()


# -- Subscribing to commands ---------------------------------------------------------------


@VERSIONS
def test_devices_subscribe_only_to_their_own_command_topics(watson, clients, version):
    """ "Devices can only subscribe to command topics in the following format:
    iot-2/cmd/command_id/fmt/format_string" (wildcards for command and format); "A device
    receives commands that are published specifically to only its own device"; "Devices
    cannot subscribe to events from other devices"."""
    dev1 = device(clients, watson, version)
    dev2 = device(clients, watson, version, "dev2")
    assert dev1.subscribe("iot-2/cmd/+/fmt/+", qos=1) == [1]
    assert dev2.subscribe("iot-2/cmd/reboot/fmt/json", qos=0) == [0]
    for topic_filter in (
        "#",
        "iot-2/evt/+/fmt/+",
        "iot-2/cmd/#",
        "iot-2/type/sensor/id/dev2/cmd/+/fmt/+",
        EVENTS,
    ):
        assert dev1.subscribe(topic_filter) == [refused_code(version)], topic_filter
    app = application(clients, watson, version)
    app.publish("iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", b"now", qos=1)
    message = dev1.expect_message()
    assert (message.topic, message.payload, message.qos) == ("iot-2/cmd/reboot/fmt/json", b"now", 1)
    dev2.expect_no_message()
    app.publish("iot-2/type/sensor/id/dev2/cmd/reboot/fmt/json", b"later", qos=1)
    assert dev2.expect_message().topic == "iot-2/cmd/reboot/fmt/json"
    dev1.expect_no_message()
    # The device unsubscribes with its own filter.
    assert dev1.unsubscribe("iot-2/cmd/+/fmt/+") == ([0] if version == V5 else [])
    app.publish("iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", b"gone", qos=1)
    dev1.expect_no_message()


# -- Payload limit -------------------------------------------------------------------------


@VERSIONS
def test_message_payload_limited_to_131072_bytes(watson, clients, version):
    """ "The message payload is limited to a maximum of 131072 bytes. Messages larger than
    this will be rejected." (v5 PUBACK 0x83; dropped in either version)."""
    app = application(clients, watson, V5)
    app.subscribe(EVENTS, qos=1)
    dev = device(clients, watson, version)
    assert dev.publish("iot-2/evt/blob/fmt/bin", b"x" * 131_072, qos=1) == 0
    assert len(app.expect_message().payload) == 131_072
    code = dev.publish("iot-2/evt/blob/fmt/bin", b"x" * 131_073, qos=1)
    assert code == (0x83 if version == V5 else 0)
    app.expect_no_message()


# -- Managed devices -----------------------------------------------------------------------


@VERSIONS
def test_managed_devices_iotdm_requests_and_iotdevice_responses(watson, clients, version):
    """ "A managed device is required to subscribe to ... iotdm-1/#"; "The managed device will
    publish device management responses on iotdevice-1/response"; QoS 0 or 1; "Messages from
    the device must not be retained messages". An application sends the requests on
    iotdm-1/type/<t>/id/<i>/... and reads the responses on iotdevice-1/type/<t>/id/<i>/..."""
    dev = device(clients, watson, version)
    assert dev.subscribe("iotdm-1/#", qos=1) == [1]
    app = application(clients, watson, version)
    assert app.subscribe("iotdevice-1/type/+/id/+/#", qos=1) == [1]
    app.publish("iotdm-1/type/sensor/id/dev1/mgmt/initiate/device/reboot", b'{"reqId":"r1"}', 1)
    request = dev.expect_message()
    assert request.topic == "iotdm-1/mgmt/initiate/device/reboot"
    assert dev.publish("iotdevice-1/response", b'{"rc":202,"reqId":"r1"}', qos=1) == 0
    response = app.expect_message()
    assert response.topic == "iotdevice-1/type/sensor/id/dev1/response"
    assert response.payload == b'{"rc":202,"reqId":"r1"}'
    assert dev.publish("iotdevice-1/response", b"{}", qos=1, retain=True) == (
        0x87 if version == V5 else 0
    )
    app.expect_no_message()
    # Another device's requests are not its to read.
    dev2 = device(clients, watson, version, "dev2")
    dev2.subscribe("iotdm-1/#", qos=1)
    app.publish("iotdm-1/type/sensor/id/dev1/mgmt/initiate/device/reboot", b"{}", 1)
    assert dev.expect_message().topic == "iotdm-1/mgmt/initiate/device/reboot"
    dev2.expect_no_message()


# -- Applications --------------------------------------------------------------------------


@VERSIONS
def test_applications_a_org_app_see_events_and_send_commands(watson, clients, version):
    """Applications `a:org:app` authenticate with an API key of the org, subscribe to devices'
    events and publish commands (iot-2/type/<type>/id/<id>/evt|cmd/...); orgs do not see
    each other."""
    bad = clients(watson.handle, "a:org1:app2", username="k", password="rk.1.nope", version=version)
    assert bad.connect(expect_success=False).reason_code == 0x87
    app = application(clients, watson, version)
    assert app.subscribe("iot-2/type/sensor/id/dev1/evt/+/fmt/json", qos=1) == [1]
    assert app.subscribe("iot-2/cmd/+/fmt/+") == [refused_code(version)]
    assert app.subscribe("#") == [refused_code(version)]
    other_org = device(clients, watson, version, org="org2")
    other_org.publish("iot-2/evt/status/fmt/json", b"org2", qos=1)
    app.expect_no_message()
    dev = device(clients, watson, version)
    dev.subscribe("iot-2/cmd/+/fmt/+", qos=1)
    dev.publish("iot-2/evt/status/fmt/json", b"up", qos=1)
    assert app.expect_message().topic == "iot-2/type/sensor/id/dev1/evt/status/fmt/json"
    app.publish("iot-2/type/sensor/id/dev1/cmd/setInterval/fmt/json", b"5", qos=1)
    assert dev.expect_message().topic == "iot-2/cmd/setInterval/fmt/json"
    assert app.publish("iot-2/evt/status/fmt/json", b"x", qos=1) == (0x87 if version == V5 else 0)


@VERSIONS
def test_device_will_is_one_of_its_events(watson, clients, version):
    """A device's last will is an event topic of its own; applications see it in their form."""
    app = application(clients, watson, V5)
    app.subscribe(EVENTS, qos=1)
    dev = device(clients, watson, version, connect=False)
    dev.will_set("iot-2/evt/lost/fmt/text", b"gone", qos=1)
    dev.connect()
    dev.drop()
    message = app.expect_message()
    assert message.topic == "iot-2/type/sensor/id/dev1/evt/lost/fmt/text"
    other = device(clients, watson, version, "dev2", connect=False)
    other.will_set("iot-2/cmd/x/fmt/text", b"gone")
    assert other.connect(expect_success=False).reason_code in (0x87, 0x90)


def test_response_topics_are_mapped_like_topics(watson, clients):
    """MQTT 5 request / response across the mapping: a device's Response Topic is a topic
    name in its own form; the application sees it in the application form [MQTT-3.3.2-13]
    and its answer, with a Response Topic of its own, reaches the device in the device's
    form. The same for the Response Topic of a device's will."""
    app = application(clients, watson, V5)
    app.subscribe(EVENTS, qos=1)
    dev = device(clients, watson, V5, connect=False)
    dev.will_set(
        "iot-2/evt/lost/fmt/text", b"gone", 1, properties=props(ResponseTopic="iot-2/cmd/w/fmt/t")
    )
    dev.connect()
    dev.subscribe("iot-2/cmd/+/fmt/+", 1)
    request = props(ResponseTopic="iot-2/cmd/answer/fmt/json", CorrelationData=b"c1")
    dev.publish("iot-2/evt/ask/fmt/json", b"?", qos=1, properties=request)
    asked = app.expect_message()
    assert asked.topic == "iot-2/type/sensor/id/dev1/evt/ask/fmt/json"
    assert asked.properties.ResponseTopic == "iot-2/type/sensor/id/dev1/cmd/answer/fmt/json"
    reply = props(ResponseTopic="iot-2/type/sensor/id/dev1/evt/ack/fmt/json", CorrelationData=b"c1")
    app.publish(asked.properties.ResponseTopic, b"!", qos=1, properties=reply)
    answered = dev.expect_message()
    assert answered.topic == "iot-2/cmd/answer/fmt/json"
    assert answered.properties.ResponseTopic == "iot-2/evt/ack/fmt/json"
    assert answered.properties.CorrelationData == b"c1"
    dev.drop()
    will = app.expect_message()
    assert will.topic == "iot-2/type/sensor/id/dev1/evt/lost/fmt/text"
    assert will.properties.ResponseTopic == "iot-2/type/sensor/id/dev1/cmd/w/fmt/t"


# -- Quickstart ----------------------------------------------------------------------------


@VERSIONS
def test_quickstart_no_authentication_org_quickstart(watson, clients, version):
    """ "When you connect to the Quickstart service, authentication (or registration) is not
    required and the orgId must be set to quickstart"."""
    app = quickstart(clients, watson, "a:quickstart:viewer", V5)
    app.connect()
    assert app.subscribe("iot-2/type/+/id/qs1/evt/+/fmt/+") == [0]
    dev = quickstart(clients, watson, "d:quickstart:kit:qs1", version)
    assert dev.connect().reason_code == 0
    dev.publish("iot-2/evt/status/fmt/json", b"hi")
    assert app.expect_message().topic == "iot-2/type/kit/id/qs1/evt/status/fmt/json"


@VERSIONS
def test_quickstart_qos_greater_than_zero_not_supported(watson, clients, version):
    """ "The Quickstart service does not currently support MQTT quality of service (QoS)
    levels greater than zero": a QoS 1 event is dropped (v5 PUBACK 0x87)."""
    app = quickstart(clients, watson, "a:quickstart:viewer", V5)
    app.connect()
    app.subscribe(EVENTS)
    dev = quickstart(clients, watson, "d:quickstart:kit:qs2", version)
    dev.connect()
    assert dev.publish("iot-2/evt/status/fmt/json", b"q1", qos=1) == (0x87 if version == V5 else 0)
    app.expect_no_message()


@VERSIONS
def test_quickstart_no_commands_no_device_management(watson, clients, version):
    """Not supported in Quickstart: "Subscribing to commands", "Device Management Protocol";
    applications there do not send commands."""
    dev = quickstart(clients, watson, "d:quickstart:kit:qs3", version)
    dev.connect()
    assert dev.subscribe("iot-2/cmd/+/fmt/+") == [refused_code(version)]
    assert dev.subscribe("iotdm-1/#") == [refused_code(version)]
    assert dev.publish("iotdevice-1/response", b"{}", qos=0) == 0
    app = quickstart(clients, watson, "a:quickstart:viewer", version)
    app.connect()
    assert app.subscribe("iotdevice-1/type/+/id/+/#") == [refused_code(version)]
    assert app.subscribe("iot-2/type/+/id/+/cmd/+/fmt/+") == [refused_code(version)]
    assert app.subscribe(EVENTS) == [0]
    assert app.publish("iot-2/type/kit/id/qs3/cmd/x/fmt/json", b"c", qos=1) == (
        0x87 if version == V5 else 0
    )


@VERSIONS
def test_quickstart_no_durable_sessions(watson, clients, version):
    """ "Clean or durable sessions" are not supported: a request for a durable session gets
    a clean one (Session Present 0, nothing kept after the connection)."""
    client_id = "d:quickstart:kit:qs4"
    first = quickstart(clients, watson, client_id, version, clean_session=False)
    if version == V5:
        first.connect(clean_start=False, properties=connect_props(SessionExpiryInterval=3600))
    else:
        first.connect(clean_start=False)
    first.disconnect()
    wait_gone(watson.handle, "quickstart", client_id)
    sessions = watson.handle.server.broker.sessions
    assert watson.handle.call(lambda: sessions.get(("quickstart", client_id))) is None
    again = quickstart(clients, watson, client_id, version, clean_session=False)
    if version == V5:
        connack = again.connect(
            clean_start=False, properties=connect_props(SessionExpiryInterval=3600)
        )
    else:
        connack = again.connect(clean_start=False)
    assert connack.session_present is False


@VERSIONS
def test_quickstart_over_1_message_per_second_discarded(watson, clients, version):
    """ "messages sent from devices at a rate greater than 1 per second might be discarded":
    Roost discards them (silently: QoS 0 has no acknowledgement)."""
    app = quickstart(clients, watson, "a:quickstart:viewer", V5)
    app.connect()
    app.subscribe(EVENTS)
    dev = quickstart(clients, watson, "d:quickstart:kit:qs5", version)
    dev.connect()
    for n in range(5):
        dev.publish("iot-2/evt/tick/fmt/text", str(n).encode())
    assert app.expect_message().payload == b"0"
    app.expect_no_message()
    time.sleep(1.05)
    dev.publish("iot-2/evt/tick/fmt/text", b"later")
    assert app.expect_message().payload == b"later"


# -- Gateways ------------------------------------------------------------------------------
# Not in the seed, which covers devices: IBM's "MQTT connectivity for gateways" documents
# them, and these tests are named after its statements.

GW_NOTIFY = "iot-2/type/gw/id/gw1/notify"


def gateway(clients: Clients, w: Watson, version: int, token: str | None = None) -> Client:
    c = clients(
        w.handle,
        "g:org1:gw:gw1",
        username="use-token-auth",
        password=token or w.tokens["org1:gw1"],
        version=version,
    )
    c.connect()
    return c


@VERSIONS
def test_gateway_client_id_g_org_type_id_with_token_auth(watson, clients, version):
    """Gateways connect as `g:orgId:typeId:deviceId`; "The user name is the same value for
    all gateways: use-token-auth", the password the gateway's token. A wrong token or
    username: 0x87 (3.1.1 0x05); no gateways in Quickstart (0x85 / 0x02)."""
    assert gateway(clients, watson, version).connack is not None
    for user, password in (("use-token-auth", "wrong"), ("gw1", watson.tokens["org1:gw1"])):
        bad = clients(
            watson.handle, "g:org1:gw:gw1", username=user, password=password, version=version
        )
        assert bad.connect(expect_success=False).reason_code == 0x87
    # Another device's token is not the gateway's.
    other = clients(
        watson.handle,
        "g:org1:gw:gw1",
        username="use-token-auth",
        password=watson.tokens["org1:dev1"],
        version=version,
    )
    assert other.connect(expect_success=False).reason_code == 0x87


@VERSIONS
def test_gateway_publishes_events_from_itself_and_on_behalf_of_devices(watson, clients, version):
    """ "A gateway can publish events from itself and on behalf of any device that is
    connected through the gateway" on iot-2/type/typeId/id/deviceId/evt/eventId/fmt/format;
    not the device form, not commands."""
    app = application(clients, watson, V5)
    app.subscribe(EVENTS, qos=1)
    gw = gateway(clients, watson, version)
    assert gw.publish("iot-2/type/gw/id/gw1/evt/status/fmt/json", b"gw", qos=1) == 0
    assert gw.publish("iot-2/type/sensor/id/dev9/evt/status/fmt/json", b"dev9", qos=1) == 0
    got = [(m.topic, m.payload) for m in app.expect_messages(2)]
    assert got == [
        ("iot-2/type/gw/id/gw1/evt/status/fmt/json", b"gw"),
        ("iot-2/type/sensor/id/dev9/evt/status/fmt/json", b"dev9"),
    ]
    for topic in (
        "iot-2/evt/status/fmt/json",
        "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json",
        "iot-2/type/sensor/id/dev1/evt/status",
    ):
        assert gw.publish(topic, b"x", qos=1) == (0x87 if version == V5 else 0), topic
    app.expect_no_message()


@VERSIONS
def test_gateway_subscribes_to_commands_for_itself_and_devices(watson, clients, version):
    """ "A gateway can subscribe to commands that are directed at the gateway itself and to
    any device in the organization" on iot-2/type/typeId/id/deviceId/cmd/commandId/fmt/format,
    `+` allowed for typeId, deviceId, commandId and formatString; not to events."""
    gw = gateway(clients, watson, version)
    assert gw.subscribe("iot-2/type/gw/id/gw1/cmd/+/fmt/+", qos=1) == [1]
    assert gw.subscribe("iot-2/type/sensor/id/+/cmd/+/fmt/+", qos=1) == [1]
    for topic_filter in (EVENTS, "iot-2/cmd/+/fmt/+", "iot-2/type/#", "#"):
        assert gw.subscribe(topic_filter) == [refused_code(version)], topic_filter
    dev1 = device(clients, watson, version)
    dev1.subscribe("iot-2/cmd/+/fmt/+", qos=1)
    app = application(clients, watson, version)
    app.publish("iot-2/type/gw/id/gw1/cmd/restart/fmt/json", b"gw", qos=1)
    assert gw.expect_message().topic == "iot-2/type/gw/id/gw1/cmd/restart/fmt/json"
    app.publish("iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", b"d1", qos=1)
    assert gw.expect_message().topic == "iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json"
    # The device behind it, connected on its own, gets its command too, in its own form.
    assert dev1.expect_message().topic == "iot-2/cmd/reboot/fmt/json"


@VERSIONS
def test_gateway_notifications_on_refused_publish_and_subscribe(watson, clients, version):
    """ "When errors occur during the validation of the publish or subscribe topic ... a
    notification is sent to the gateway" on iot-2/type/typeId/id/deviceId/notify, JSON with
    Request (publish or subscribe), Time, Topic, Type, Id, Client, RC and Message."""
    gw = gateway(clients, watson, version)
    assert gw.subscribe(GW_NOTIFY, qos=1) == [1]
    assert gw.subscribe("iot-2/type/gw/id/gw2/notify") == [refused_code(version)]
    first = json.loads(gw.expect_message().payload)
    assert (first["Request"], first["Topic"], first["Id"]) == (
        "subscribe",
        "iot-2/type/gw/id/gw2/notify",
        "gw2",
    )
    gw.publish("iot-2/type/sensor/id/dev1/cmd/reboot/fmt/json", b"x", qos=1)
    notice = gw.expect_message()
    assert notice.topic == GW_NOTIFY
    body = json.loads(notice.payload)
    assert set(body) == {"Request", "Time", "Topic", "Type", "Id", "Client", "RC", "Message"}
    assert body["Request"] == "publish"
    assert (body["Type"], body["Id"]) == ("sensor", "dev1")
    assert body["Client"] == "g:org1:gw:gw1" and body["RC"] == 0x87
    # An accepted PUBLISH makes no notification.
    gw.publish("iot-2/type/gw/id/gw1/evt/ok/fmt/json", b"{}", qos=1)
    gw.expect_no_message()


@VERSIONS
def test_managed_gateway_iotdm_requests_and_iotdevice_responses(watson, clients, version):
    """A managed gateway subscribes to iotdm-1/type/typeId/id/deviceId/# for itself and its
    devices (`+` allowed) and publishes responses on iotdevice-1/type/typeId/id/deviceId/..."""
    gw = gateway(clients, watson, version)
    assert gw.subscribe("iotdm-1/type/+/id/+/#", qos=1) == [1]
    app = application(clients, watson, version)
    app.subscribe("iotdevice-1/type/+/id/+/#", qos=1)
    app.publish("iotdm-1/type/sensor/id/dev7/mgmt/initiate/device/reboot", b'{"reqId":"r"}', 1)
    assert gw.expect_message().topic == "iotdm-1/type/sensor/id/dev7/mgmt/initiate/device/reboot"
    assert gw.publish("iotdevice-1/type/sensor/id/dev7/response", b'{"rc":202}', qos=1) == 0
    assert app.expect_message().topic == "iotdevice-1/type/sensor/id/dev7/response"
    refused = gw.publish("iotdevice-1/type/sensor/id/dev7/response", b"{}", qos=1, retain=True)
    assert refused == (0x87 if version == V5 else 0)
