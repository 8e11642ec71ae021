"""Devices written for each seed platform (paho-mqtt with the platform's client id,
credentials and topics, changed only in their endpoint) exchange messages with a backend
service: the backend reads what they published through a stream with roost.client, field by
field, and sends them commands through the HTTP API, which they receive on their own
platform's topics. Everything the operator does goes through the HTTP API."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.client import StreamMessage
from tests.dialects.alibaba_support import answer
from tests.e2e.support import (
    C8Y,
    ORG,
    PK,
    PLANT,
    Clients,
    Seeds,
    alibaba_device,
    backend_publish,
    check,
    consume,
    cumulocity_device,
    generic_device,
    now_window,
    provision,
    smartrest_device,
    start,
    take,
    watson_device,
)
from tests.integration.helpers import V5, V311, Client, props

JSON = "application/json"


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeds]:
    """A data directory provisioned once through the API (then the broker stops)."""
    data = tmp_path_factory.mktemp("seeds")
    s = Seeds(start(str(data)))
    provision(s)
    s.handle.stop()
    return data, s


@pytest.fixture
def seeds(provisioned: tuple[Path, Seeds], tmp_path: Path) -> Iterator[Seeds]:
    """A broker on a copy of the provisioned data directory: the same tenants, devices,
    credentials, keys and (empty) streams."""
    data, made = provisioned
    shutil.copytree(data, tmp_path / "data")
    s = Seeds(start(str(tmp_path / "data")), made.keys, made.watson_token, made.ali_secret)
    yield s
    s.handle.stop()


def request_props(response_topic: str, correlation: bytes, *pairs: tuple[str, str]) -> Any:
    return props(
        PayloadFormatIndicator=1,
        ContentType=JSON,
        ResponseTopic=response_topic,
        CorrelationData=correlation,
        UserProperty=list(pairs),
    )


def test_cumulocity_connect_device_publishes_plain_topics_and_gets_commands(
    seeds: Seeds, clients: Clients
) -> None:
    started = time.time()
    old = cumulocity_device(clients, seeds, V311)
    assert old.publish("meters/meter1/temperature", b"21.5", qos=1) == 0
    old.publish("meters/meter1/temperature", b"21.6", qos=0)
    old.disconnect()
    new = cumulocity_device(clients, seeds, V5)
    p = request_props("meters/meter1/reply", b"req-7", ("unit", "C"), ("unit", "K"))
    assert new.publish("meters/meter1/alarm", b'{"sev": "major"}', qos=1, properties=p) == 0
    new.publish("other/topic", b"not captured", qos=1)
    window = now_window(started)

    e1, e2, e3 = consume(seeds, C8Y, "svc", 3)
    base = {"tenant": C8Y, "client_id": "meter1", "window": window}
    check(e1, topic="meters/meter1/temperature", qos=1, payload=b"21.5", **base)
    check(e2, topic="meters/meter1/temperature", qos=0, payload=b"21.6", **base)
    check(
        e3,
        topic="meters/meter1/alarm",
        qos=1,
        payload=b'{"sev": "major"}',
        user_properties=[("unit", "C"), ("unit", "K")],
        content_type=JSON,
        correlation_data=b"req-7",
        response_topic="meters/meter1/reply",
        payload_format_indicator=1,
        **base,
    )

    # The backend answers the request on its response topic, with its correlation data.
    assert new.subscribe("meters/meter1/reply", 1) == [1]
    assert e3.response_topic is not None
    sent = backend_publish(
        seeds, C8Y, e3.response_topic, b"ok", qos=1, correlation_data=e3.correlation_data
    )
    assert sent == 1
    got = new.expect_message()
    assert (got.topic, got.payload, got.qos) == ("meters/meter1/reply", b"ok", 1)
    assert got.properties.CorrelationData == b"req-7"


def test_smartrest_device_sends_csv_lines_and_receives_operations_on_s_ds(
    seeds: Seeds, clients: Clients
) -> None:
    started = time.time()
    old = smartrest_device(clients, seeds, V311)
    old.publish("s/us", b"200,c8y_Temperature,T,25", qos=1)
    old.publish("s/us/child1", b"200,c8y_Temperature,T,19", qos=2)
    old.disconnect()
    new = smartrest_device(clients, seeds, V5)
    p = props(UserProperty=[("fw", "1.2")], ResponseTopic="s/ds", CorrelationData=b"op-1")
    assert new.publish("s/us", b"400,c8y_TemperatureAlarm,Too hot", qos=1, properties=p) == 0
    window = now_window(started)

    e1, e2, e3 = consume(seeds, C8Y, "svc", 3)
    # SmartREST sessions are keyed on the deviceIdentifier: the client id of the envelope.
    base = {"tenant": C8Y, "client_id": "gw42", "window": window}
    check(e1, topic="smartrest/gw42/s/us", qos=1, payload=b"200,c8y_Temperature,T,25", **base)
    check(
        e2, topic="smartrest/gw42/s/us/child1", qos=2, payload=b"200,c8y_Temperature,T,19", **base
    )
    check(
        e3,
        topic="smartrest/gw42/s/us",
        qos=1,
        payload=b"400,c8y_TemperatureAlarm,Too hot",
        user_properties=[("fw", "1.2")],
        correlation_data=b"op-1",
        response_topic="smartrest/gw42/s/ds",
        **base,
    )

    # Operations for the device and for its child arrive on its own s/ds, at the QoS it
    # subscribed with; one through the topic, one through the device-publish endpoint.
    assert new.subscribe("s/ds", 1) == [1]
    assert backend_publish(seeds, C8Y, "smartrest/gw42/s/ds", b"510,gw42", qos=0) == 1
    child = backend_publish(seeds, C8Y, "smartrest/gw42/s/ds/child1", b"510,child1", device="gw42")
    assert child == 1
    assert e3.response_topic is not None
    assert backend_publish(seeds, C8Y, e3.response_topic, b"511,gw42,done", qos=1) == 1
    got = [(m.topic, m.payload, m.qos) for m in new.expect_messages(3)]
    assert got == [
        ("s/ds", b"510,gw42", 1),
        ("s/ds", b"510,child1", 1),
        ("s/ds", b"511,gw42,done", 1),
    ]


def test_watson_device_sends_events_and_receives_commands(seeds: Seeds, clients: Clients) -> None:
    started = time.time()
    old = watson_device(clients, seeds, V311)
    old.publish("iot-2/evt/status/fmt/json", b'{"temp": 20}', qos=0)
    old.publish("iot-2/evt/status/fmt/json", b'{"temp": 21}', qos=1)
    old.disconnect()
    new = watson_device(clients, seeds, V5)
    p = request_props("iot-2/cmd/answer/fmt/json", b"\x00c1", ("site", "north"))
    assert new.publish("iot-2/evt/alert/fmt/json", b'{"hot": true}', qos=1, properties=p) == 0
    window = now_window(started)

    e1, e2, e3 = consume(seeds, ORG, "svc", 3)
    base = {"tenant": ORG, "client_id": f"d:{ORG}:sensor:s1", "window": window}
    status = "iot-2/type/sensor/id/s1/evt/status/fmt/json"
    check(e1, topic=status, qos=0, payload=b'{"temp": 20}', **base)
    check(e2, topic=status, qos=1, payload=b'{"temp": 21}', **base)
    check(
        e3,
        topic="iot-2/type/sensor/id/s1/evt/alert/fmt/json",
        qos=1,
        payload=b'{"hot": true}',
        user_properties=[("site", "north")],
        content_type=JSON,
        correlation_data=b"\x00c1",
        response_topic="iot-2/type/sensor/id/s1/cmd/answer/fmt/json",
        payload_format_indicator=1,
        **base,
    )

    # A command in the application form reaches the device in its own form.
    assert new.subscribe("iot-2/cmd/+/fmt/+", 1) == [1]
    command = "iot-2/type/sensor/id/s1/cmd/reboot/fmt/json"
    assert backend_publish(seeds, ORG, command, b'{"delay": 0}', qos=1, content_type=JSON) == 1
    assert e3.response_topic is not None
    reply = backend_publish(
        seeds,
        ORG,
        e3.response_topic,
        b"cooling",
        qos=1,
        correlation_data=e3.correlation_data,
        response_topic="iot-2/type/sensor/id/s1/evt/ack/fmt/json",
    )
    assert reply == 1
    reboot, cooling = new.expect_messages(2)
    assert (reboot.topic, reboot.payload, reboot.qos) == (
        "iot-2/cmd/reboot/fmt/json", b'{"delay": 0}', 1
    )  # fmt: skip
    assert reboot.properties.ContentType == JSON
    assert (cooling.topic, cooling.payload) == ("iot-2/cmd/answer/fmt/json", b"cooling")
    assert cooling.properties.CorrelationData == b"\x00c1"
    # The response topic handed to the device is in its own form too.
    assert cooling.properties.ResponseTopic == "iot-2/evt/ack/fmt/json"


def test_alibaba_device_posts_properties_and_answers_rrpc(seeds: Seeds, clients: Clients) -> None:
    update, post = f"/{PK}/lamp/user/update", f"/sys/{PK}/lamp/thing/event/property/post"
    started = time.time()
    old = alibaba_device(clients, seeds, V311)
    old.publish(update, b'{"on": 1}', qos=1)
    prop = b'{"id": "1", "params": {"LightSwitch": 1}, "method": "thing.event.property.post"}'
    old.publish(post, prop, qos=0)
    old.disconnect()
    new = alibaba_device(clients, seeds, V5)
    p = request_props(f"/{PK}/lamp/user/get", b"r-9", ("src", "fw"), ("ver", "3"))
    assert new.publish(update, b'{"on": 0}', qos=1, properties=p) == 0
    window = now_window(started)

    e1, e2, e3 = consume(seeds, PK, "svc", 3)
    # Alibaba sessions are keyed on the device name: the client id of the envelope.
    base = {"tenant": PK, "client_id": "lamp", "window": window}
    check(e1, topic=update, qos=1, payload=b'{"on": 1}', **base)
    check(e2, topic=post, qos=0, payload=prop, **base)
    check(
        e3,
        topic=update,
        qos=1,
        payload=b'{"on": 0}',
        user_properties=[("src", "fw"), ("ver", "3")],
        content_type=JSON,
        correlation_data=b"r-9",
        response_topic=f"/{PK}/lamp/user/get",
        payload_format_indicator=1,
        **base,
    )

    # RRPC: the backend calls the device, which answers on the response topic.
    answer(
        new,
        lambda topic, payload: (
            (topic.replace("/request/", "/response/"), b"done:" + payload)
            if "/rrpc/request/" in topic
            else None
        ),
    )
    assert new.subscribe(f"/sys/{PK}/lamp/rrpc/request/+", 0) == [1]
    assert new.subscribe(f"/{PK}/lamp/user/get", 1) == [1]
    headers = {"Authorization": f"Bearer {seeds.keys[PK]}"}
    with httpx.Client(base_url=seeds.api + "/api/v1", headers=headers, timeout=10) as http:
        call = http.post(f"/tenants/{PK}/devices/lamp/rrpc", json={"payload": "toggle"})
    assert call.status_code == 200, call.text
    assert call.json()["payload"] == "done:toggle"
    request = new.expect_message()
    assert request.topic.startswith(f"/sys/{PK}/lamp/rrpc/request/")
    # And a plain downlink on the device's custom topic, answering its request.
    assert e3.response_topic is not None
    reply = backend_publish(seeds, PK, e3.response_topic, b"{}", correlation_data=b"r-9")
    assert reply == 1
    got = new.expect_message()
    assert (got.topic, got.payload, got.properties.CorrelationData) == (
        f"/{PK}/lamp/user/get", b"{}", b"r-9"
    )  # fmt: skip


def test_generic_device_with_a_registry_password(seeds: Seeds, clients: Clients) -> None:
    started = time.time()
    old = generic_device(clients, seeds, V311)
    old.publish("plant/robot1/telemetry", b"\x00\x01binary", qos=1)
    old.disconnect()
    new = generic_device(clients, seeds, V5)
    p = props(ContentType="application/octet-stream", UserProperty=[("line", "3")])
    new.publish("plant/robot1/telemetry", b"\xff", qos=2, properties=p)
    window = now_window(started)

    e1, e2 = consume(seeds, PLANT, "svc", 2)
    base = {"tenant": PLANT, "client_id": "robot1", "topic": "plant/robot1/telemetry"}
    check(e1, qos=1, payload=b"\x00\x01binary", window=window, **base)
    check(
        e2,
        qos=2,
        payload=b"\xff",
        window=window,
        content_type="application/octet-stream",
        user_properties=[("line", "3")],
        **base,
    )
    assert new.subscribe("plant/robot1/cmd", 2) == [2]
    assert backend_publish(seeds, PLANT, "plant/robot1/cmd", b"stop", qos=2) == 1
    got = new.expect_message()
    assert (got.topic, got.payload, got.qos) == ("plant/robot1/cmd", b"stop", 2)


def test_backends_receive_every_message_of_every_dialect_in_order(
    seeds: Seeds, clients: Clients
) -> None:
    """All devices connected at once, each publishing 20 QoS 1 messages interleaved with the
    others; each tenant's backend reads exactly its devices' messages, in their order."""
    n = 20
    devices: list[tuple[str, Client, str, str, str]] = [
        (C8Y, cumulocity_device(clients, seeds, V5), "meters/meter1/up", "meters/meter1/up", "meter1"),
        (C8Y, smartrest_device(clients, seeds, V311), "s/us", "smartrest/gw42/s/us", "gw42"),
        (
            ORG,
            watson_device(clients, seeds, V311),
            "iot-2/evt/e/fmt/txt",
            "iot-2/type/sensor/id/s1/evt/e/fmt/txt",
            f"d:{ORG}:sensor:s1",
        ),
        (PK, alibaba_device(clients, seeds, V5), f"/{PK}/lamp/user/update", f"/{PK}/lamp/user/update", "lamp"),
        (PLANT, generic_device(clients, seeds, V311), "plant/robot1/x", "plant/robot1/x", "robot1"),
    ]  # fmt: skip
    for i in range(n):
        for _, device, topic, _, _ in devices:
            assert device.publish(topic, b"%d" % i, qos=1) == 0

    async def read_all() -> dict[str, list[StreamMessage]]:
        async def one(tenant: str, count: int) -> list[StreamMessage]:
            async with seeds.backend(tenant) as backend:
                return await take(backend, "all", count)

        counts = {C8Y: 2 * n, ORG: n, PK: n, PLANT: n}
        results = await asyncio.gather(*(one(t, c) for t, c in counts.items()))
        return dict(zip(counts, results, strict=True))

    got = asyncio.run(read_all())
    for tenant, _, _, routed, client_id in devices:
        mine = [m.envelope for m in got[tenant] if m.envelope.client_id == client_id]
        assert [(e.topic, e.payload, e.qos, e.tenant) for e in mine] == [
            (routed, b"%d" % i, 1, tenant) for i in range(n)
        ]
    for messages in got.values():
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1))


def test_backend_gets_every_message_across_a_broker_restart(seeds: Seeds, clients: Clients) -> None:
    """The consumer acknowledges two messages, the broker stops and starts again on the
    same data directory (and API port); the same consumer carries on from its committed
    position and gets every other message, the ones published after the restart too."""
    data_dir = seeds.handle.server.config.store.data_dir
    api_port = seeds.handle.server.ports["api"]
    meter = cumulocity_device(clients, seeds, V311)
    sensor = watson_device(clients, seeds, V5)
    for i in range(2):
        meter.publish("meters/meter1/up", b"before-%d" % i, qos=1)
    sensor.publish("iot-2/evt/e/fmt/txt", b"not this tenant's", qos=1)
    meter.publish("meters/meter1/up", b"before-2", qos=1)

    async def run() -> list[StreamMessage]:
        seen: list[StreamMessage] = []
        async with seeds.backend(C8Y) as backend:
            consumer = backend.consumer("uplink", "svc", batch=1, wait=1)
            async for message in consumer.messages():
                await message.ack()
                seen.append(message)
                if len(seen) == 2:
                    await asyncio.to_thread(restart)
                if len(seen) == 5:
                    return seen
        return seen

    def restart() -> None:
        seeds.handle.stop()
        seeds.handle = start(data_dir, api_port=api_port)
        again = cumulocity_device(clients, seeds, V5)
        for i in range(2):
            again.publish("meters/meter1/up", b"after-%d" % i, qos=1)

    seen = asyncio.run(asyncio.wait_for(run(), 15))
    assert [m.seq for m in seen] == [1, 2, 3, 4, 5]
    assert [m.envelope.payload for m in seen] == [
        b"before-0", b"before-1", b"before-2", b"after-0", b"after-1"
    ]  # fmt: skip
    assert [m.deliveries for m in seen] == [1, 1, 1, 1, 1]
    assert {m.envelope.client_id for m in seen} == {"meter1"}

    async def group() -> dict[str, Any]:
        async with seeds.backend(C8Y) as backend:
            info = await backend.stream("uplink")
            return dict(info["groups"][0])

    assert asyncio.run(group())["committed"] == 5
