"""The registry's records (tenants, devices, credentials, applications, API keys) and the
in-memory snapshot the registry answers from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from roost.registry.kdf import SecretHash


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    tenant: str
    name: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    tenant: str
    device_id: str
    type: str = ""
    parent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    id: int
    tenant: str
    device_id: str
    kind: str  # password | token | certificate | secret
    # The username of a password, the fingerprint or subject of a certificate.
    name: str | None = None
    secret: SecretHash | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Application:
    tenant: str
    application_id: str
    name: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: int
    tenant: str
    application_id: str
    secret: SecretHash


@dataclass(slots=True)
class _Snapshot:
    """Everything in memory; replaced as a whole on reload."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    devices: dict[tuple[str, str], Device] = field(default_factory=dict)
    credentials: dict[int, Credential] = field(default_factory=dict)
    applications: dict[tuple[str, str], Application] = field(default_factory=dict)
    api_keys: dict[int, ApiKey] = field(default_factory=dict)
    # Indexes of credentials.
    passwords: dict[tuple[str, str], int] = field(default_factory=dict)
    certificates: dict[tuple[str, str], int] = field(default_factory=dict)
    tokens: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    device_secrets: dict[tuple[str, str], int] = field(default_factory=dict)
    # The device secrets themselves, by credential id (never in a `Credential`).
    secrets: dict[int, bytes] = field(default_factory=dict)

    def index(self) -> None:
        self.passwords.clear()
        self.certificates.clear()
        self.tokens.clear()
        self.device_secrets.clear()
        for cred in self.credentials.values():
            key = (cred.tenant, cred.name or "")
            if cred.kind == "password":
                self.passwords[key] = cred.id
            elif cred.kind == "certificate":
                self.certificates[key] = cred.id
            elif cred.kind == "secret":
                self.device_secrets[(cred.tenant, cred.device_id)] = cred.id
            else:
                self.tokens.setdefault((cred.tenant, cred.device_id), []).append(cred.id)
