"""The seed platforms end to end: one broker with a listener per dialect, provisioned only
through the HTTP API as an operator would, and a backend that consumes with roost.client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from roost.client import Envelope, RoostClient, StreamMessage
from roost.config import ApiConfig, ListenerConfig, RegistryConfig
from tests.conftest import BrokerHandle, start_broker
from tests.dialects.alibaba_support import sign
from tests.integration.helpers import Client

OPERATOR_KEY = "operator-key"
C8Y = "t100"  # a Cumulocity tenant: its Connect and SmartREST devices
ORG = "myorg1"  # a Watson org
PK = "a1Prod00001"  # an Alibaba product key
PLANT = "plant"  # the tenant of the generic listener
TENANTS = (C8Y, ORG, PK, PLANT)
# What each tenant's backend captures, in the routed (canonical) form.
STREAMS = {
    C8Y: ["meters/#", "smartrest/+/s/us", "smartrest/+/s/us/+"],
    ORG: ["iot-2/type/+/id/+/evt/+/fmt/+"],
    PK: [f"/{PK}/+/user/update", f"/sys/{PK}/+/thing/event/property/post"],
    PLANT: ["plant/#"],
}
LISTENERS = (
    ("c8y", "cumulocity-connect", "default"),
    ("smartrest", "cumulocity-smartrest", "default"),
    ("watson", "watson", "default"),
    ("ali", "alibaba", "default"),
    ("plant", "generic", PLANT),
)


@dataclass
class Seeds:
    """A running broker and what the operator got back from the API: each tenant's
    application key, the Watson device token, the Alibaba device secret."""

    handle: BrokerHandle
    keys: dict[str, str] = field(default_factory=dict)
    watson_token: str = ""
    ali_secret: str = ""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.handle.server.ports['api']}"

    def at(self, listener: str) -> BrokerHandle:
        return replace(self.handle, port=self.handle.server.ports[listener])

    def backend(self, tenant: str) -> RoostClient:
        """A backend service of `tenant`, with its application's API key."""
        return RoostClient(self.api, self.keys[tenant], tenant=tenant, retry_for=15)


def start(data_dir: str, api_port: int = 0) -> BrokerHandle:
    listeners = tuple(
        ListenerConfig(name=n, host="127.0.0.1", port=0, dialect=d, tenant=t)
        for n, d, t in LISTENERS
    )
    return start_broker(
        data_dir=data_dir,
        listeners=listeners,
        registry=RegistryConfig(enabled=True, scrypt_n=1 << 10),
        api=ApiConfig(port=api_port, admin_key=OPERATOR_KEY),
    )


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def provision(seeds: Seeds) -> None:
    """Tenants, devices, credentials, an application with an API key per tenant and a
    stream per tenant, all through the HTTP API."""
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    with httpx.Client(base_url=seeds.api + "/api/v1", headers=headers, timeout=10) as op:

        def device(tenant: str, device_id: str, **credential: str) -> dict[str, Any]:
            created(op.post(f"/tenants/{tenant}/devices", json={"device_id": device_id}))
            path = f"/tenants/{tenant}/devices/{device_id}/credentials"
            return created(op.post(path, json=credential))

        for tenant in TENANTS:
            created(op.post("/tenants", json={"tenant": tenant}))
            created(op.post(f"/tenants/{tenant}/applications", json={"application_id": "svc"}))
            key = created(op.post(f"/tenants/{tenant}/applications/svc/api-keys"))["key"]
            seeds.keys[tenant] = key
        device(C8Y, "meter1", kind="password", username="meter1", password="meter1-pass")
        device(C8Y, "gw42", kind="password", username="gw42", password="gw42-pass")
        seeds.watson_token = device(ORG, "sensor:s1", kind="token")["token"]
        seeds.ali_secret = device(PK, "lamp", kind="secret")["secret"]
        device(PLANT, "robot1", kind="password", username="robot1", password="robot1-pass")

    async def declare() -> None:
        for tenant, filters in STREAMS.items():
            async with seeds.backend(tenant) as backend:
                await backend.declare_stream("uplink", filters)

    asyncio.run(declare())


