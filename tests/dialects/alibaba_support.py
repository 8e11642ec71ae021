"""Helpers of the `alibaba` conformance tests: a broker with an Alibaba listener and a backend
listener, devices signed as Alibaba's firmware signs them, and RRPC calls from the test
thread."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from roost.registry import Registry
from roost.server.rrpc import Rrpc
from tests.conftest import BrokerHandle
from tests.dialects.support import at, dialect_listener, platform, registry_of
from tests.integration.helpers import V5, Client

Clients = Callable[..., Client]
PK1 = "a1Prod00001"
PK2 = "a1Prod00002"
TIMESTAMP = "1700000000000"
DIGESTS = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}
# The worked example of Alibaba's public connection guide: device certificate, the MQTT
# client id, username and password it gives for them.
EXAMPLE_PK = "a14Xib5kdYd"
EXAMPLE_DN = "light1983432"
EXAMPLE_SECRET = "oLyaKqVxtRvjH284LdhqVgVUx1UPy6zq"
EXAMPLE_CLIENT_ID = "SN1928339|securemode=3,signmethod=hmacsha1,timestamp=1539421321846|"
EXAMPLE_PASSWORD = "b2488041f64f425016b467ee1c94959ebd592ad1"


@dataclass
class Ali:
    handle: BrokerHandle  # addressed at the alibaba listener
    app: BrokerHandle  # addressed at the generic listener of tenant PK1 (a backend)
    registry: Registry
    secrets: dict[tuple[str, str], str]

    def rrpc(self, **kwargs: Any) -> Rrpc:
        server = self.handle.server
        return Rrpc(server.broker, server.ctx.clock, **kwargs)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the broker's loop; its result or its exception."""
        return asyncio.run_coroutine_threadsafe(coro, self.handle.loop).result(timeout=15)


@pytest.fixture
def ali() -> Iterator[Ali]:
    """Products PK1 (devices dev1, dev2 with secrets, nosecret without) and PK2 (dev1), the
    public example's device, a listener "ali" with the alibaba dialect and a generic
    listener "app" on tenant PK1 with anonymous clients for a backend."""
    handle = platform(
        dialect_listener("ali", "alibaba"),
        dialect_listener("app", "generic", tenant=PK1),
        allow_anonymous=True,
    )
    registry = registry_of(handle)
    secrets: dict[tuple[str, str], str] = {}
    for pk, names in ((PK1, ("dev1", "dev2", "nosecret")), (PK2, ("dev1",))):
        registry.add_tenant(pk)
        for dn in names:
            registry.add_device(pk, dn)
            if dn != "nosecret":
                secrets[(pk, dn)] = registry.add_device_secret(pk, dn)[1]
    registry.add_tenant(EXAMPLE_PK)
    registry.add_device(EXAMPLE_PK, EXAMPLE_DN)
    registry.add_device_secret(EXAMPLE_PK, EXAMPLE_DN, EXAMPLE_SECRET)
    yield Ali(at(handle, "ali"), at(handle, "app"), registry, secrets)
    handle.stop()


def sign(
    pk: str,
    dn: str,
    secret: str,
    client_id: str = "SN1",
    method: str = "hmacsha1",
    timestamp: str | None = TIMESTAMP,
    extra: tuple[str, ...] = (),
) -> tuple[str, str, str]:
    """(MQTT client id, username, password) as a device computes them."""
    params = ["securemode=3", f"signmethod={method}"]
    content = f"clientId{client_id}deviceName{dn}productKey{pk}"
    if timestamp is not None:
        params.append(f"timestamp={timestamp}")
        content += f"timestamp{timestamp}"
    params.extend(extra)
    digest = DIGESTS.get(method, hashlib.sha1)
    password = hmac.new(secret.encode(), content.encode(), digest).hexdigest()
    return f"{client_id}|{','.join(params)}|", f"{dn}&{pk}", password


def device(
    clients: Clients,
    ali: Ali,
    version: int,
    dn: str = "dev1",
    pk: str = PK1,
    connect: bool = True,
    **sign_kw: Any,
) -> Client:
    """A device of the registry, signed with its own secret."""
    mqtt_id, user, password = sign(pk, dn, ali.secrets.get((pk, dn), "not-its-secret"), **sign_kw)
    c = clients(ali.handle, mqtt_id, username=user, password=password, version=version)
    if connect:
        c.connect()
    return c


def backend(clients: Clients, ali: Ali, client_id: str = "backend") -> Client:
    """A v5 client of tenant PK1 on the generic listener."""
    c = clients(ali.app, client_id, version=V5)
    c.connect()
    return c


def answer(c: Client, reply: Callable[[str, bytes], tuple[str, bytes] | None]) -> None:
    """Make a device answer each message it receives (from paho's thread): `reply` gives the
    topic and payload to publish, or None. Messages are still recorded."""

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        c.messages.put(message)
        out = reply(message.topic, message.payload)
        if out is not None:
            client.publish(out[0], out[1], 0)

    c.paho.on_message = on_message
