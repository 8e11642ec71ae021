"""A broker with its HTTP API on a free port, and httpx clients for the operator and for
applications."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from roost.config import ApiConfig, RegistryConfig
from tests.conftest import BrokerHandle, managed_brokers
from tests.integration.conftest import client_factory  # noqa: F401  (a fixture)

# A cheap scrypt cost: these tests exercise the API, not the KDF.
FAST_REGISTRY = RegistryConfig(enabled=True, allow_anonymous=True, scrypt_n=1024)


@dataclass
class Api:
    handle: BrokerHandle
    base: str
    admin_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        """An httpx client of `/api/v1`, as the operator unless another key is given."""
        headers = {} if key == "" else {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)

    def app_key(self, tenant: str, application_id: str = "backend") -> str:
        """Create the tenant (if needed), an application and an API key; return the key."""
        with self.client() as op:
            op.post("/tenants", json={"tenant": tenant})
            op.post(f"/tenants/{tenant}/applications", json={"application_id": application_id})
            made = op.post(f"/tenants/{tenant}/applications/{application_id}/api-keys")
            assert made.status_code == 201, made.text
            key: str = made.json()["key"]
            return key


@pytest.fixture
def api_factory() -> Iterator[Callable[..., Api]]:
    def make(**settings: Any) -> Api:
        settings.setdefault("registry", FAST_REGISTRY)
        handle = start(api=ApiConfig(port=0, admin_key="operator-key"), **settings)
        port = handle.server.ports["api"]
        return Api(handle, f"http://127.0.0.1:{port}/api/v1", "operator-key")

    brokers = managed_brokers()
    start = next(brokers)
    yield make
    for _ in brokers:
        pass


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()


@pytest.fixture
def op(api: Api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client
