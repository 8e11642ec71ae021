"""End to end: paho-mqtt 3.1.1 and 5.0 devices publish to a real broker (SQLite data dir, HTTP
API); a backend consumes with roost.client and publishes back to devices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from paho.mqtt.packettypes import PacketTypes

from roost.client import RoostClient, StreamMessage
from tests.api.conftest import Api
from tests.integration.helpers import V5, V311, Client, connect_props, props, wait_subscribed


async def take(consumer_messages: object, count: int, timeout: float = 10.0) -> list[StreamMessage]:
    """The next `count` messages of `consumer.messages()`, acknowledged."""
    out: list[StreamMessage] = []

    async def run() -> None:
        async for message in consumer_messages:  # type: ignore[attr-defined]
            await message.ack()
            out.append(message)
            if len(out) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return out


def test_backend_receives_what_devices_of_each_version_published_field_by_field(
    api: Api, client_factory: Callable[..., Client]
) -> None:
    async def declare() -> None:
        async with RoostClient(api.base, api.admin_key) as client:
            await client.declare_stream("telemetry", ["dev/+/up", "dev/+/alarm"])

    asyncio.run(declare())
    before = time.time()
    old = client_factory(api.handle, "meter-311", version=V311)
    old.connect()
    old.publish("dev/meter-311/up", b"\x00raw", qos=0)
    old.publish("dev/meter-311/up", b"q1", qos=1, retain=True)
    new = client_factory(api.handle, "meter-5", version=V5)
    new.connect()
    p = props(
        PacketTypes.PUBLISH,
        PayloadFormatIndicator=1,
        ContentType="application/json",
        ResponseTopic="dev/meter-5/reply",
        CorrelationData=b"\x01corr",
        UserProperty=[("unit", "kWh"), ("unit", "Wh")],
    )
    code = new.publish("dev/meter-5/alarm", b'{"t": 1}', qos=2, properties=p)
    assert code == 0  # captured by a stream: not "no matching subscribers" (0x10)
    new.publish("other/topic", b"ignored", qos=1)
    after = time.time()

    async def consume() -> list[StreamMessage]:
        async with RoostClient(api.base, api.admin_key) as client:
            return await take(client.consumer("telemetry", "backend", wait=2).messages(), 3)

    got = asyncio.run(consume())
    e0, e1, e2 = (m.envelope for m in got)
    assert [e.seq for e in (e0, e1, e2)] == [1, 2, 3]
    for e in (e0, e1, e2):
        assert e.stream == "telemetry" and e.tenant == "default" and e.dup is False
        assert before <= e.received_at <= after and e.dead_letter is None
    assert (e0.topic, e0.payload, e0.qos, e0.retain, e0.client_id) == (
        "dev/meter-311/up", b"\x00raw", 0, False, "meter-311"
    )  # fmt: skip
    assert e0.message_id >= 65536  # QoS 0 has no packet id: Roost's own
    assert e0.user_properties == () and e0.content_type is None and e0.correlation_data is None
    assert (e1.payload, e1.qos, e1.retain, e1.client_id) == (b"q1", 1, True, "meter-311")
    assert 1 <= e1.message_id <= 65535
    assert (e2.topic, e2.payload, e2.qos, e2.client_id) == (
        "dev/meter-5/alarm", b'{"t": 1}', 2, "meter-5"
    )  # fmt: skip
    assert 1 <= e2.message_id <= 65535
    assert e2.payload_format_indicator == 1 and e2.content_type == "application/json"
    assert e2.response_topic == "dev/meter-5/reply" and e2.correlation_data == b"\x01corr"
    assert e2.user_properties == (("unit", "kWh"), ("unit", "Wh"))
    assert all(m.deliveries == 1 for m in got)

    async def stats() -> dict[str, object]:
        async with RoostClient(api.base, api.admin_key) as client:
            return await client.stream("telemetry")

    info = asyncio.run(stats())
    assert info["last_seq"] == 3 and info["messages"] == 3
    assert info["groups"] == [
        {
            "name": "backend",
            "committed": 3,
            "next_seq": 4,
            "pending": 0,
            "delivered": 3,
            "redelivered": 0,
            "acked": 3,
            "nacked": 0,
            "dead_lettered": 0,
        }
    ]


def test_members_of_a_group_share_the_work(api: Api, client_factory: Callable[..., Client]) -> None:
    async def declare() -> None:
        async with RoostClient(api.base, api.admin_key) as client:
            await client.declare_stream("jobs", ["jobs/#"])

    asyncio.run(declare())
    device = client_factory(api.handle, "producer", version=V5)
    device.connect()
    for n in range(40):
        device.publish(f"jobs/{n}", b"%d" % n, qos=1)

    async def consume() -> tuple[list[int], list[int]]:
        async with RoostClient(api.base, api.admin_key) as client:
            a = client.consumer("jobs", "workers", batch=5, wait=0.5)
            b = client.consumer("jobs", "workers", batch=5, wait=0.5)
            seen_a: list[int] = []
            seen_b: list[int] = []

            async def work(consumer: object, seen: list[int]) -> None:
                async for message in consumer.messages():  # type: ignore[attr-defined]
                    seen.append(message.seq)
                    await asyncio.sleep(0.005)  # some work
                    await message.ack()
                    if len(seen_a) + len(seen_b) >= 40:
                        a.close()
                        b.close()

            await asyncio.wait_for(asyncio.gather(work(a, seen_a), work(b, seen_b)), 20)
            return seen_a, seen_b

    seen_a, seen_b = asyncio.run(consume())
    assert sorted(seen_a + seen_b) == list(range(1, 41))
    assert seen_a and seen_b and not set(seen_a) & set(seen_b)


def test_backend_publishes_to_a_topic_and_to_one_device_queued_while_offline(
    api: Api, client_factory: Callable[..., Client]
) -> None:
    """Delivered at min(published, granted) QoS [MQTT-3.8.4-8]; queued for an offline
    persistent session [MQTT-3.1.2-5]."""
    online = client_factory(api.handle, "lamp-1", version=V5)
    online.connect()
    online.subscribe("cmd/#", 1)
    sleepy = client_factory(api.handle, "lamp-2", version=V311, clean_session=False)
    sleepy.connect()
    sleepy.subscribe("cmd/#", 2)
    wait_subscribed(api.handle, "lamp-2", "cmd/#")
    sleepy.disconnect()

    async def send() -> tuple[int, int]:
        async with RoostClient(api.base, api.admin_key) as client:
            to_all = await client.publish(
                "cmd/all", "on", qos=2, content_type="text/plain", correlation_data=b"c1"
            )
            to_one = await client.publish("cmd/one", b"blink", qos=1, device="lamp-2")
            return to_all, to_one

    assert asyncio.run(send()) == (2, 1)
    message = online.expect_message()
    assert (message.topic, message.payload, message.qos) == ("cmd/all", b"on", 1)
    assert message.properties.ContentType == "text/plain"
    assert message.properties.CorrelationData == b"c1"
    online.expect_no_message()
    again = client_factory(api.handle, "lamp-2", version=V311, clean_session=False)
    assert again.connect().session_present
    got = again.expect_messages(2)
    # (paho hands a QoS 2 message over on PUBREL: the order between the two may differ)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("cmd/all", b"on", 2),
        ("cmd/one", b"blink", 1),
    ]


def test_a_will_is_captured_like_the_clients_own_publish(
    api: Api, client_factory: Callable[..., Client]
) -> None:
    async def declare() -> None:
        async with RoostClient(api.base, api.admin_key) as client:
            await client.declare_stream("status", ["status/#"])

    asyncio.run(declare())
    device = client_factory(api.handle, "gw", version=V5)
    device.will_set("status/gw", b"offline", qos=1)
    device.connect(properties=connect_props(SessionExpiryInterval=0))
    device.drop()

    async def consume() -> list[StreamMessage]:
        async with RoostClient(api.base, api.admin_key) as client:
            return await take(client.consumer("status", "ops", wait=2).messages(), 1)

    [m] = asyncio.run(consume())
    assert (m.envelope.topic, m.envelope.payload, m.envelope.client_id) == (
        "status/gw", b"offline", "gw"
    )  # fmt: skip
