"""Tenants, devices and credentials through the API, checked against real MQTT clients:
a credential made through the API logs a device in; disabling or revoking drops it."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.api.conftest import Api
from tests.dialects.alibaba_support import PK1, sign
from tests.dialects.support import at, dialect_listener
from tests.integration.helpers import V5, V311, Client


def make_device(op: httpx.Client, tenant: str, device_id: str, **fields: object) -> None:
    op.post("/tenants", json={"tenant": tenant})
    made = op.post(f"/tenants/{tenant}/devices", json={"device_id": device_id, **fields})
    assert made.status_code == 201, made.text


def test_openapi_document_describes_the_api(api: Api) -> None:
    document = httpx.get(api.base.replace("/v1", "/openapi.json")).json()
    assert document["info"]["title"] == "Roost API"
    paths = document["paths"]
    for path in (
        "/api/v1/tenants",
        "/api/v1/tenants/{tenant}/devices/{device_id}/credentials",
        "/api/v1/tenants/{tenant}/sessions/{client_id}",
        "/api/v1/tenants/{tenant}/publish",
    ):
        assert path in paths, path


def test_tenant_create_list_conflict_and_bad_ids(op: httpx.Client) -> None:
    assert op.post("/tenants", json={"tenant": "acme", "name": "Acme"}).status_code == 201
    again = op.post("/tenants", json={"tenant": "acme"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    for bad in ("", "a/b", "a+b", "#", "x" * 65):
        answer = op.post("/tenants", json={"tenant": bad})
        assert answer.status_code == 422, bad
        assert answer.json()["error"]["message"].startswith("body.tenant")
    assert (
        op.post(
            "/tenants", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert [t["tenant"] for t in op.get("/tenants").json()] == ["acme", "default"]
    assert op.get("/tenants/nope").status_code == 404


def test_device_lifecycle(op: httpx.Client) -> None:
    make_device(op, "acme", "gw", type="gateway", attributes={"site": "north"})
    make_device(op, "acme", "child", parent="gw")
    assert op.post("/tenants/acme/devices", json={"device_id": "gw"}).status_code == 409
    orphan = op.post("/tenants/acme/devices", json={"device_id": "x", "parent": "missing"})
    assert orphan.status_code == 404
    assert op.post("/tenants/nope/devices", json={"device_id": "x"}).status_code == 404
    devices = op.get("/tenants/acme/devices").json()
    assert [d["device_id"] for d in devices] == ["child", "gw"]
    gw = op.get("/tenants/acme/devices/gw").json()
    assert gw["type"] == "gateway" and gw["attributes"] == {"site": "north"}
    assert op.get("/tenants/acme/devices/child").json()["parent"] == "gw"
    assert op.patch("/tenants/acme/devices/gw", json={"enabled": False}).json()["enabled"] is False
    assert op.patch("/tenants/acme/devices/gw", json={"enabled": "maybe"}).status_code == 422
    assert op.delete("/tenants/acme/devices/child").status_code == 204
    assert op.get("/tenants/acme/devices/child").status_code == 404
    assert op.delete("/tenants/acme/devices/child").status_code == 404


def test_credential_validation(op: httpx.Client) -> None:
    make_device(op, "acme", "d1")
    base = "/tenants/acme/devices/d1/credentials"
    assert op.post(base, json={"kind": "password", "username": "u"}).status_code == 422
    assert op.post(base, json={"kind": "certificate"}).status_code == 422
    assert op.post(base, json={"kind": "telepathy"}).status_code == 422
    assert op.post(base, json={"kind": "token", "token": "short"}).status_code == 422
    assert (
        op.post("/tenants/acme/devices/ghost/credentials", json={"kind": "token"}).status_code
        == 404
    )
    assert op.get(base).json() == []


def test_password_made_through_the_api_logs_a_device_in(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client]
) -> None:
    make_device(op, "default", "sensor-1")
    made = op.post(
        "/tenants/default/devices/sensor-1/credentials",
        json={"kind": "password", "username": "sensor-1", "password": "s3cret-pass"},
    )
    assert made.status_code == 201
    assert "s3cret" not in made.text
    listed = op.get("/tenants/default/devices/sensor-1/credentials").json()
    assert [(c["kind"], c["name"]) for c in listed] == [("password", "sensor-1")]

    good = client_factory(api.handle, "sensor-1", version=V311)
    good.paho.username_pw_set("sensor-1", "s3cret-pass")
    good.connect()
    bad = client_factory(api.handle, "sensor-x", version=V311)
    bad.paho.username_pw_set("sensor-1", "wrong")
    # paho reports the 3.1.1 return code 0x04 as its v5 equivalent 0x86.
    assert bad.connect(expect_success=False).reason_code == 0x86


@pytest.mark.parametrize("action", ["revoke-credential", "disable-device", "remove-device"])
def test_revocation_through_the_api_disconnects_within_a_second(
    api: Api, op: httpx.Client, client_factory: Callable[..., Client], action: str
) -> None:
    make_device(op, "default", "meter")
    cred = op.post(
        "/tenants/default/devices/meter/credentials",
        json={"kind": "password", "username": "meter", "password": "pw-pw-pw"},
    ).json()
    client = client_factory(api.handle, "meter", version=V5)
    client.paho.username_pw_set("meter", "pw-pw-pw")
    client.connect()
    started = time.monotonic()
    if action == "revoke-credential":
        assert op.delete(f"/tenants/default/credentials/{cred['id']}").status_code == 204
    elif action == "disable-device":
        assert (
            op.patch("/tenants/default/devices/meter", json={"enabled": False}).status_code == 200
        )
    else:
        assert op.delete("/tenants/default/devices/meter").status_code == 204
    gone = client.expect_disconnect(timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert gone.reason_code == 0x98  # Administrative action
    again = client_factory(api.handle, "meter", version=V5)
    again.paho.username_pw_set("meter", "pw-pw-pw")
    assert again.connect(expect_success=False).reason_code == 0x86


def test_generated_token_is_shown_once(op: httpx.Client) -> None:
    make_device(op, "acme", "d1")
    made = op.post("/tenants/acme/devices/d1/credentials", json={"kind": "token"}).json()
    assert made["kind"] == "token" and len(made["token"]) >= 24
    listed = op.get("/tenants/acme/devices/d1/credentials").json()
    assert listed[0]["token"] is None
    given = op.post(
        "/tenants/acme/devices/d1/credentials", json={"kind": "token", "token": "my-own-token"}
    ).json()
    assert given["token"] is None


def test_credential_of_another_tenant_cannot_be_revoked(api: Api, op: httpx.Client) -> None:
    make_device(op, "acme", "d1")
    cred = op.post("/tenants/acme/devices/d1/credentials", json={"kind": "token"}).json()
    key = api.app_key("globex")
    with api.client(key) as globex:
        assert globex.delete(f"/tenants/globex/credentials/{cred['id']}").status_code == 404
    assert len(op.get("/tenants/acme/devices/d1/credentials").json()) == 1


def test_device_secret_is_generated_shown_once_and_signs_an_alibaba_login(
    api_factory: Callable[..., Api], clients: Callable[..., Client]
) -> None:
    """The `secret` kind: Registry.add_device_secret through the API (docs/dialects.md)."""
    api = api_factory(listeners=(dialect_listener("ali", "alibaba"),))
    with api.client() as op:
        make_device(op, PK1, "lamp")
        base = f"/tenants/{PK1}/devices/lamp/credentials"
        made = op.post(base, json={"kind": "secret"})
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert made.json()["kind"] == "secret" and len(secret) == 32
        listed = op.get(base).json()
        assert [(c["kind"], c["secret"], c["token"]) for c in listed] == [("secret", None, None)]
        again = op.post(base, json={"kind": "secret", "secret": "another-secret"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert op.post(base, json={"kind": "secret", "secret": "short"}).status_code == 422
        assert len(op.get(base).json()) == 1
        make_device(op, PK1, "given")
        given = op.post(
            f"/tenants/{PK1}/devices/given/credentials",
            json={"kind": "secret", "secret": "my-own-device-secret"},
        ).json()
        assert given["secret"] is None
    ali = at(api.handle, "ali")
    for dn, key in (("lamp", secret), ("given", "my-own-device-secret")):
        client_id, username, password = sign(PK1, dn, key)
        good = clients(ali, client_id, username=username, password=password, version=V311)
        good.connect()
    client_id, username, password = sign(PK1, "lamp", "my-own-device-secret")
    bad = clients(ali, client_id, username=username, password=password, version=V5)
    assert bad.connect(expect_success=False).reason_code == 0x86
