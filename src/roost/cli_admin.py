"""`roost tenant|device|credential|app|apikey ...`: the registry from the command line, on
the data directory or through a running Roost's HTTP API (`--api URL --key KEY`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from roost.admin_client import Admin, AdminError, ApiAdmin, LocalAdmin, Record
from roost.config import load
from roost.errors import ConfigError, RoostError
from roost.registry import Registry

Command = Callable[..., Any]


def _open(
    config_path: Path | None, data_dir: Path | None, api: str | None, key: str | None
) -> Admin:
    if api is not None:
        if not key:
            raise click.UsageError("--api needs --key (or ROOST_API_KEY)")
        return ApiAdmin(api, key)
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc
    directory = data_dir or Path(config.store.data_dir)
    try:
        return LocalAdmin(Registry.in_data_dir(directory, config.registry.scrypt_n))
    except RoostError as exc:
        raise click.ClickException(str(exc)) from exc


def admin_command(fn: Command) -> Command:
    """The options every registry command takes; runs `fn(admin, ...)` and turns refusals
    into a message and exit status 1 (nothing is changed by a refused command)."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="TOML config (data directory, scrypt cost).",
    )
    @click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Data directory holding registry.db (default: the config's).",
    )
    @click.option("--api", metavar="URL", help="A running Roost's HTTP API, e.g. http://host:8081.")
    @click.option("--key", envvar="ROOST_API_KEY", help="API key for --api (env ROOST_API_KEY).")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
    @functools.wraps(fn)
    def run(
        config_path: Path | None,
        data_dir: Path | None,
        api: str | None,
        key: str | None,
        as_json: bool,
        **kwargs: Any,
    ) -> None:
        admin = _open(config_path, data_dir, api, key)
        try:
            result = fn(admin, **kwargs)
        except AdminError as exc:
            raise click.ClickException(f"{exc} ({exc.status})") from exc
        finally:
            admin.close()
        if result is not None:
            _print(result, as_json)

    return run


# -- output ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def table(rows: Sequence[Record]) -> str:
    """Column-aligned text with a header line; the columns of the first row."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _print(result: Record | list[Record], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    elif isinstance(result, list):
        click.echo(table(result))
    else:
        click.echo("\n".join(f"{k}: {_cell(v)}" for k, v in result.items()))


# -- tenants ----------------------------------------------------------------------------------


@click.group()
def tenant() -> None:
    """Tenants: add, list, disable, enable."""


@tenant.command("add")
@click.argument("tenant_id")
@click.option("--name", default="", help="A display name.")
@admin_command
def tenant_add(admin: Admin, tenant_id: str, name: str) -> Record:
    """Create a tenant."""
    return admin.add_tenant(tenant_id, name)


@tenant.command("list")
@admin_command
def tenant_list(admin: Admin) -> list[Record]:
    """List tenants."""
    return admin.tenants()


@tenant.command("disable")
@click.argument("tenant_id")
@admin_command
def tenant_disable(admin: Admin, tenant_id: str) -> Record:
    """Disable a tenant: its devices are disconnected and their sessions end."""
    return admin.set_tenant_enabled(tenant_id, False)


@tenant.command("enable")
@click.argument("tenant_id")
@admin_command
def tenant_enable(admin: Admin, tenant_id: str) -> Record:
    """Enable a tenant again."""
    return admin.set_tenant_enabled(tenant_id, True)


# -- devices ----------------------------------------------------------------------------------


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--attr")
        out[name] = value
    return out


@click.group()
def device() -> None:
    """Devices: add, list, show, disable, enable, remove."""


@device.command("add")
@click.argument("tenant_id")
@click.argument("device_id")
@click.option("--type", "device_type", default="", help="Device type.")
@click.option("--parent", help="Parent device (a gateway, a SmartREST root).")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE", help="An attribute.")
@admin_command
def device_add(
    admin: Admin,
    tenant_id: str,
    device_id: str,
    device_type: str,
    parent: str | None,
    attrs: tuple[str, ...],
) -> Record:
    """Register a device."""
    return admin.add_device(tenant_id, device_id, device_type, parent, _attributes(attrs))


@device.command("list")
@click.argument("tenant_id")
@admin_command
def device_list(admin: Admin, tenant_id: str) -> list[Record]:
    """List a tenant's devices."""
    return admin.devices(tenant_id)


@device.command("show")
@click.argument("tenant_id")
@click.argument("device_id")
@admin_command
def device_show(admin: Admin, tenant_id: str, device_id: str) -> Record:
    """One device with its credentials (never their secrets)."""
    record = admin.device(tenant_id, device_id)
    record["credentials"] = [
        f"{c['id']}:{c['kind']}" + (f":{c['name']}" if c["name"] else "")
        for c in admin.credentials(tenant_id, device_id)
    ]
    return record


@device.command("disable")
@click.argument("tenant_id")
@click.argument("device_id")
@admin_command
def device_disable(admin: Admin, tenant_id: str, device_id: str) -> Record:
    """Disable a device: it is disconnected and its sessions end."""
    return admin.set_device_enabled(tenant_id, device_id, False)


