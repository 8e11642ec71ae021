"""Alibaba RRPC through the HTTP API: a backend calls a signed Alibaba device and gets its
answer; an offline device, a silent device and bad input get clear 4xx / 504 answers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import httpx
import pytest

from roost.config import ApiConfig
from tests.conftest import BrokerHandle
from tests.dialects.alibaba_support import PK1, answer, sign
from tests.dialects.support import at, dialect_listener, platform, registry_of
from tests.integration.helpers import V311, Client


@pytest.fixture
def alibaba() -> Iterator[tuple[BrokerHandle, httpx.Client, str]]:
    handle = platform(dialect_listener("ali", "alibaba"), api=ApiConfig(port=0, admin_key="op"))
    registry = registry_of(handle)
    registry.add_tenant(PK1)
    registry.add_device(PK1, "lamp")
    secret = registry.add_device_secret(PK1, "lamp")[1]
    base = f"http://127.0.0.1:{handle.server.ports['api']}/api/v1"
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer op"}, timeout=15) as op:
        yield at(handle, "ali"), op, secret
    handle.stop()


def lamp(make: Callable[..., Client], handle: BrokerHandle, secret: str) -> Client:
    client_id, username, password = sign(PK1, "lamp", secret)
    device = make(handle, client_id, username=username, password=password, version=V311)
    device.connect()
    return device


def test_rrpc_call_returns_the_devices_answer(
    alibaba: tuple[BrokerHandle, httpx.Client, str], clients: Callable[..., Client]
) -> None:
    handle, op, secret = alibaba
    device = lamp(clients, handle, secret)
    answer(
        device, lambda topic, payload: (topic.replace("/request/", "/response/"), b"on:" + payload)
    )
    assert device.subscribe(f"/sys/{PK1}/lamp/rrpc/request/+", 0) == [1]
    reply = op.post(
        f"/tenants/{PK1}/devices/lamp/rrpc", json={"payload": "switch", "timeout_ms": 5000}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["payload"] == "on:switch"
    binary = op.post(
        f"/tenants/{PK1}/devices/lamp/rrpc",
        json={"payload_base64": base64.b64encode(b"\xff\x00").decode()},
    ).json()
    assert base64.b64decode(binary["payload_base64"]) == b"on:\xff\x00"


def test_rrpc_offline_silent_and_bad_input(
    alibaba: tuple[BrokerHandle, httpx.Client, str], clients: Callable[..., Client]
) -> None:
    handle, op, secret = alibaba
    url = f"/tenants/{PK1}/devices/lamp/rrpc"
    offline = op.post(url, json={"payload": "x"})
    assert offline.status_code == 409
    assert offline.json()["error"]["code"] == "device_offline"
    device = lamp(clients, handle, secret)
    device.subscribe(f"/sys/{PK1}/lamp/rrpc/request/+", 0)
    silent = op.post(url, json={"payload": "x", "timeout_ms": 1000})
    assert silent.status_code == 504
    assert device.expect_message().payload == b"x"
    for body in (
        {"payload": "x", "timeout_ms": 9000},
        {"payload": "x", "timeout_ms": 10},
        {"payload": "x", "payload_base64": "eA=="},
    ):
        assert op.post(url, json=body).status_code == 422, body
    assert op.post(url, json={"payload": "x", "topic": "no-slash"}).status_code == 400
    assert op.post(url, json={"payload_base64": "%%"}).status_code == 400
    device.expect_no_message()
