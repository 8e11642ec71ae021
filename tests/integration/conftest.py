"""Fixtures for the integration tests: paho clients that are torn down after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.helpers import Client


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Client]]:
    """`client_factory(broker, "id", version=V311, clean_session=False)`; closed at teardown."""
    made: list[Client] = []

    def make(handle: Any, client_id: str = "", **kw: Any) -> Client:
        client = Client(handle, client_id, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