@device.command("enable")
@click.argument("tenant_id")
@click.argument("device_id")
@admin_command
def device_enable(admin: Admin, tenant_id: str, device_id: str) -> Record:
    """Enable a device again."""
    return admin.set_device_enabled(tenant_id, device_id, True)


@device.command("remove")
@click.argument("tenant_id")
@click.argument("device_id")
@admin_command
def device_remove(admin: Admin, tenant_id: str, device_id: str) -> Record:
    """Remove a device and its credentials."""
    admin.remove_device(tenant_id, device_id)
    return {"removed": device_id, "tenant": tenant_id}


# -- credentials ------------------------------------------------------------------------------


@click.group()
def credential() -> None:
    """Device credentials: add-password, add-token, add-certificate, add-secret, list, revoke."""


@credential.command("add-password")
@click.argument("tenant_id")
@click.argument("device_id")
@click.argument("username")
@click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True, help="(prompted)"
)
@admin_command
def credential_add_password(
    admin: Admin, tenant_id: str, device_id: str, username: str, password: str
) -> Record:
    """A username (unique in the tenant) and password for the device."""
    body = {"kind": "password", "username": username, "password": password}
    return admin.add_credential(tenant_id, device_id, body)


@credential.command("add-token")
@click.argument("tenant_id")
@click.argument("device_id")
@click.option("--token", help="The token (default: generated, shown once).")
@admin_command
def credential_add_token(admin: Admin, tenant_id: str, device_id: str, token: str | None) -> Record:
    """A device token; a generated one is shown in this output only."""
    body: Record = {"kind": "token"}
    if token is not None:
        body["token"] = token
    return admin.add_credential(tenant_id, device_id, body)


@credential.command("add-secret")
@click.argument("tenant_id")
@click.argument("device_id")
@click.option("--secret", help="The device secret (default: generated, shown once).")
@admin_command
def credential_add_secret(
    admin: Admin, tenant_id: str, device_id: str, secret: str | None
) -> Record:
    """The device secret of signed logins (Alibaba: tenant = product key, device = name)."""
    body: Record = {"kind": "secret"}
    if secret is not None:
        body["secret"] = secret
    return admin.add_credential(tenant_id, device_id, body)


@credential.command("add-certificate")
@click.argument("tenant_id")
@click.argument("device_id")
@click.argument("identity")
@admin_command
def credential_add_certificate(
    admin: Admin, tenant_id: str, device_id: str, identity: str
) -> Record:
    """A client certificate by SHA-256 fingerprint or subject (CN / SAN)."""
    return admin.add_credential(tenant_id, device_id, {"kind": "certificate", "identity": identity})


@credential.command("list")
@click.argument("tenant_id")
@click.argument("device_id")
@admin_command
def credential_list(admin: Admin, tenant_id: str, device_id: str) -> list[Record]:
    """A device's credentials (never their secrets)."""
    return [
        {k: v for k, v in c.items() if k not in ("token", "secret")}
        for c in admin.credentials(tenant_id, device_id)
    ]


@credential.command("revoke")
@click.argument("tenant_id")
@click.argument("credential_id", type=int)
@admin_command
def credential_revoke(admin: Admin, tenant_id: str, credential_id: int) -> Record:
    """Revoke a credential: its device is disconnected and its sessions end."""
    admin.revoke_credential(tenant_id, credential_id)
    return {"revoked": credential_id, "tenant": tenant_id}


# -- applications and API keys ----------------------------------------------------------------


@click.group()
def app() -> None:
    """Backend applications: add, list."""


@app.command("add")
@click.argument("tenant_id")
@click.argument("application_id")
@click.option("--name", default="", help="A display name.")
@admin_command
def app_add(admin: Admin, tenant_id: str, application_id: str, name: str) -> Record:
    """Register a backend application."""
    return admin.add_application(tenant_id, application_id, name)


@app.command("list")
@click.argument("tenant_id")
@admin_command
def app_list(admin: Admin, tenant_id: str) -> list[Record]:
    """List a tenant's applications."""
    return admin.applications(tenant_id)


@click.group()
def apikey() -> None:
    """API keys of applications: add, list, revoke."""


@apikey.command("add")
@click.argument("tenant_id")
@click.argument("application_id")
@admin_command
def apikey_add(admin: Admin, tenant_id: str, application_id: str) -> Record:
    """A new API key; the key is shown in this output only."""
    return admin.add_api_key(tenant_id, application_id)


@apikey.command("list")
@click.argument("tenant_id")
@admin_command
def apikey_list(admin: Admin, tenant_id: str) -> list[Record]:
    """A tenant's API keys (never the keys)."""
    return [{k: v for k, v in r.items() if k != "key"} for r in admin.api_keys(tenant_id)]


@apikey.command("revoke")
@click.argument("tenant_id")
@click.argument("key_id", type=int)
@admin_command
def apikey_revoke(admin: Admin, tenant_id: str, key_id: int) -> Record:
    """Revoke an API key."""
    admin.revoke_api_key(tenant_id, key_id)
    return {"revoked": key_id, "tenant": tenant_id}


GROUPS = (tenant, device, credential, app, apikey)
