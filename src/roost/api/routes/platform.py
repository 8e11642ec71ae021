"""Tenants, devices, credentials, applications and API keys: the device registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from roost.api.auth import CallerDep, OperatorDep, TenantDep, roost
from roost.api.errors import ERROR_RESPONSES, ApiError
from roost.registry import Registry
from roost.registry.model import Application, Credential, Device, Tenant
from roost.server.server import RoostServer

router = APIRouter(tags=["registry"], responses=ERROR_RESPONSES)

T = TypeVar("T")

# Identifiers travel in topics and paths: no topic separators, wildcards or controls.
ID_PATTERN = r"^[^/+#\x00-\x1f\x7f]+$"
TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
DeviceId = Annotated[str, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]


def registry(server: Annotated[RoostServer, Depends(roost)]) -> Registry:
    if server.registry is None:
        raise ApiError(503, "the device registry is not open in this broker")
    return server.registry


RegistryDep = Annotated[Registry, Depends(registry)]


def _registry_call(fn: Callable[[], T]) -> T:
    """Run a registry change, mapping its errors: unknown -> 404, conflict -> 409."""
    try:
        return fn()
    except KeyError as exc:
        raise ApiError(404, str(exc.args[0]) if exc.args else "not found") from exc
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc


# -- models -------------------------------------------------------------------------------


class TenantIn(BaseModel):
    tenant: TenantId
    name: str = Field("", max_length=256)


class TenantOut(BaseModel):
    tenant: str
    name: str
    enabled: bool

    @classmethod
    def of(cls, t: Tenant) -> TenantOut:
        return cls(tenant=t.tenant, name=t.name, enabled=t.enabled)


class EnabledPatch(BaseModel):
    enabled: bool


class DeviceIn(BaseModel):
    device_id: DeviceId
    type: str = Field("", max_length=256)
    parent: DeviceId | None = None
    attributes: dict[str, str] = Field(default_factory=dict, max_length=256)
    enabled: bool = True


class DeviceOut(BaseModel):
    tenant: str
    device_id: str
    type: str
    parent: str | None
    attributes: dict[str, str]
    enabled: bool

    @classmethod
    def of(cls, d: Device) -> DeviceOut:
        return cls(
            tenant=d.tenant,
            device_id=d.device_id,
            type=d.type,
            parent=d.parent,
            attributes=dict(d.attributes),
            enabled=d.enabled,
        )


class CredentialIn(BaseModel):
    kind: Literal["password", "token", "certificate", "secret"]
    # password: the username (unique in the tenant) and the password.
    username: str | None = Field(None, min_length=1, max_length=256)
    password: str | None = Field(None, min_length=1, max_length=1024)
    # token: given, or generated when absent (then returned once).
    token: str | None = Field(None, min_length=8, max_length=1024)
    # certificate: its SHA-256 fingerprint or subject.
    identity: str | None = Field(None, min_length=1, max_length=1024)
    # secret: the device secret of signed logins (Alibaba), given or generated when absent
    # (then returned once); at most one per device.
    secret: str | None = Field(None, min_length=8, max_length=1024)


class CredentialOut(BaseModel):
    id: int
    tenant: str
    device_id: str
    kind: str
    name: str | None
    # Only when the server generated the token or device secret; never shown again.
    token: str | None = None
    secret: str | None = None

    @classmethod
    def of(
        cls, c: Credential, token: str | None = None, secret: str | None = None
    ) -> CredentialOut:
        return cls(
            id=c.id,
            tenant=c.tenant,
            device_id=c.device_id,
            kind=c.kind,
            name=c.name,
            token=token,
            secret=secret,
        )


class ApplicationIn(BaseModel):
    application_id: DeviceId
    name: str = Field("", max_length=256)


class ApplicationOut(BaseModel):
    tenant: str
    application_id: str
    name: str
    enabled: bool

    @classmethod
    def of(cls, a: Application) -> ApplicationOut:
        return cls(tenant=a.tenant, application_id=a.application_id, name=a.name, enabled=a.enabled)


class ApiKeyOut(BaseModel):
    id: int
    tenant: str
    application_id: str
    # The key itself, only in the answer that created it.
    key: str | None = None


# -- tenants ------------------------------------------------------------------------------


@router.get("/tenants", summary="Tenants the caller may see")
def list_tenants(reg: RegistryDep, who: CallerDep) -> list[TenantOut]:
    return [TenantOut.of(t) for t in reg.tenants() if who.may_access(t.tenant)]


@router.post("/tenants", status_code=201, summary="Create a tenant (operator)")
def create_tenant(body: TenantIn, reg: RegistryDep, _: OperatorDep) -> TenantOut:
    if reg.tenant(body.tenant) is not None:
        raise ApiError(409, f"tenant {body.tenant!r} exists")
    return TenantOut.of(_registry_call(lambda: reg.add_tenant(body.tenant, body.name)))


@router.get("/tenants/{tenant}", summary="One tenant")
def get_tenant(tenant: TenantDep, reg: RegistryDep) -> TenantOut:
    record = reg.tenant(tenant)
    if record is None:
        raise ApiError(404, f"no tenant {tenant!r}")
    return TenantOut.of(record)


@router.patch(
    "/tenants/{tenant}", summary="Enable or disable a tenant (operator; disabling disconnects)"
)
def patch_tenant(tenant: str, body: EnabledPatch, reg: RegistryDep, _: OperatorDep) -> TenantOut:
    _registry_call(lambda: reg.set_tenant_enabled(tenant, body.enabled))
    record = reg.tenant(tenant)
    assert record is not None
    return TenantOut.of(record)


# -- devices ------------------------------------------------------------------------------


def _device(reg: Registry, tenant: str, device_id: str) -> Device:
    if reg.tenant(tenant) is None:
        raise ApiError(404, f"no tenant {tenant!r}")
    device = reg.device(tenant, device_id)
    if device is None:
        raise ApiError(404, f"no device {device_id!r} in tenant {tenant!r}")
    return device


@router.get("/tenants/{tenant}/devices", summary="The tenant's devices")
def list_devices(tenant: TenantDep, reg: RegistryDep) -> list[DeviceOut]:
    if reg.tenant(tenant) is None:
        raise ApiError(404, f"no tenant {tenant!r}")
    return [DeviceOut.of(d) for d in reg.devices(tenant)]


@router.post("/tenants/{tenant}/devices", status_code=201, summary="Register a device")
def create_device(tenant: TenantDep, body: DeviceIn, reg: RegistryDep) -> DeviceOut:
    if reg.device(tenant, body.device_id) is not None:
        raise ApiError(409, f"device {body.device_id!r} exists")
    device = _registry_call(
        lambda: reg.add_device(
            tenant,
            body.device_id,
            type=body.type,
            parent=body.parent,
            attributes=body.attributes,
            enabled=body.enabled,
        )
    )
    return DeviceOut.of(device)


@router.get("/tenants/{tenant}/devices/{device_id}", summary="One device")
def get_device(tenant: TenantDep, device_id: str, reg: RegistryDep) -> DeviceOut:
    return DeviceOut.of(_device(reg, tenant, device_id))


@router.patch(
    "/tenants/{tenant}/devices/{device_id}",
    summary="Enable or disable a device (disabling disconnects it)",
)
def patch_device(
    tenant: TenantDep, device_id: str, body: EnabledPatch, reg: RegistryDep
) -> DeviceOut:
    _device(reg, tenant, device_id)
    _registry_call(lambda: reg.set_device_enabled(tenant, device_id, body.enabled))
    return DeviceOut.of(_device(reg, tenant, device_id))


@router.delete(
    "/tenants/{tenant}/devices/{device_id}",
    status_code=204,
    summary="Remove a device and its credentials (disconnects it)",
)
def delete_device(tenant: TenantDep, device_id: str, reg: RegistryDep) -> Response:
    _device(reg, tenant, device_id)
    _registry_call(lambda: reg.remove_device(tenant, device_id))
    return Response(status_code=204)


# -- credentials --------------------------------------------------------------------------


@router.get(
    "/tenants/{tenant}/devices/{device_id}/credentials",
    summary="A device's credentials (never their secrets)",
)
def list_credentials(tenant: TenantDep, device_id: str, reg: RegistryDep) -> list[CredentialOut]:
    _device(reg, tenant, device_id)
    return [CredentialOut.of(c) for c in reg.credentials(tenant, device_id)]


@router.post(
    "/tenants/{tenant}/devices/{device_id}/credentials",
    status_code=201,
    summary="Add a password, token, certificate identity or device secret to a device",
)
def create_credential(
    tenant: TenantDep, device_id: str, body: CredentialIn, reg: RegistryDep
) -> CredentialOut:
    _device(reg, tenant, device_id)
    if body.kind == "password":
        if body.username is None or body.password is None:
            raise ApiError(422, "a password credential needs username and password")
        username, password = body.username, body.password
        cred = _registry_call(lambda: reg.add_password(tenant, device_id, username, password))
        return CredentialOut.of(cred)
    if body.kind == "token":
        cred_id, token = _registry_call(lambda: reg.add_token(tenant, device_id, body.token))
        made = next(c for c in reg.credentials(tenant, device_id) if c.id == cred_id)
        return CredentialOut.of(made, token=None if body.token else token)
    if body.kind == "secret":
        cred_id, secret = _registry_call(
            lambda: reg.add_device_secret(tenant, device_id, body.secret)
        )
        made = next(c for c in reg.credentials(tenant, device_id) if c.id == cred_id)
        return CredentialOut.of(made, secret=None if body.secret else secret)
    if body.identity is None:
        raise ApiError(422, "a certificate credential needs identity")
    identity = body.identity
    return CredentialOut.of(
        _registry_call(lambda: reg.add_certificate(tenant, device_id, identity))
    )


@router.delete(
    "/tenants/{tenant}/credentials/{credential_id}",
    status_code=204,
    summary="Revoke a credential (its device's connections are closed)",
)
def delete_credential(tenant: TenantDep, credential_id: int, reg: RegistryDep) -> Response:
    owned = any(
        c.id == credential_id
        for d in reg.devices(tenant)
        for c in reg.credentials(tenant, d.device_id)
    )
    if not owned:
        raise ApiError(404, f"no credential {credential_id} in tenant {tenant!r}")
    _registry_call(lambda: reg.revoke_credential(credential_id))
    return Response(status_code=204)


# -- applications and API keys --------------------------------------------------------------


@router.get("/tenants/{tenant}/applications", summary="The tenant's backend applications")
def list_applications(tenant: TenantDep, reg: RegistryDep) -> list[ApplicationOut]:
    return [ApplicationOut.of(a) for a in reg.applications(tenant)]


@router.post(
    "/tenants/{tenant}/applications", status_code=201, summary="Register a backend application"
)
def create_application(tenant: TenantDep, body: ApplicationIn, reg: RegistryDep) -> ApplicationOut:
    if any(a.application_id == body.application_id for a in reg.applications(tenant)):
        raise ApiError(409, f"application {body.application_id!r} exists")
    app = _registry_call(lambda: reg.add_application(tenant, body.application_id, body.name))
    return ApplicationOut.of(app)


@router.get("/tenants/{tenant}/api-keys", summary="The tenant's API keys (never the keys)")
def list_api_keys(tenant: TenantDep, reg: RegistryDep) -> list[ApiKeyOut]:
    return [
        ApiKeyOut(id=k.id, tenant=k.tenant, application_id=k.application_id)
        for k in reg.api_keys(tenant)
    ]


@router.post(
    "/tenants/{tenant}/applications/{application_id}/api-keys",
    status_code=201,
    summary="A new API key for an application; the key is shown only in this answer",
)
def create_api_key(tenant: TenantDep, application_id: str, reg: RegistryDep) -> ApiKeyOut:
    key_id, key = _registry_call(lambda: reg.add_api_key(tenant, application_id))
    return ApiKeyOut(id=key_id, tenant=tenant, application_id=application_id, key=key)


@router.delete("/tenants/{tenant}/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
def delete_api_key(tenant: TenantDep, key_id: int, reg: RegistryDep) -> Response:
    if not any(k.id == key_id for k in reg.api_keys(tenant)):
        raise ApiError(404, f"no API key {key_id} in tenant {tenant!r}")
    _registry_call(lambda: reg.revoke_api_key(key_id))
    return Response(status_code=204)
