"""The device registry: tenants, devices, credentials and API keys (SQLite, cached)."""

from roost.registry.registry import (
    Application,
    Credential,
    Device,
    Registry,
    Tenant,
)

__all__ = ["Application", "Credential", "Device", "Registry", "Tenant"]
