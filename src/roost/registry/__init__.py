"""The device registry: tenants, devices, credentials and API keys (SQLite, cached)."""

from roost.registry.model import Application, Credential, Device, Tenant
from roost.registry.registry import Registry

__all__ = ["Application", "Credential", "Device", "Registry", "Tenant"]
