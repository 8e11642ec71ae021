"""The paho-mqtt integration tests (3.1.1 and 5.0) again, with every paho client over TLS,
mutual TLS, WebSocket and WebSocket over TLS.

The test functions are imported from tests/integration; the fixtures below replace theirs:
`broker` / `broker_factory` start brokers that also have a listener of each transport, and
`client_factory` makes paho clients on the listener of the current transport. Raw-socket
clients and broker probes in those tests still use the plain TCP listener."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import BrokerHandle, managed_brokers
from tests.integration.helpers import Client
from tests.integration.test_qos import *  # noqa: F403
from tests.integration.test_retained import *  # noqa: F403
from tests.integration.test_sessions import *  # noqa: F403
from tests.integration.test_topics import *  # noqa: F403
from tests.integration.test_v5_features import *  # noqa: F403
from tests.integration.test_will import *  # noqa: F403
from tests.transport.certs import Certificates
from tests.transport.conftest import TransportClient, listeners_for

TRANSPORTS = ("tls", "mtls", "ws", "wss")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_factory(certs: Certificates) -> Iterator[Callable[..., BrokerHandle]]:
    yield from managed_brokers(listeners=listeners_for(certs))


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerHandle]) -> BrokerHandle:
    return broker_factory()


@pytest.fixture
def client_factory(certs: Certificates, transport: str) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(handle: BrokerHandle, client_id: str = "", **kw: Any) -> Client:
        client = TransportClient(handle, transport, certs, client_id, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
