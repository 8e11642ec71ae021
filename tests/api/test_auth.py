"""Who may call what: the operator key, application keys scoped to their tenant, and the
clear 401 / 403 answers for everyone else (nothing changes on a refused call)."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api


def test_health_needs_no_key(api: Api) -> None:
    answer = httpx.get(f"{api.base}/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_missing_key_is_401_with_error_body(api: Api) -> None:
    with api.client("") as anonymous:
        answer = anonymous.get("/tenants")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "unauthorized"


def test_wrong_scheme_and_wrong_key_are_401(api: Api) -> None:
    wrong_scheme = httpx.get(f"{api.base}/tenants", headers={"Authorization": "Basic eDp5"})
    assert wrong_scheme.status_code == 401
    for key in ("nonsense", "rk.1.guess", "rk.x.y", "operator-key-but-longer"):
        with api.client(key) as caller:
            assert caller.get("/tenants").status_code == 401, key


def test_x_api_key_header_is_accepted(api: Api) -> None:
    answer = httpx.get(f"{api.base}/tenants", headers={"X-API-Key": api.admin_key})
    assert answer.status_code == 200


def test_application_key_sees_only_its_tenant(api: Api, op: httpx.Client) -> None:
    key = api.app_key("acme")
    api.app_key("globex")
    with api.client(key) as app:
        assert [t["tenant"] for t in app.get("/tenants").json()] == ["acme"]
        assert app.get("/tenants/acme").status_code == 200
        other = app.get("/tenants/globex/devices")
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "forbidden"
        refused = app.post("/tenants/globex/devices", json={"device_id": "intruder"})
        assert refused.status_code == 403
        assert (
            app.post("/tenants/globex/publish", json={"topic": "a", "payload": "x"}).status_code
            == 403
        )
    assert op.get("/tenants/globex/devices").json() == []


def test_operator_only_operations_refuse_application_keys(api: Api, op: httpx.Client) -> None:
    key = api.app_key("acme")
    with api.client(key) as app:
        assert app.post("/tenants", json={"tenant": "mine"}).status_code == 403
        assert app.patch("/tenants/acme", json={"enabled": False}).status_code == 403
    assert [t["tenant"] for t in op.get("/tenants").json()] == ["acme", "default"]
    assert op.get("/tenants/acme").json()["enabled"] is True


def test_revoked_key_and_disabled_tenant_stop_working(api: Api, op: httpx.Client) -> None:
    key = api.app_key("acme")
    with api.client(key) as app:
        assert app.get("/tenants/acme/devices").status_code == 200
        key_id = int(key.split(".")[1])
        assert op.delete(f"/tenants/acme/api-keys/{key_id}").status_code == 204
        assert app.get("/tenants/acme/devices").status_code == 401
    second = api.app_key("acme", "second")
    assert op.patch("/tenants/acme", json={"enabled": False}).status_code == 200
    with api.client(second) as app:
        assert app.get("/tenants/acme/devices").status_code == 401


def test_api_keys_are_listed_without_the_secret(api: Api, op: httpx.Client) -> None:
    key = api.app_key("acme")
    listed = op.get("/tenants/acme/api-keys").json()
    assert len(listed) == 1
    assert listed[0]["key"] is None
    assert key.split(".")[2] not in str(listed)
