"""Fixtures of the registry tests."""

from tests.dialects.support import clients

__all__ = ["clients"]
