"""Fixtures of the end-to-end tests: paho clients with credentials (tests/dialects)."""

from __future__ import annotations

from tests.dialects.support import clients  # noqa: F401  (a fixture)
