"""Helpers for the dialect tests: a broker with a registry and dialect listeners, and paho
clients pointed at one listener with credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from roost.config import AclRuleConfig, ListenerConfig, RegistryConfig
from roost.registry import Registry
from tests.conftest import BrokerHandle, start_broker
from tests.integration.helpers import Client

# A cheap scrypt cost, so that the tests do not spend their time in the KDF.
TEST_SCRYPT_N = 1 << 10


def dialect_listener(name: str, dialect: str, tenant: str = "default") -> ListenerConfig:
    return ListenerConfig(name=name, host="127.0.0.1", port=0, dialect=dialect, tenant=tenant)


def platform(
    *listeners: ListenerConfig,
    allow_anonymous: bool = False,
    acl: tuple[AclRuleConfig, ...] = (),
    refresh_interval: float = 1.0,
    **kwargs: Any,
) -> BrokerHandle:
    """A broker with the registry enabled and the given listeners (next to "default")."""
    registry = RegistryConfig(
        enabled=True,
        allow_anonymous=allow_anonymous,
        scrypt_n=TEST_SCRYPT_N,
        refresh_interval=refresh_interval,
    )
    return start_broker(listeners=listeners, registry=registry, acl=acl, **kwargs)


def registry_of(handle: BrokerHandle) -> Registry:
    registry = handle.server.registry
    assert registry is not None
    return registry


def at(handle: BrokerHandle, listener: str) -> BrokerHandle:
    """The same broker, addressed at another of its listeners."""
    return replace(handle, port=handle.server.ports[listener])


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """`clients(handle, "id", version=V311, username="t1/dev", password="pw")`."""
    made: list[Client] = []

    def make(
        handle: BrokerHandle,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        **kw: Any,
    ) -> Client:
        client = Client(handle, client_id, **kw)
        if username is not None:
            client.paho.username_pw_set(username, password)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def login(
    clients: Callable[..., Client],
    handle: BrokerHandle,
    client_id: str,
    version: int,
    user: str,
    password: str,
    *,
    connect: bool = False,
    **kwargs: bool,
) -> Client:
    """A paho client with a username and password (connected if `connect`)."""
    c = clients(handle, client_id, username=user, password=password, version=version, **kwargs)
    if connect:
        c.connect()
    return c
