"""`roost tenant|device|credential|app|apikey`: on a data directory (click's CliRunner, then
a broker that picks the changes up) and through a running Roost's HTTP API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from roost.cli import main
from roost.config import ApiConfig, RegistryConfig
from roost.registry import Registry
from tests.conftest import BrokerHandle, managed_brokers
from tests.integration.helpers import V5, V311, Client

FAST_N = 1024


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def roost(data_dir: Path, tmp_path: Path) -> Callable[..., Result]:
    """`roost("device", "list", "acme")` on the data directory (a cheap scrypt cost)."""
    config = tmp_path / "roost.toml"
    config.write_text(f'[store]\ndata_dir = "{data_dir}"\n[registry]\nscrypt_n = {FAST_N}\n')

    def run(*args: str, ok: bool = True, **kwargs: Any) -> Result:
        result = CliRunner().invoke(main, [*args, "--config", str(config)], **kwargs)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.output)


def test_data_dir_mode_every_command(roost, data_dir):
    assert "Acme" in roost("tenant", "add", "acme", "--name", "Acme").output
    roost("device", "add", "acme", "gw", "--type", "gateway")
    made = roost("device", "add", "acme", "s1", "--parent", "gw", "--attr", "site=n", "--json")
    assert as_json(made)["parent"] == "gw" and as_json(made)["attributes"] == {"site": "n"}
    listed = roost("device", "list", "acme").output.splitlines()
    assert listed[0].split() == ["TENANT", "DEVICE_ID", "TYPE", "PARENT", "ATTRIBUTES", "ENABLED"]
    assert [line.split()[1] for line in listed[1:]] == ["gw", "s1"]
    roost("credential", "add-password", "acme", "s1", "s1-user", "--password", "pw")
    token = as_json(roost("credential", "add-token", "acme", "s1", "--json"))["token"]
    roost("credential", "add-certificate", "acme", "s1", "CN=s1")
    creds = as_json(roost("credential", "list", "acme", "s1", "--json"))
    assert [(c["kind"], c["name"]) for c in creds] == [
        ("password", "s1-user"),
        ("token", None),
        ("certificate", "CN=s1"),
    ]
    assert "credentials: 1:password:s1-user, 2:token, 3:certificate:CN=s1" in (
        roost("device", "show", "acme", "s1").output
    )
    roost("app", "add", "acme", "backend")
    assert as_json(roost("app", "list", "acme", "--json"))[0]["application_id"] == "backend"
    key = as_json(roost("apikey", "add", "acme", "backend", "--json"))
    # What the CLI wrote is what the registry (and so a broker) reads.
    reg = Registry.in_data_dir(data_dir, FAST_N)
    try:
        assert reg.check_password("acme", "s1-user", b"pw") is not None
        assert reg.check_token("acme", "s1", token.encode()) is not None
        assert reg.check_api_key("acme", key["key"].encode()) is not None
    finally:
        reg.close()
    roost("apikey", "revoke", "acme", str(key["id"]))
    assert as_json(roost("apikey", "list", "acme", "--json")) == []
    roost("credential", "revoke", "acme", str(creds[0]["id"]))
    roost("device", "disable", "acme", "s1")
    assert as_json(roost("device", "enable", "acme", "s1", "--json"))["enabled"] is True
    roost("device", "remove", "acme", "s1")
    assert [d["device_id"] for d in as_json(roost("device", "list", "acme", "--json"))] == ["gw"]
    assert as_json(roost("tenant", "disable", "acme", "--json"))["enabled"] is False
    roost("tenant", "enable", "acme")
    assert as_json(roost("tenant", "list", "--json")) == [
        {"tenant": "acme", "name": "Acme", "enabled": True}
    ]


def test_refused_commands_say_why_and_change_nothing(roost):
    roost("tenant", "add", "acme")
    roost("device", "add", "acme", "d1")
    for args, message in (
        (("tenant", "add", "acme"), "tenant 'acme' exists (409)"),
        (("device", "add", "acme", "d1"), "device 'd1' exists (409)"),
        (("device", "list", "nope"), "no tenant 'nope' (404)"),
        (("device", "add", "acme", "d2", "--parent", "ghost"), "no parent device"),
        (("credential", "revoke", "acme", "99"), "no credential 99 in tenant 'acme' (404)"),
        (("apikey", "add", "acme", "ghost"), "no application 'ghost'"),
    ):
        result = roost(*args, ok=False)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    bad_attr = roost("device", "add", "acme", "d3", "--attr", "novalue", ok=False)
    assert bad_attr.exit_code == 2 and "NAME=VALUE" in bad_attr.output
    no_key = roost("tenant", "list", "--api", "http://127.0.0.1:9", ok=False)
    assert no_key.exit_code == 2 and "--key" in no_key.output
    assert [d["device_id"] for d in as_json(roost("device", "list", "acme", "--json"))] == ["d1"]


def test_password_is_prompted_without_echo(roost):
    roost("tenant", "add", "acme")
    roost("device", "add", "acme", "d1")
    result = roost("credential", "add-password", "acme", "d1", "u1", input="pw\npw\n")
    assert "pw" not in result.output  # not echoed
    mismatch = roost("credential", "add-password", "acme", "d1", "u2", input="a\nb\n\n", ok=False)
    assert mismatch.exit_code != 0


@pytest.fixture
def brokers() -> Iterator[Callable[..., BrokerHandle]]:
    yield from managed_brokers()


@pytest.fixture
def client_factory() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(handle: BrokerHandle, client_id: str, **kw: Any) -> Client:
        made.append(Client(handle, client_id, **kw))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_running_broker_picks_up_data_dir_changes(roost, data_dir, brokers, client_factory):
    """The CLI writes registry.db; the running broker reads it at its next refresh: a new
    password logs in, disabling the device disconnects it (DISCONNECT 0x98)."""
    handle = brokers(
        data_dir=str(data_dir),
        registry=RegistryConfig(enabled=True, scrypt_n=FAST_N, refresh_interval=0.2),
    )
    # The broker made the `default` tenant of its listeners at start.
    assert "default" in roost("tenant", "list").output
    roost("device", "add", "default", "d1")
    roost("credential", "add-password", "default", "d1", "d1", "--password", "pw")
    client = client_factory(handle, "d1", version=V5)
    client.paho.username_pw_set("d1", "pw")
    handle.call(handle.server.registry.refresh)  # instead of waiting for the next refresh
    client.connect()
    roost("device", "disable", "default", "d1")
    assert client.expect_disconnect().reason_code == 0x98


def test_api_mode(brokers, client_factory):
    """`--api URL --key KEY`: the same commands against a running Roost's HTTP API; an
    application key is held to its tenant; a wrong key is refused (401)."""
    handle = brokers(
        api=ApiConfig(port=0, admin_key="operator-key"),
        registry=RegistryConfig(enabled=True, scrypt_n=FAST_N),
    )
    url = f"http://127.0.0.1:{handle.server.ports['api']}"

    def cli(*args: str, key: str = "operator-key", ok: bool = True) -> Result:
        result = CliRunner().invoke(main, [*args, "--api", url, "--key", key, "--json"])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    assert cli("tenant", "add", "default", ok=False).exit_code == 1  # made at start: 409
    cli("device", "add", "default", "meter:1", "--type", "meter")
    cred = as_json(
        cli("credential", "add-password", "default", "meter:1", "m1", "--password", "pw")
    )
    assert as_json(cli("device", "show", "default", "meter:1"))["credentials"] == [
        f"{cred['id']}:password:m1"
    ]
    client = client_factory(handle, "m1", version=V311)
    client.paho.username_pw_set("m1", "pw")
    client.connect()
    cli("credential", "revoke", "default", str(cred["id"]))
    client.expect_disconnect()
    cli("app", "add", "default", "backend")
    app_key = as_json(cli("apikey", "add", "default", "backend"))["key"]
    assert [d["device_id"] for d in as_json(cli("device", "list", "default", key=app_key))] == [
        "meter:1"
    ]
    refused = cli("tenant", "add", "other", key=app_key, ok=False)
    assert refused.exit_code == 1 and "(403)" in refused.output
    wrong = cli("tenant", "list", key="rk.1.wrong", ok=False)
    assert wrong.exit_code == 1 and "(401)" in wrong.output


def test_device_secret_for_signed_logins(roost, data_dir):
    """`credential add-secret`: generated and shown once (or given), one per device, never
    listed; the registry verifies an HMAC made with it (the alibaba dialect's login)."""
    roost("tenant", "add", "a1Prod")
    roost("device", "add", "a1Prod", "lamp")
    roost("device", "add", "a1Prod", "fan")
    secret = as_json(roost("credential", "add-secret", "a1Prod", "lamp", "--json"))["secret"]
    assert len(secret) == 32
    again = roost("credential", "add-secret", "a1Prod", "lamp", ok=False)
    assert again.exit_code == 1 and "(409)" in again.output
    given = as_json(
        roost("credential", "add-secret", "a1Prod", "fan", "--secret", "s3cret-fan", "--json")
    )
    assert given["secret"] is None
    listed = roost("credential", "list", "a1Prod", "lamp", "--json")
    assert secret not in listed.output and as_json(listed)[0]["kind"] == "secret"
    reg = Registry.in_data_dir(data_dir, FAST_N)
    try:
        content = b"clientIdSN1deviceNamelampproductKeya1Prod"
        mac = hmac.new(secret.encode(), content, hashlib.sha1).digest()
        assert reg.check_hmac("a1Prod", "lamp", content, "sha1", mac) is not None
        assert reg.check_hmac("a1Prod", "fan", content, "sha1", mac) is None
    finally:
        reg.close()
