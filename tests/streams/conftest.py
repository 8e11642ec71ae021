"""Fixtures of the messaging-service tests: a broker with its HTTP API (tests/api), paho clients."""

from __future__ import annotations

from tests.api.conftest import api, api_factory, op  # noqa: F401  (fixtures)
from tests.integration.conftest import client_factory  # noqa: F401  (a fixture)