# -- devices, as each platform's firmware connects ----------------------------------------

Clients = Callable[..., Client]


def cumulocity_device(clients: Clients, seeds: Seeds, version: int) -> Client:
    c = clients(
        seeds.at("c8y"), "meter1", username=f"{C8Y}/meter1", password="meter1-pass", version=version
    )
    c.connect()
    return c


def smartrest_device(clients: Clients, seeds: Seeds, version: int) -> Client:
    c = clients(
        seeds.at("smartrest"),
        "d:gw42:tmplA",
        username=f"{C8Y}/gw42",
        password="gw42-pass",
        version=version,
    )
    c.connect()
    return c


def watson_device(clients: Clients, seeds: Seeds, version: int) -> Client:
    c = clients(
        seeds.at("watson"),
        f"d:{ORG}:sensor:s1",
        username="use-token-auth",
        password=seeds.watson_token,
        version=version,
    )
    c.connect()
    return c


def alibaba_device(clients: Clients, seeds: Seeds, version: int) -> Client:
    client_id, username, password = sign(PK, "lamp", seeds.ali_secret, client_id="SN1")
    c = clients(seeds.at("ali"), client_id, username=username, password=password, version=version)
    c.connect()
    return c


def generic_device(clients: Clients, seeds: Seeds, version: int) -> Client:
    c = clients(
        seeds.at("plant"), "robot1", username="robot1", password="robot1-pass", version=version
    )
    c.connect()
    return c


# -- the backend ----------------------------------------------------------------------------


async def take(backend: RoostClient, group: str, count: int) -> list[StreamMessage]:
    """The next `count` messages of the tenant's stream for `group`, acknowledged."""
    out: list[StreamMessage] = []

    async def run() -> None:
        async for message in backend.consumer("uplink", group, wait=1).messages():
            await message.ack()
            out.append(message)
            if len(out) == count:
                return

    await asyncio.wait_for(run(), 10)
    return out


def consume(seeds: Seeds, tenant: str, group: str, count: int) -> list[Envelope]:
    """What a backend service of `tenant` reads from its stream: `count` envelopes, then
    nothing more for a moment."""

    async def run() -> list[Envelope]:
        async with seeds.backend(tenant) as backend:
            got = await take(backend, group, count)
            rest = await backend.consumer("uplink", group).fetch(wait=0.2)
            assert rest == [], [m.envelope for m in rest]
            return [m.envelope for m in got]

    return asyncio.run(run())


def backend_publish(seeds: Seeds, tenant: str, topic: str, payload: bytes, **kw: Any) -> int:
    async def run() -> int:
        async with seeds.backend(tenant) as backend:
            return await backend.publish(topic, payload, **kw)

    return asyncio.run(run())


def check(
    e: Envelope,
    *,
    tenant: str,
    topic: str,
    client_id: str,
    qos: int,
    payload: bytes,
    window: tuple[float, float],
    **v5: Any,
) -> None:
    """An envelope field by field; MQTT 5 properties as given, else absent."""
    assert (e.stream, e.tenant, e.topic, e.client_id) == ("uplink", tenant, topic, client_id)
    assert (e.qos, e.payload, e.retain, e.dup, e.dead_letter) == (qos, payload, False, False, None)
    assert (1 <= e.message_id <= 65535) if qos else e.message_id >= 65536
    assert window[0] <= e.received_at <= window[1]
    assert e.user_properties == tuple(v5.get("user_properties", ()))
    assert e.content_type == v5.get("content_type")
    assert e.correlation_data == v5.get("correlation_data")
    assert e.response_topic == v5.get("response_topic")
    assert e.payload_format_indicator == v5.get("payload_format_indicator")


def now_window(started: float) -> tuple[float, float]:
    return started, time.time()
