"""What a credential check can find out, and the registry interface dialects ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a verified credential belongs to: a device, or an application (API key)."""

    tenant: str
    device_id: str | None = None
    application_id: str | None = None
    username: str | None = None


class CredentialStore(Protocol):
    """The read side of the device registry, as dialects see it. Every method answers
    from memory (the registry is loaded at start and written through on change)."""

    def has_tenant(self, tenant: str) -> bool: ...

    def check_password(self, tenant: str, username: str, password: bytes) -> Principal | None:
        """The device whose password credential `username` has this password, if enabled."""
        ...

    def check_token(self, tenant: str, device_id: str, token: bytes) -> Principal | None:
        """The device if `token` is one of its (unrevoked) tokens and it is enabled."""
        ...

    def check_hmac(
        self, tenant: str, device_id: str, content: bytes, digest: str, mac: bytes
    ) -> Principal | None:
        """The device if `mac` is the HMAC (hashlib `digest`: md5, sha1, sha256) of
        `content` keyed by its device secret, and it is enabled. The secret never leaves
        the registry."""
        ...

    def has_device_secret(self, tenant: str, device_id: str) -> bool:
        """Whether the device exists, is enabled (and its tenant) and has a device secret."""
        ...

    def check_certificate(self, tenant: str, identity: str) -> Principal | None:
        """The device registered with this certificate fingerprint or subject."""
        ...

    def check_api_key(self, tenant: str, key: bytes) -> Principal | None:
        """The application owning this API key, if it is neither revoked nor disabled."""
        ...
