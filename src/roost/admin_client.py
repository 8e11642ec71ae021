"""The registry as the CLI sees it: the same operations on a data directory (the registry
file, which a running broker picks up at its next refresh) or on a running Roost's HTTP API.

Both answer with the JSON shapes of the HTTP API (docs/api.md), so the CLI prints one
thing whichever way it went; failures are `AdminError`s with the API's status meaning."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from roost.registry import Registry
from roost.registry.model import Application, Credential, Device, Tenant

T = TypeVar("T")
Record = dict[str, Any]


class AdminError(Exception):
    """A refused operation: `status` as the HTTP API would answer (404, 409, 401, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Admin(Protocol):
    """Registry operations; each returns the API's JSON shape."""

    def tenants(self) -> list[Record]: ...
    def add_tenant(self, tenant: str, name: str) -> Record: ...
    def set_tenant_enabled(self, tenant: str, enabled: bool) -> Record: ...
    def devices(self, tenant: str) -> list[Record]: ...
    def device(self, tenant: str, device_id: str) -> Record: ...
    def add_device(
        self, tenant: str, device_id: str, type: str, parent: str | None, attrs: Mapping[str, str]
    ) -> Record: ...
    def set_device_enabled(self, tenant: str, device_id: str, enabled: bool) -> Record: ...
    def remove_device(self, tenant: str, device_id: str) -> None: ...
    def credentials(self, tenant: str, device_id: str) -> list[Record]: ...
    def add_credential(self, tenant: str, device_id: str, body: Record) -> Record: ...
    def revoke_credential(self, tenant: str, credential_id: int) -> None: ...
    def applications(self, tenant: str) -> list[Record]: ...
    def add_application(self, tenant: str, application_id: str, name: str) -> Record: ...
    def api_keys(self, tenant: str) -> list[Record]: ...
    def add_api_key(self, tenant: str, application_id: str) -> Record: ...
    def revoke_api_key(self, tenant: str, key_id: int) -> None: ...
    def close(self) -> None: ...


def tenant_record(t: Tenant) -> Record:
    return {"tenant": t.tenant, "name": t.name, "enabled": t.enabled}


def device_record(d: Device) -> Record:
    return {
        "tenant": d.tenant,
        "device_id": d.device_id,
        "type": d.type,
        "parent": d.parent,
        "attributes": dict(d.attributes),
        "enabled": d.enabled,
    }


def credential_record(c: Credential, token: str | None = None, secret: str | None = None) -> Record:
    return {
        "id": c.id,
        "tenant": c.tenant,
        "device_id": c.device_id,
        "kind": c.kind,
        "name": c.name,
        "token": token,
        "secret": secret,
    }


def application_record(a: Application) -> Record:
    return {
        "tenant": a.tenant,
        "application_id": a.application_id,
        "name": a.name,
        "enabled": a.enabled,
    }


def _call(fn: Callable[[], T]) -> T:
    """A registry change, its errors as the API maps them: unknown 404, conflict 409."""
    try:
        return fn()
    except KeyError as exc:
        raise AdminError(404, str(exc.args[0]) if exc.args else "not found") from exc
    except ValueError as exc:
        raise AdminError(409, str(exc)) from exc


class LocalAdmin:
    """The registry file of a data directory, opened by this process."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry

    def close(self) -> None:
        self.reg.close()

    def _tenant(self, tenant: str) -> Tenant:
        record = self.reg.tenant(tenant)
        if record is None:
            raise AdminError(404, f"no tenant {tenant!r}")
        return record

    def _device(self, tenant: str, device_id: str) -> Device:
        self._tenant(tenant)
        device = self.reg.device(tenant, device_id)
        if device is None:
            raise AdminError(404, f"no device {device_id!r} in tenant {tenant!r}")
        return device

    def tenants(self) -> list[Record]:
        return [tenant_record(t) for t in self.reg.tenants()]

    def add_tenant(self, tenant: str, name: str) -> Record:
        if self.reg.tenant(tenant) is not None:
            raise AdminError(409, f"tenant {tenant!r} exists")
        return tenant_record(_call(lambda: self.reg.add_tenant(tenant, name)))

    def set_tenant_enabled(self, tenant: str, enabled: bool) -> Record:
        _call(lambda: self.reg.set_tenant_enabled(tenant, enabled))
        return tenant_record(self._tenant(tenant))

    def devices(self, tenant: str) -> list[Record]:
        self._tenant(tenant)
        return [device_record(d) for d in self.reg.devices(tenant)]

    def device(self, tenant: str, device_id: str) -> Record:
        return device_record(self._device(tenant, device_id))

    def add_device(
        self, tenant: str, device_id: str, type: str, parent: str | None, attrs: Mapping[str, str]
    ) -> Record:
        self._tenant(tenant)
        if self.reg.device(tenant, device_id) is not None:
            raise AdminError(409, f"device {device_id!r} exists")
        return device_record(
            _call(lambda: self.reg.add_device(tenant, device_id, type, parent, attrs))
        )

    def set_device_enabled(self, tenant: str, device_id: str, enabled: bool) -> Record:
        self._device(tenant, device_id)
        _call(lambda: self.reg.set_device_enabled(tenant, device_id, enabled))
        return self.device(tenant, device_id)

    def remove_device(self, tenant: str, device_id: str) -> None:
        self._device(tenant, device_id)
        _call(lambda: self.reg.remove_device(tenant, device_id))

    def credentials(self, tenant: str, device_id: str) -> list[Record]:
        self._device(tenant, device_id)
        return [credential_record(c) for c in self.reg.credentials(tenant, device_id)]

    def add_credential(self, tenant: str, device_id: str, body: Record) -> Record:
        self._device(tenant, device_id)
        reg, kind = self.reg, body["kind"]
        if kind == "password":
            cred = _call(
                lambda: reg.add_password(tenant, device_id, body["username"], body["password"])
            )
            return credential_record(cred)
        if kind == "token":
            cred_id, token = _call(lambda: reg.add_token(tenant, device_id, body.get("token")))
            made = next(c for c in reg.credentials(tenant, device_id) if c.id == cred_id)
            return credential_record(made, None if body.get("token") else token)
        if kind == "secret":
            cred_id, secret = _call(
                lambda: reg.add_device_secret(tenant, device_id, body.get("secret"))
            )
            made = next(c for c in reg.credentials(tenant, device_id) if c.id == cred_id)
            return credential_record(made, secret=None if body.get("secret") else secret)
        return credential_record(
            _call(lambda: reg.add_certificate(tenant, device_id, body["identity"]))
        )

    def revoke_credential(self, tenant: str, credential_id: int) -> None:
        owned = any(
            c.id == credential_id
            for d in self.reg.devices(tenant)
            for c in self.reg.credentials(tenant, d.device_id)
        )
        if not owned:
            raise AdminError(404, f"no credential {credential_id} in tenant {tenant!r}")
        _call(lambda: self.reg.revoke_credential(credential_id))

    def applications(self, tenant: str) -> list[Record]:
        self._tenant(tenant)
        return [application_record(a) for a in self.reg.applications(tenant)]

    def add_application(self, tenant: str, application_id: str, name: str) -> Record:
        if any(a.application_id == application_id for a in self.reg.applications(tenant)):
            raise AdminError(409, f"application {application_id!r} exists")
        return application_record(
            _call(lambda: self.reg.add_application(tenant, application_id, name))
        )

    def api_keys(self, tenant: str) -> list[Record]:
        self._tenant(tenant)
        return [
            {"id": k.id, "tenant": k.tenant, "application_id": k.application_id, "key": None}
            for k in self.reg.api_keys(tenant)
        ]

    def add_api_key(self, tenant: str, application_id: str) -> Record:
        key_id, key = _call(lambda: self.reg.add_api_key(tenant, application_id))
        return {"id": key_id, "tenant": tenant, "application_id": application_id, "key": key}

    def revoke_api_key(self, tenant: str, key_id: int) -> None:
        if not any(k.id == key_id for k in self.reg.api_keys(tenant)):
            raise AdminError(404, f"no API key {key_id} in tenant {tenant!r}")
        _call(lambda: self.reg.revoke_api_key(key_id))


def _q(segment: str) -> str:
    """One path segment, quoted (ids may hold `:` and other characters)."""
    return quote(segment, safe="")


class ApiAdmin:
    """A running Roost's HTTP API (`/api/v1`), with an operator or application key."""

    def __init__(self, url: str, key: str, timeout: float = 10.0) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, body: Record | None = None) -> Any:
        try:
            answer = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise AdminError(503, f"cannot reach the API at {self.http.base_url}: {exc}") from exc
        if answer.status_code >= 400:
            try:
                message = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = answer.text or answer.reason_phrase
            raise AdminError(answer.status_code, str(message))
        return None if answer.status_code == 204 else answer.json()

    def tenants(self) -> list[Record]:
        return list(self._send("GET", "/tenants"))

    def add_tenant(self, tenant: str, name: str) -> Record:
        return dict(self._send("POST", "/tenants", {"tenant": tenant, "name": name}))

    def set_tenant_enabled(self, tenant: str, enabled: bool) -> Record:
        return dict(self._send("PATCH", f"/tenants/{_q(tenant)}", {"enabled": enabled}))

    def devices(self, tenant: str) -> list[Record]:
        return list(self._send("GET", f"/tenants/{_q(tenant)}/devices"))

    def device(self, tenant: str, device_id: str) -> Record:
        return dict(self._send("GET", f"/tenants/{_q(tenant)}/devices/{_q(device_id)}"))

    def add_device(
        self, tenant: str, device_id: str, type: str, parent: str | None, attrs: Mapping[str, str]
    ) -> Record:
        body = {"device_id": device_id, "type": type, "parent": parent, "attributes": dict(attrs)}
        return dict(self._send("POST", f"/tenants/{_q(tenant)}/devices", body))

    def set_device_enabled(self, tenant: str, device_id: str, enabled: bool) -> Record:
        path = f"/tenants/{_q(tenant)}/devices/{_q(device_id)}"
        return dict(self._send("PATCH", path, {"enabled": enabled}))

    def remove_device(self, tenant: str, device_id: str) -> None:
        self._send("DELETE", f"/tenants/{_q(tenant)}/devices/{_q(device_id)}")

    def credentials(self, tenant: str, device_id: str) -> list[Record]:
        return list(self._send("GET", f"/tenants/{_q(tenant)}/devices/{_q(device_id)}/credentials"))

    def add_credential(self, tenant: str, device_id: str, body: Record) -> Record:
        path = f"/tenants/{_q(tenant)}/devices/{_q(device_id)}/credentials"
        return dict(self._send("POST", path, body))

    def revoke_credential(self, tenant: str, credential_id: int) -> None:
        self._send("DELETE", f"/tenants/{_q(tenant)}/credentials/{credential_id}")

    def applications(self, tenant: str) -> list[Record]:
        return list(self._send("GET", f"/tenants/{_q(tenant)}/applications"))

    def add_application(self, tenant: str, application_id: str, name: str) -> Record:
        body = {"application_id": application_id, "name": name}
        return dict(self._send("POST", f"/tenants/{_q(tenant)}/applications", body))

    def api_keys(self, tenant: str) -> list[Record]:
        return list(self._send("GET", f"/tenants/{_q(tenant)}/api-keys"))

    def add_api_key(self, tenant: str, application_id: str) -> Record:
        path = f"/tenants/{_q(tenant)}/applications/{_q(application_id)}/api-keys"
        return dict(self._send("POST", path))

    def revoke_api_key(self, tenant: str, key_id: int) -> None:
        self._send("DELETE", f"/tenants/{_q(tenant)}/api-keys/{key_id}")
