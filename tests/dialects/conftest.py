"""Fixtures of the dialect tests."""

from tests.dialects.support import clients

__all__ = ["clients"]
