"""Who calls the API: the operator (admin key, every tenant) or an application (an API key
from the registry, its own tenant only)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from roost.api.errors import ApiError

if TYPE_CHECKING:
    from roost.server.server import RoostServer

log = logging.getLogger(__name__)

ADMIN_KEY_FILE = "admin.key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """An authenticated caller; `tenant` None means the operator."""

    tenant: str | None
    application_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.tenant is None

    def may_access(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


def admin_key(configured: str, data_dir: str | Path) -> str:
    """The operator key: the configured one, else `<data_dir>/admin.key` (made with mode
    0600 on first start)."""
    if configured:
        return configured
    path = Path(data_dir) / ADMIN_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "ra." + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    log.info("API operator key written to %s", path)
    return key


def roost(request: Request) -> RoostServer:
    """The broker process the API belongs to."""
    server: RoostServer = request.app.state.roost
    return server


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "Authorization must be 'Bearer <key>'")
        return value.strip()
    return request.headers.get("x-api-key")


def caller(request: Request) -> Caller:
    """Authenticate the request (FastAPI dependency): 401 without a valid key."""
    key = _presented_key(request)
    if key is None:
        raise ApiError(401, "an API key is required (Authorization: Bearer <key>)")
    expected: str = request.app.state.admin_key
    if secrets.compare_digest(key.encode(), expected.encode()):
        return Caller(tenant=None)
    registry = roost(request).registry
    principal = None if registry is None else registry.api_key_principal(key.encode())
    if principal is None:
        raise ApiError(401, "invalid or revoked API key")
    return Caller(tenant=principal.tenant, application_id=principal.application_id)


CallerDep = Annotated[Caller, Depends(caller)]


def operator(who: CallerDep) -> Caller:
    """Only the operator (FastAPI dependency): 403 for an application key."""
    if not who.is_operator:
        raise ApiError(403, "this operation needs the operator key")
    return who


def tenant_scope(tenant: str, who: CallerDep) -> str:
    """The `{tenant}` path parameter, if the caller may act on it (FastAPI dependency)."""
    if not who.may_access(tenant):
        raise ApiError(403, f"this API key belongs to another tenant than {tenant!r}")
    return tenant


OperatorDep = Annotated[Caller, Depends(operator)]
TenantDep = Annotated[str, Depends(tenant_scope)]
