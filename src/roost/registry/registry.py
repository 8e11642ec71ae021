"""The device registry: tenants, devices, credentials and API keys in SQLite, answered
from memory. Loaded at start, written through on change; revocations are announced."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from roost.auth.credentials import Principal
from roost.errors import StoreError
from roost.registry.kdf import SCRYPT_N, SecretHash, fast_digest, hash_secret, verify_secret
from roost.registry.model import ApiKey, Application, Credential, Device, Tenant, _Snapshot
from roost.registry.schema import migrate

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.db"
API_KEY_PREFIX = "rk"

# Called with (tenant, device_id) when a device may no longer be connected.
RevokeHook = Callable[[str, str], None]


class Registry:
    """The registry; implements `roost.auth.credentials.CredentialStore`.

    Reads never touch the disk. Writes go to SQLite first, then to memory; a revocation
    (device disabled or removed, credential revoked, tenant disabled) calls every hook
    registered with `on_revoke`. `refresh()` picks up changes another process made."""

    def __init__(self, path: str | Path | None, scrypt_n: int = SCRYPT_N) -> None:
        """`path` is the database file, or None for a registry in memory only (tests)."""
        self.path = None if path is None else Path(path)
        self.scrypt_n = scrypt_n
        self._lock = threading.RLock()
        self._hooks: list[RevokeHook] = []
        # Keyed digests of secrets that passed a check, so the slow KDF runs once per
        # credential and secret; the key lives only in this process.
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[int, bytes] = {}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if self.path is None else str(self.path)
        try:
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                os.chmod(self.path, 0o600)
            migrate(self._db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the registry {target}: {exc}") from exc
        self._data_version = self._version()
        self._snap = self._load()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path, scrypt_n: int = SCRYPT_N) -> Registry:
        return cls(Path(data_dir) / REGISTRY_FILE, scrypt_n)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def on_revoke(self, hook: RevokeHook) -> None:
        self._hooks.append(hook)

    # -- loading -------------------------------------------------------------------------

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _load(self) -> _Snapshot:
        snap = _Snapshot()
        db = self._db
        for tenant, name, enabled in db.execute("SELECT tenant, name, enabled FROM tenants"):
            snap.tenants[tenant] = Tenant(tenant=tenant, name=name, enabled=bool(enabled))
        for row in db.execute(
            "SELECT tenant, device_id, type, parent, attributes, enabled FROM devices"
        ):
            tenant, device_id, type_, parent, attributes, enabled = row
            snap.devices[(tenant, device_id)] = Device(
                tenant=tenant,
                device_id=device_id,
                type=type_,
                parent=parent,
                attributes=json.loads(attributes),
                enabled=bool(enabled),
            )
        for row in db.execute(
            "SELECT id, tenant, device_id, kind, name, scheme, salt, secret FROM credentials"
        ):
            id_, tenant, device_id, kind, name, scheme, salt, secret = row
            stored = None if scheme is None else SecretHash(scheme, salt, secret)
            if kind == "secret":
                snap.secrets[id_] = bytes(secret)
                stored = None
            snap.credentials[id_] = Credential(
                id=id_, tenant=tenant, device_id=device_id, kind=kind, name=name, secret=stored
            )
        for tenant, app_id, name, enabled in db.execute(
            "SELECT tenant, application_id, name, enabled FROM applications"
        ):
            snap.applications[(tenant, app_id)] = Application(
                tenant=tenant, application_id=app_id, name=name, enabled=bool(enabled)
            )
        for id_, tenant, app_id, salt, secret in db.execute(
            "SELECT id, tenant, application_id, salt, secret FROM api_keys"
        ):
            snap.api_keys[id_] = ApiKey(
                id=id_,
                tenant=tenant,
                application_id=app_id,
                secret=SecretHash("sha256", salt, secret),
            )
        snap.index()
        return snap

    def refresh(self) -> bool:
        """Reload if another connection changed the database; announce what it revoked.
        True when something was reloaded."""
        with self._lock:
            version = self._version()
            if version == self._data_version:
                return False
            self._data_version = version
            before = self._snap
            self._snap = after = self._load()
            self._verified.clear()
        revoked: set[tuple[str, str]] = set()
        for key in before.devices:
            if self._device_active(before, *key) and not self._device_active(after, *key):
                revoked.add(key)
        for id_, cred in before.credentials.items():
            if id_ not in after.credentials:
                revoked.add((cred.tenant, cred.device_id))
        for key in sorted(revoked):
            self._announce(*key)
        return True

    def _announce(self, tenant: str, device_id: str) -> None:
        log.info("registry: device %s/%s revoked", tenant, device_id)
        for hook in list(self._hooks):
            try:
                hook(tenant, device_id)
            except Exception:
                log.exception("revocation hook failed")

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        """One statement in its own transaction; returns the last row id."""
        try:
            cursor = self._db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise ValueError(str(exc)) from exc
        self._data_version = self._version()
        return int(cursor.lastrowid or 0)

    # -- tenants ---------------------------------------------------------------------------

    def add_tenant(self, tenant: str, name: str = "") -> Tenant:
        if not tenant or "/" in tenant or "+" in tenant or "#" in tenant:
            raise ValueError(f"invalid tenant id {tenant!r}")
        with self._lock:
            self._write(
                "INSERT INTO tenants (tenant, name, enabled, created_at) VALUES (?, ?, 1, ?)",
                (tenant, name, time.time()),
            )
            record = self._snap.tenants[tenant] = Tenant(tenant=tenant, name=name)
        return record

    def set_tenant_enabled(self, tenant: str, enabled: bool) -> None:
        with self._lock:
            record = self._require_tenant(tenant)
            self._write("UPDATE tenants SET enabled = ? WHERE tenant = ?", (int(enabled), tenant))
            self._snap.tenants[tenant] = replace(record, enabled=enabled)
            devices = [d for (t, d) in self._snap.devices if t == tenant]
        if not enabled:
            for device_id in devices:
                self._announce(tenant, device_id)

    def tenant(self, tenant: str) -> Tenant | None:
        return self._snap.tenants.get(tenant)

    def tenants(self) -> list[Tenant]:
        return sorted(self._snap.tenants.values(), key=lambda t: t.tenant)

    def has_tenant(self, tenant: str) -> bool:
        record = self._snap.tenants.get(tenant)
        return record is not None and record.enabled

    def _require_tenant(self, tenant: str) -> Tenant:
        record = self._snap.tenants.get(tenant)
        if record is None:
            raise KeyError(f"no tenant {tenant!r}")
        return record

    # -- devices ---------------------------------------------------------------------------

    def add_device(
        self,
        tenant: str,
        device_id: str,
        type: str = "",
        parent: str | None = None,
        attributes: Mapping[str, str] | None = None,
        enabled: bool = True,
    ) -> Device:
        attrs = dict(attributes or {})
        with self._lock:
            self._require_tenant(tenant)
            if parent is not None and (tenant, parent) not in self._snap.devices:
                raise KeyError(f"no parent device {parent!r} in tenant {tenant!r}")
            self._write(
                "INSERT INTO devices (tenant, device_id, type, parent, attributes, enabled, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant, device_id, type, parent, json.dumps(attrs), int(enabled), time.time()),
            )
            device = Device(
                tenant=tenant,
                device_id=device_id,
                type=type,
                parent=parent,
                attributes=attrs,
                enabled=enabled,
            )
            self._snap.devices[(tenant, device_id)] = device
        return device

    def device(self, tenant: str, device_id: str) -> Device | None:
        return self._snap.devices.get((tenant, device_id))

    def devices(self, tenant: str) -> list[Device]:
        return sorted(
            (d for (t, _), d in self._snap.devices.items() if t == tenant),
            key=lambda d: d.device_id,
        )

    def set_device_enabled(self, tenant: str, device_id: str, enabled: bool) -> None:
        """Disabling a device disconnects it (through the revocation hooks)."""
        with self._lock:
            device = self._snap.devices.get((tenant, device_id))
            if device is None:
                raise KeyError(f"no device {device_id!r} in tenant {tenant!r}")
            self._write(
                "UPDATE devices SET enabled = ? WHERE tenant = ? AND device_id = ?",
                (int(enabled), tenant, device_id),
            )
            self._snap.devices[(tenant, device_id)] = replace(device, enabled=enabled)
        if not enabled:
            self._announce(tenant, device_id)

    def remove_device(self, tenant: str, device_id: str) -> None:
        with self._lock:
            if (tenant, device_id) not in self._snap.devices:
                raise KeyError(f"no device {device_id!r} in tenant {tenant!r}")
            self._write(
                "DELETE FROM devices WHERE tenant = ? AND device_id = ?", (tenant, device_id)
            )
            del self._snap.devices[(tenant, device_id)]
            snap = self._snap
            for id_, cred in list(snap.credentials.items()):
                if cred.tenant == tenant and cred.device_id == device_id:
                    del snap.credentials[id_]
                    snap.secrets.pop(id_, None)
                    self._verified.pop(id_, None)
            snap.index()
        self._announce(tenant, device_id)

    @staticmethod
    def _device_active(snap: _Snapshot, tenant: str, device_id: str) -> bool:
        device = snap.devices.get((tenant, device_id))
        record = snap.tenants.get(tenant)
        return device is not None and device.enabled and record is not None and record.enabled

    # -- credentials -----------------------------------------------------------------------

    def _add_credential(
        self, tenant: str, device_id: str, kind: str, name: str | None, secret: bytes | None
    ) -> Credential:
        stored = None if secret is None else hash_secret(secret, self.scrypt_n)
        with self._lock:
            if (tenant, device_id) not in self._snap.devices:
                raise KeyError(f"no device {device_id!r} in tenant {tenant!r}")
            id_ = self._write(
                "INSERT INTO credentials (tenant, device_id, kind, name, scheme, salt, secret, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant,
                    device_id,
                    kind,
                    name,
                    None if stored is None else stored.scheme,
                    None if stored is None else stored.salt,
                    None if stored is None else stored.key,
                    time.time(),
                ),
            )
            cred = Credential(
                id=id_, tenant=tenant, device_id=device_id, kind=kind, name=name, secret=stored
            )
            self._snap.credentials[id_] = cred
            self._snap.index()
        return cred

    def add_password(
        self, tenant: str, device_id: str, username: str, password: str | bytes
    ) -> Credential:
        """A username (unique in the tenant) and password for the device."""
        secret = password.encode() if isinstance(password, str) else password
        return self._add_credential(tenant, device_id, "password", username, secret)

    def add_token(self, tenant: str, device_id: str, token: str | None = None) -> tuple[int, str]:
        """A device token (generated unless given); returns (credential id, token). The token
        is not stored, only its hash: it cannot be shown again."""
        token = token or secrets.token_urlsafe(24)
        cred = self._add_credential(tenant, device_id, "token", None, token.encode())
        return cred.id, token

    def add_certificate(self, tenant: str, device_id: str, identity: str) -> Credential:
        """A client certificate, by its SHA-256 fingerprint or its subject (CN / SAN)."""
        return self._add_credential(tenant, device_id, "certificate", identity, None)

    def add_device_secret(
        self, tenant: str, device_id: str, secret: str | None = None
    ) -> tuple[int, str]:
        """The device's secret for signed logins (generated unless given: 32 characters);
        returns (credential id, secret). One per device; it is stored as it is, because
        verifying an HMAC needs it (the registry file is 0600; docs/dialects.md)."""
        secret = secret or secrets.token_hex(16)
        with self._lock:
            if (tenant, device_id) not in self._snap.devices:
                raise KeyError(f"no device {device_id!r} in tenant {tenant!r}")
            id_ = self._write(
                "INSERT INTO credentials (tenant, device_id, kind, name, scheme, salt, secret, "
                "created_at) VALUES (?, ?, 'secret', NULL, 'plain', NULL, ?, ?)",
                (tenant, device_id, secret.encode(), time.time()),
            )
            snap = self._snap
            snap.credentials[id_] = Credential(
                id=id_, tenant=tenant, device_id=device_id, kind="secret"
            )
            snap.secrets[id_] = secret.encode()
            snap.index()
        return id_, secret

    def credentials(self, tenant: str, device_id: str) -> list[Credential]:
        return sorted(
            (
                c
                for c in self._snap.credentials.values()
                if c.tenant == tenant and c.device_id == device_id
            ),
            key=lambda c: c.id,
        )

    def revoke_credential(self, credential_id: int) -> None:
        """Remove a credential; connections of its device are disconnected."""
        with self._lock:
            cred = self._snap.credentials.get(credential_id)
            if cred is None:
                raise KeyError(f"no credential {credential_id}")
            self._write("DELETE FROM credentials WHERE id = ?", (credential_id,))
            del self._snap.credentials[credential_id]
            self._snap.secrets.pop(credential_id, None)
            self._verified.pop(credential_id, None)
            self._snap.index()
        self._announce(cred.tenant, cred.device_id)

    def _passes(self, cred: Credential, secret: bytes) -> bool:
        stored = cred.secret
        if stored is None:
            return False
        digest = fast_digest(self._cache_key, secret)
        known = self._verified.get(cred.id)
        if known is not None and secrets.compare_digest(known, digest):
            return True
        if not verify_secret(secret, stored):
            return False
        if self._snap.credentials.get(cred.id) is cred:  # not revoked meanwhile
            self._verified[cred.id] = digest
        return True

    def _principal(self, cred: Credential) -> Principal | None:
        if not self._device_active(self._snap, cred.tenant, cred.device_id):
            return None
        return Principal(tenant=cred.tenant, device_id=cred.device_id, username=cred.name)

    def check_password(self, tenant: str, username: str, password: bytes) -> Principal | None:
        snap = self._snap
        id_ = snap.passwords.get((tenant, username))
        cred = None if id_ is None else snap.credentials.get(id_)
        if cred is None:
            return None
        if not self._passes(cred, password):
            return None
        return self._principal(cred)

    def check_token(self, tenant: str, device_id: str, token: bytes) -> Principal | None:
        snap = self._snap
        for id_ in snap.tokens.get((tenant, device_id), ()):
            cred = snap.credentials.get(id_)
            if cred is not None and self._passes(cred, token):
                return self._principal(cred)
        return None

    def check_hmac(
        self, tenant: str, device_id: str, content: bytes, digest: str, mac: bytes
    ) -> Principal | None:
        snap = self._snap
        id_ = snap.device_secrets.get((tenant, device_id))
        secret = None if id_ is None else snap.secrets.get(id_)
        if id_ is None or secret is None:
            return None
        if not hmac.compare_digest(hmac.digest(secret, content, digest), mac):
            return None
        return self._principal(snap.credentials[id_])

    def has_device_secret(self, tenant: str, device_id: str) -> bool:
        snap = self._snap
        return (tenant, device_id) in snap.device_secrets and self._device_active(
            snap, tenant, device_id
        )

    def check_certificate(self, tenant: str, identity: str) -> Principal | None:
        snap = self._snap
        id_ = snap.certificates.get((tenant, identity))
        cred = None if id_ is None else snap.credentials.get(id_)
        return None if cred is None else self._principal(cred)

    # -- applications and API keys -----------------------------------------------------------

    def add_application(self, tenant: str, application_id: str, name: str = "") -> Application:
        with self._lock:
            self._require_tenant(tenant)
            self._write(
                "INSERT INTO applications (tenant, application_id, name, enabled, created_at) "
                "VALUES (?, ?, ?, 1, ?)",
                (tenant, application_id, name, time.time()),
            )
            app = Application(tenant=tenant, application_id=application_id, name=name)
            self._snap.applications[(tenant, application_id)] = app
        return app

    def applications(self, tenant: str) -> list[Application]:
        return sorted(
            (a for (t, _), a in self._snap.applications.items() if t == tenant),
            key=lambda a: a.application_id,
        )

    def api_keys(self, tenant: str) -> list[ApiKey]:
        return sorted(
            (k for k in self._snap.api_keys.values() if k.tenant == tenant), key=lambda k: k.id
        )

    def add_api_key(self, tenant: str, application_id: str) -> tuple[int, str]:
        """A new API key for the application: (key id, key). Only a salted SHA-256 of the
        key's random part is stored (it has 192 bits of entropy; no slow KDF needed)."""
        secret = secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        digest = fast_digest(salt, secret.encode())
        with self._lock:
            if (tenant, application_id) not in self._snap.applications:
                raise KeyError(f"no application {application_id!r} in tenant {tenant!r}")
            id_ = self._write(
                "INSERT INTO api_keys (tenant, application_id, salt, secret, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (tenant, application_id, salt, digest, time.time()),
            )
            self._snap.api_keys[id_] = ApiKey(
                id=id_,
                tenant=tenant,
                application_id=application_id,
                secret=SecretHash("sha256", salt, digest),
            )
        return id_, f"{API_KEY_PREFIX}.{id_}.{secret}"

    def revoke_api_key(self, key_id: int) -> None:
        with self._lock:
            if key_id not in self._snap.api_keys:
                raise KeyError(f"no API key {key_id}")
            self._write("DELETE FROM api_keys WHERE id = ?", (key_id,))
            del self._snap.api_keys[key_id]

    def check_api_key(self, tenant: str, key: bytes) -> Principal | None:
        principal = self.api_key_principal(key)
        if principal is None or principal.tenant != tenant:
            return None
        return principal

    def api_key_principal(self, key: bytes) -> Principal | None:
        """The application owning this API key, whatever its tenant (the key names its
        own record), if neither the key is revoked nor the application disabled."""
        try:
            prefix, id_text, secret = key.decode().split(".", 2)
            key_id = int(id_text)
        except (ValueError, UnicodeDecodeError):
            return None
        record = self._snap.api_keys.get(key_id)
        if prefix != API_KEY_PREFIX or record is None:
            return None
        tenant = record.tenant
        digest = fast_digest(record.secret.salt, secret.encode())
        if not secrets.compare_digest(digest, record.secret.key):
            return None
        app = self._snap.applications.get((tenant, record.application_id))
        if app is None or not app.enabled or not self.has_tenant(tenant):
            return None
        return Principal(tenant=tenant, application_id=record.application_id)
