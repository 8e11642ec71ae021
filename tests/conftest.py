"""Shared fixtures: a real Roost broker on a real socket (port 0) in a background thread."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from roost.auth.base import AuthChain
from roost.config import (
    AclRuleConfig,
    ApiConfig,
    Config,
    ListenerConfig,
    MQTTConfig,
    QuotaConfig,
    RegistryConfig,
    StoreConfig,
    TenantQuotaConfig,
    validate,
)
from roost.server.server import RoostServer

# `roost serve` processes started by tests put their HTTP API on a free port.
os.environ.setdefault("ROOST_API__PORT", "0")


@dataclass
class BrokerHandle:
    """A running broker: connect to (host, port); `call` runs a function on its loop."""

    host: str
    port: int
    server: RoostServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the broker's event loop and return its result (to inspect state)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def stop(self) -> None:
        if not self.loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_broker(
    auth: AuthChain | None = None,
    *,
    durability: str = "sync",
    data_dir: str | None = None,
    listeners: tuple[ListenerConfig, ...] = (),
    registry: RegistryConfig | None = None,
    acl: tuple[AclRuleConfig, ...] = (),
    quotas: QuotaConfig | None = None,
    tenant_quotas: tuple[TenantQuotaConfig, ...] = (),
    api: ApiConfig | None = None,
    **mqtt: Any,
) -> BrokerHandle:
    """Start a broker with MQTTConfig overrides, listening on 127.0.0.1 port 0, on the
    default durability (SQLite) in a fresh temporary data directory unless one is given.

    `listeners` adds listeners (TLS, WebSocket, ...; use port 0) next to the plain TCP
    listener "default"; their ports are in `handle.server.ports[name]`. `registry` and `acl`
    are the `[registry]` section and the `[[acl]]` rules (docs/dialects.md); `quotas` and
    `tenant_quotas` the `[quotas]` and `[[tenant_quotas]]` (docs/quotas.md). The HTTP API
    is off unless `api` is given (use port 0; its port is `handle.server.ports["api"]`)."""
    config = Config(
        listeners=(ListenerConfig(host="127.0.0.1", port=0), *listeners),
        mqtt=replace(MQTTConfig(), **mqtt),
        store=StoreConfig(
            durability=durability, data_dir=data_dir or tempfile.mkdtemp(prefix="roost-test-")
        ),
        registry=registry or RegistryConfig(),
        acl=acl,
        quotas=quotas or QuotaConfig(),
        tenant_quotas=tenant_quotas,
        api=api or ApiConfig(enabled=False),
    )
    validate(config)
    server = RoostServer(config, auth=auth)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="roost-test-broker", daemon=True)
    thread.start()
    ready.wait(10)
    if failure:
        raise failure[0]
    return BrokerHandle("127.0.0.1", server.ports["default"], server, loop, thread)


def managed_brokers(**defaults: Any) -> Iterator[Callable[..., BrokerHandle]]:
    """A broker factory for a fixture to yield from: `start_broker` with `defaults` under
    the call's own settings; every broker it started is stopped afterwards."""
    started: list[BrokerHandle] = []

    def factory(auth: AuthChain | None = None, **kwargs: Any) -> BrokerHandle:
        handle = start_broker(auth, **{**defaults, **kwargs})
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


@pytest.fixture
def broker_factory() -> Iterator[Callable[..., BrokerHandle]]:
    """Start brokers with config overrides: `broker_factory(max_keep_alive=60)`."""
    yield from managed_brokers()


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerHandle]) -> BrokerHandle:
    """A broker on default settings."""
    return broker_factory()
